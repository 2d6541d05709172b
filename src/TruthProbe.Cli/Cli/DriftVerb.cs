using TruthProbe.Reports;
using TruthProbe.Lineage;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe drift</c>: how far a child model's weights moved from its parent's, per layer and head (paper §2.3, Fig. 2).</summary>
public sealed class DriftVerb : IVerb
{
    public string Name => "drift";
    public string Summary => "per-layer and per-head weight drift (rel. Frobenius, cosine) of a child model from its parent";
    public IReadOnlyCollection<string> Flags => ["align"];

    public string Usage => """
        usage: truthprobe drift <parent> <child> --out DIR [--align]

        <parent>, <child>: a Hugging Face folder (config.json + safetensors) or a llama2.c .bin.
        Compares W_Q, W_K, W_V, W_O per layer and per head (query heads for Q and O, kv heads for K and V),
        the MLP (gate, up, down), embeddings, classifier and norms, as
          rel_frobenius = ||A - B||_F / ||A||_F (A = parent, B = child) and the cosine of the flattened entries.
        Embeddings of different vocabularies are compared over the shared ids. d_model, head size and
        head counts must match; layer counts too, unless:

          --align     compare only the layers both models have (the first min(L_parent, L_child))

        Writes drift.csv (layer,head,matrix,rel_frobenius,cosine; head empty for whole matrices, layer
        empty for embed, lm_head, final_norm), drift.png (Q, K, V, O per layer) and summary.json
        (normalisation, per-layer means, notes), and prints the per-layer table. Weights are streamed from
        the memory-mapped checkpoints, row by row.
        """;

    public int Run(Args args)
    {
        string outDir = args.Required("out", "folder for the results");
        bool align = args.Flag("align");
        string parentPath = args.Positional(0, "<parent> (a model folder or file)");
        string childPath = args.Positional(1, "<child> (a model folder or file)");
        args.EnsureAllRead(2);

        using var parent = WeightDrift.LoadWeights(parentPath);
        using var child = WeightDrift.LoadWeights(childPath);
        var result = WeightDrift.Compute(parent, child, align);
        DriftReport.Write(result, outDir, Plots.Writer);
        Console.Out.Write(DriftReport.FormatTable(result));
        Console.Out.WriteLine($"wrote {outDir}");
        return 0;
    }
}
