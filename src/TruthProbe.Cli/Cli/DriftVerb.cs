using System.CommandLine;
using TruthProbe.Lineage;
using TruthProbe.Reports;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe drift</c>: how far a child model's weights moved from its parent's, per layer and head (paper §2.3, Fig. 2).</summary>
public sealed class DriftVerb : IVerb
{
    public string Name => "drift";
    public string Summary => "per-layer and per-head weight drift (rel. Frobenius, cosine) of a child model from its parent";

    public string Details => """
        <parent>, <child>: a Hugging Face folder (config.json + safetensors) or a llama2.c .bin.
        Compares W_Q, W_K, W_V, W_O per layer and per head (query heads for Q and O, kv heads for K and V),
        the MLP (gate, up, down), embeddings, classifier and norms, as
          rel_frobenius = ||A - B||_F / ||A||_F (A = parent, B = child) and the cosine of the flattened entries.
        Embeddings of different vocabularies are compared over the shared ids. d_model, head size and
        head counts must match; layer counts too, unless --align.

        Writes drift.csv (layer,head,matrix,rel_frobenius,cosine; head empty for whole matrices, layer
        empty for embed, lm_head, final_norm), drift.png (Q, K, V, O per layer) and summary.json
        (normalisation, per-layer means, notes), and prints the per-layer table. Weights are streamed from
        the memory-mapped checkpoints, row by row.
        """;

    private readonly Argument<string> _parent = new("parent") { Description = "the parent model (a folder or file)" };
    private readonly Argument<string> _child = new("child") { Description = "the child model (a folder or file)" };
    private readonly Option<string> _out = Opt.Out("DIR", "folder for the results");
    private readonly Option<bool> _align = Opt.Flag("--align", "compare only the layers both models have (the first min(L_parent, L_child))");
    public IEnumerable<Symbol> Symbols => [_parent, _child, _out, _align];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        string outDir = args.GetValue(_out)!;
        bool align = args.GetValue(_align);
        string parentPath = args.GetValue(_parent)!;
        string childPath = args.GetValue(_child)!;

        using var parent = WeightDrift.LoadWeights(parentPath);
        using var child = WeightDrift.LoadWeights(childPath);
        var result = WeightDrift.Compute(parent, child, align);
        DriftReport.Write(result, outDir, Plots.Writer);
        stdout.Write(DriftReport.FormatTable(result));
        stdout.WriteLine($"wrote {outDir}");
        return 0;
    }
}
