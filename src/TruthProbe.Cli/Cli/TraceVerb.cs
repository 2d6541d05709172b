using System.CommandLine;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Model;

namespace TruthProbe.Cli;

public sealed class TraceVerb : IVerb
{
    public string Name => "trace";
    public string Summary => "run one forward pass and save chosen hook activations (safetensors)";

    private readonly ModelInput _model = new(gating: true, prompt: true, promptDefault: " (this or --token-ids is required)");
    private readonly Option<string> _hooks = Opt.Required("--hooks", "PATTERN[,PATTERN]",
        "hook names, '*' for any layer: blocks.*.attn.hook_z, blocks.0.hook_resid_pre, logits; every hook point " +
        "({l} = layer, T = tokens, T_total = positions in the cache):\n" +
        string.Join("\n", HookNames.Table.Select(p => $"  {p.Template,-34} {p.ShapeText,-18} {p.Meaning}")));
    private readonly Option<int[]?> _positions = Opt.Ints("--positions", "LIST", "keep only these token positions (query rows of the attention maps; negative counts from the end; default all)");
    private readonly Option<string> _out = Opt.Out("FILE.safetensors", "float32 tensors named after their hooks; metadata holds the model and token ids");
    public IEnumerable<Symbol> Symbols => [.. _model.Symbols, _hooks, _positions, _out];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        using var loaded = _model.Load(args, Name);
        var model = loaded.Model;
        int[] tokens = _model.PromptIds(args, Name, model) ?? throw new UserError("trace: give --prompt TEXT or --token-ids 1,2,3");
        string[] patterns = args.GetValue(_hooks)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        int[]? positions = args.Given(_positions);
        string output = args.GetValue(_out)!;

        var capture = new ActivationCapture(model.Config, patterns, positions);
        model.Forward(model.NewState(), tokens, capture, loaded.Gates?.Interventions);
        var order = HookNames.All(model.Config.Layers).ToList();
        var tensors = capture.Results.OrderBy(r => order.IndexOf(r.Key))
            .Select(r => SafetensorToWrite.FromSingles(r.Key, r.Value.Shape.Select(x => (long)x).ToArray(), r.Value.Data)).ToList();
        var metadata = new Dictionary<string, string>
        {
            ["model"] = model.Source,
            ["format"] = model.Format,
            ["token_ids"] = string.Join(",", tokens),
            ["positions"] = positions == null ? "all" : string.Join(",", positions),
        };
        if (_model.PromptText(args) is { } prompt) metadata["prompt"] = prompt;
        if (loaded.Gates is { } g)
            foreach (var (key, value) in loaded.Gating.Provenance(g.Table)) metadata["gating." + key] = value;
        SafetensorsWriter.Write(output, tensors, metadata);
        stdout.WriteLine($"wrote {tensors.Count} tensors for {tokens.Length} tokens to {output}");
        return 0;
    }
}
