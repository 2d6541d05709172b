using TruthProbe.Common;
using TruthProbe.Gating;
using TruthProbe.Model;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe patch</c>: a checkpoint with the gates folded into o_proj, servable by any runtime at no cost.</summary>
public sealed class PatchVerb : IVerb
{
    public string Name => "patch";
    public string Summary => "write a copy of a model with TruthProbe gates folded into its o_proj weights";
    public string Usage =>
        "usage: truthprobe patch <model> (--scores MAP --mode M --lambda L | --gates FILE) [--site head|o-proj-out]\n" +
        "                        --out DIR [--format safetensors|gguf]\n" +
        ModelInput.Usage +
        GatingOptions.Usage +
        "  --out DIR            new folder: the checkpoint in its own dtype (bf16 stays bf16) with o_proj scaled,\n" +
        "                       every other file (config, tokenizer) copied; gates and their source are recorded\n" +
        "                       in the safetensors metadata (truthprobe.*) and in " + CheckpointPatcher.ManifestName + "\n" +
        "  --format F           default: the input's own (safetensors for a Hugging Face folder, a .bin stays a .bin);\n" +
        "                       gguf: DIR/NAME.gguf for llama.cpp in the weights' dtype, with the tokenizer\n" +
        "head scales o_proj's input columns of head h; o-proj-out scales output rows (and bias) of chunk h.\n" +
        "Both are exact for fixed gates: the patched model computes what the gated run computes.";

    public int Run(Args args)
    {
        string model = args.Positional(0, "<model> (a model folder or file)");
        var gating = GatingOptions.Read(args);
        string outDir = args.Required("out", "the folder to write the patched model to");
        string? format = args.Get("format");
        string? tokenizer = args.Get("tokenizer");
        args.EnsureAllRead(1);
        if (!gating.Enabled) throw new UserError("patch: give the gates to fold: --scores MAP --mode M --lambda L, or --gates FILE");

        if (format is not (null or "safetensors" or "gguf"))
            throw new UserError($"patch: --format must be safetensors or gguf, got '{format}'");
        GateTable table;
        using (var loaded = Transformer.Load(model, tokenizer)) // validates the checkpoint and gives its shape
        {
            if (format == "safetensors" && loaded.Format != "hf-safetensors")
                throw new UserError($"patch: --format safetensors needs a Hugging Face folder; {model} is {loaded.Format} and is patched in its own format (or use --format gguf)");
            table = gating.Table(loaded.Config.Layers, loaded.Config.Heads, model);
        }
        var fold = new GateFold(table.ToFloats(), gating.Site, gating.Provenance(table));
        if (format == "gguf") CheckpointPatcher.PatchToGguf(model, outDir, fold, tokenizer);
        else CheckpointPatcher.Patch(model, outDir, fold);
        var s = table.Summary();
        Console.WriteLine(FormattableString.Invariant(
            $"wrote {outDir}: {table.Layers} layers x {table.Heads} heads folded at site {gating.Site.CliName()} (gates min {s.Min:0.####}, max {s.Max:0.####}, {s.Negative} negative)"));
        return 0;
    }
}
