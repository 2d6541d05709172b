using System.CommandLine;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Vision;

namespace TruthProbe.Cli;

public sealed class TraceVerb : IVerb
{
    public string Name => "trace";
    public string Summary => "run one forward pass and save chosen hook activations (safetensors)";

    private readonly ModelInput _model = new(gating: true, prompt: true, promptDefault: " (this or --token-ids is required)", image: true);
    private readonly Option<string> _hooks = Opt.Required("--hooks", "PATTERN[,PATTERN]",
        "hook names, '*' for any layer: blocks.*.attn.hook_z, blocks.0.hook_resid_pre, logits; every hook point " +
        "({l} = layer, T = tokens, T_total = positions in the cache):\n" +
        HookLines(HookPart.Decoder) + "\nwith --image (LLaVA; Qwen2.5-VL / Omni with their own shapes, docs/qwen.md) also, every row ({l} = vision encoder layer):\n" + HookLines(HookPart.Vision));
    private readonly Option<int[]?> _positions = Opt.Ints("--positions", "LIST", "keep only these token positions (query rows of the attention maps; negative counts from the end; default all)");
    private readonly Option<string> _out = Opt.Out("FILE.safetensors", "float32 tensors named after their hooks; metadata holds the model and token ids");
    public IEnumerable<Symbol> Symbols => [.. _model.Symbols, _hooks, _positions, _out];

    private static string HookLines(HookPart part) =>
        string.Join("\n", HookNames.Table.Where(p => p.Part == part).Select(p => $"  {p.Template,-34} {p.ShapeText,-18} {p.Meaning}"));

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        using var loaded = _model.Load(args, Name);
        var model = loaded.Model;
        int[] tokens = _model.PromptIds(args, Name, model, loaded.Llava) ?? throw new UserError("trace: give --prompt TEXT or --token-ids 1,2,3");
        string[] patterns = args.GetValue(_hooks)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        int[]? positions = args.Given(_positions);
        string output = args.GetValue(_out)!;

        var qwenImage = loaded.Qwen is { } qwen ? _model.Image!.ReadQwen(args, Name, qwen, tokens) : null;
        var image = loaded.Qwen == null ? _model.Image!.Read(args, Name, loaded, tokens) : null;

        var order = HookNames.All(model.Config.Layers).ToList();
        var results = new List<KeyValuePair<string, Activation>>();
        if (image == null && qwenImage == null)
        {
            var capture = new ActivationCapture(model.Config, patterns, positions);
            model.Forward(model.NewState(), tokens, capture, loaded.Gates?.Interventions);
            results.AddRange(capture.Results.OrderBy(r => order.IndexOf(r.Key)));
        }
        else
        {
            // A pattern goes to the image path when it names a vision hook, to the decoder when it names a decoder
            // hook or nothing at all (so that a typo gets the decoder's error listing its hooks).
            int visionLayers = image?.Model.Config.VisionLayersRun ?? qwenImage!.Model.Config.Vision.Depth;
            string[] visionPatterns = patterns.Where(p => HookNames.Selects(p, visionLayers, HookPart.Vision)).ToArray();
            string[] decoderPatterns = patterns.Where(p => !visionPatterns.Contains(p) || HookNames.Selects(p, model.Config.Layers, HookPart.Decoder)).ToArray();
            var vision = visionPatterns.Length == 0 ? null
                : image != null ? new VisionCapture(image.Model.Config, visionPatterns) : new VisionCapture(qwenImage!.Model.Config, visionPatterns);
            var capture = decoderPatterns.Length == 0 ? null : new ActivationCapture(model.Config, decoderPatterns, positions);
            if (image != null)
            {
                tokens = image.Model.ExpandImageTokens(tokens, image.Size);
                image.Model.Forward(image.Model.NewState(), tokens, image.Pixels, capture, loaded.Gates?.Interventions, vision, image.Size);
            }
            else
            {
                var qwenModel = qwenImage!.Model;
                tokens = qwenModel.ExpandImageTokens(tokens, qwenImage.Image);
                qwenModel.Forward(qwenModel.NewState(), tokens, qwenImage.Image, capture, loaded.Gates?.Interventions, vision);
            }
            var visionOrder = HookNames.All(visionLayers, HookPart.Vision).ToList();
            if (vision != null) results.AddRange(vision.Results.OrderBy(r => visionOrder.IndexOf(r.Key)));
            if (capture != null) results.AddRange(capture.Results.OrderBy(r => order.IndexOf(r.Key)));
        }
        var tensors = results
            .Select(r => SafetensorToWrite.FromSingles(r.Key, r.Value.Shape.Select(x => (long)x).ToArray(), r.Value.Data)).ToList();
        var metadata = new Dictionary<string, string>
        {
            ["model"] = model.Source,
            ["format"] = model.Format,
            ["kv_cache"] = model.KvCache.Name(),
            ["token_ids"] = string.Join(",", tokens),
            ["positions"] = positions == null ? "all" : string.Join(",", positions),
        };
        foreach (var (key, value) in image?.Provenance() ?? qwenImage?.Provenance() ?? []) metadata[key] = value;
        if (_model.PromptText(args) is { } prompt) metadata["prompt"] = prompt;
        if (loaded.Gates is { } g)
            foreach (var (key, value) in loaded.Gating.Provenance(g.Table)) metadata["gating." + key] = value;
        SafetensorsWriter.Write(output, tensors, metadata);
        stdout.WriteLine($"wrote {tensors.Count} tensors for {tokens.Length} tokens to {output}");
        return 0;
    }
}
