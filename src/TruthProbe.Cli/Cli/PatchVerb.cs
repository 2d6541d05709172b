using System.CommandLine;
using TruthProbe.Common;
using TruthProbe.Gating;
using TruthProbe.Model;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe patch</c>: a checkpoint with the gates folded into o_proj, servable by any runtime at no cost.</summary>
public sealed class PatchVerb : IVerb
{
    public string Name => "patch";
    public string Summary => "write a copy of a model with TruthProbe gates folded into its o_proj weights";
    public string Details =>
        "head scales o_proj's input columns of head h; o-proj-out scales output rows (and bias) of chunk h.\n" +
        "Both are exact for fixed gates: the patched model computes what the gated run computes.";

    private readonly ModelInput _model = new(gating: true, runs: false);
    private readonly Option<string> _out = Opt.Out("DIR",
        "new folder: the checkpoint in its own dtype (bf16 stays bf16) with o_proj scaled, every other file (config, tokenizer) copied; " +
        "gates and their source are recorded in the safetensors metadata (truthprobe.*) and in " + CheckpointPatcher.ManifestName);
    private readonly Option<string?> _format = Opt.Text("--format", "safetensors|gguf",
        "default: the input's own (safetensors for a Hugging Face folder, a .bin stays a .bin); gguf: DIR/NAME.gguf for llama.cpp in the weights' dtype, with the tokenizer");
    public IEnumerable<Symbol> Symbols => [.. _model.Symbols, _out, _format];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        string model = args.GetValue(_model.Model)!;
        string outDir = args.GetValue(_out)!;
        string? format = args.GetValue(_format);
        string? tokenizer = args.GetValue(_model.Tokenizer);
        if (format is not (null or "safetensors" or "gguf"))
            throw new UserError($"patch: --format must be safetensors or gguf, got '{format}'");
        GateTable table;
        GatingOptions gating;
        string? layersPrefix;
        using (var loaded = _model.Load(args, Name, requireGates: true)) // validates the checkpoint and gives its shape
        {
            var gates = loaded.Gates!.Value;
            if (loaded.Llava != null)
                throw new UserError($"patch: {model} is a LLaVA checkpoint; folding gates into it is not supported (its vision tower would be lost); run it gated with the same options instead");
            if (loaded.Qwen != null && format == "gguf")
                throw new UserError($"patch: {model} is a Qwen vision-language checkpoint; --format gguf would drop its vision encoder; patch it as safetensors (the default)");
            if (format == "safetensors" && loaded.Model.Format != "hf-safetensors")
                throw new UserError($"patch: --format safetensors needs a Hugging Face folder; {model} is {loaded.Model.Format} and is patched in its own format (or use --format gguf)");
            (table, gating) = (gates.Table, loaded.Gating);
            // A Qwen2.5-VL / Omni folder: the gates go into its language model's o_proj, the vision encoder is copied byte for byte.
            layersPrefix = loaded.Qwen is { } qwen ? qwen.Layout.Text.Body + "layers." : null;
        }
        var fold = new GateFold(table.ToFloats(), gating.Site, gating.Provenance(table)) { LayersPrefix = layersPrefix };
        if (format == "gguf") CheckpointPatcher.PatchToGguf(model, outDir, fold, tokenizer);
        else CheckpointPatcher.Patch(model, outDir, fold);
        var s = table.Summary();
        stdout.WriteLine(FormattableString.Invariant(
            $"wrote {outDir}: {table.Layers} layers x {table.Heads} heads folded at site {gating.Site.CliName()} (gates min {s.Min:0.####}, max {s.Max:0.####}, {s.Negative} negative)"));
        return 0;
    }
}
