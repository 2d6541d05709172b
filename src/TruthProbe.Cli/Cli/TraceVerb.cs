using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Model;

namespace TruthProbe.Cli;

public sealed class TraceVerb : IVerb
{
    public string Name => "trace";
    public string Summary => "run one forward pass and save chosen hook activations (safetensors)";
    public string Usage =>
        "usage: truthprobe trace <model> (--prompt TEXT | --token-ids 1,2,3) --hooks PATTERN[,PATTERN] --out FILE.safetensors\n" +
        "                        [--positions -1] [--tokenizer FILE]\n" +
        ModelInput.Usage +
        "  --hooks              hook names, '*' for any layer: blocks.*.attn.hook_z, blocks.0.hook_resid_pre, logits\n" +
        "                       (all: hook_resid_pre, attn.hook_q/k/v, attn.hook_pattern, attn.hook_z, hook_attn_out,\n" +
        "                        hook_resid_mid, hook_mlp_out, hook_resid_post, logits)\n" +
        "  --positions LIST     keep only these token positions (negative counts from the end; default all)\n" +
        "  --out FILE           float32 tensors named after their hooks; metadata holds the model and token ids\n" +
        GatingOptions.Usage;

    public int Run(Args args)
    {
        using var model = ModelInput.Load(args);
        int[] tokens = ModelInput.PromptIds(args, model) ?? throw new UserError("trace: give --prompt TEXT or --token-ids 1,2,3");
        string[] patterns = args.Required("hooks", "which hooks to save, e.g. blocks.*.attn.hook_z")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        int[]? positions = args.Get("positions") != null ? args.Ints("positions", []) : null;
        string output = args.Required("out", "the .safetensors file to write");
        var gating = GatingOptions.Read(args);
        args.EnsureAllRead(1);

        var gates = gating.For(model);
        var capture = new ActivationCapture(model.Config, patterns, positions);
        model.Forward(model.NewState(), tokens, capture, gates?.Interventions);
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
        if (args.Get("prompt") is { } prompt) metadata["prompt"] = prompt;
        if (gates is { } g)
            foreach (var (key, value) in gating.Provenance(g.Table)) metadata["gating." + key] = value;
        SafetensorsWriter.Write(output, tensors, metadata);
        Console.WriteLine($"wrote {tensors.Count} tensors for {tokens.Length} tokens to {output}");
        return 0;
    }
}
