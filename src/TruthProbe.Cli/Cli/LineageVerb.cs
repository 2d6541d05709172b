using TruthProbe.Common;
using TruthProbe.Lineage;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe lineage</c>: is one of these models the candidate's parent? Ranked by weight drift, with head maps as corroboration.</summary>
public sealed class LineageVerb : IVerb
{
    public string Name => "lineage";
    public string Summary => "rank models by how likely each is a candidate model's parent (weight drift, head-map correlation)";

    public string Usage => $"""
        usage: truthprobe lineage <candidate> --against MODEL [MODEL ...] [--maps CAND_MAP,MAP1,...] [--out DIR]

        Compares the candidate's attention weights with each MODEL's (mean over layers of
        ||A - B||_F / ||A||_F for W_Q, W_K, W_V, W_O, A = MODEL, B = candidate; lower = closer), ranks the
        models, and prints a verdict: the closest related model and its margin to the runner-up, or
        "no parent found". Models whose widths or head layout differ from the candidate's are listed as
        "not comparable (shape)"; a different layer count is compared over the common layers.

          --against MODEL ...   the possible parents (folders or llama2.c .bin files)
          --maps A,B,...        Truth-Score maps (scores.npy / scores.csv / score folder): the candidate's
                                first, then one per MODEL in order; their Pearson r is reported beside the
                                drift (maps at chance level are flagged)
          --out DIR             also write DIR/lineage.json

        Rule: {LineageReport.Rule}
        """;

    public int Run(Args args)
    {
        string? outDir = args.Get("out");
        string? maps = args.Get("maps");
        var against = args.GetAll("against");
        string candidate = args.Positional(0, "<candidate> (a model folder or file)");
        args.EnsureAllRead(int.MaxValue);
        if (against.Count == 0) throw new UserError("lineage: missing --against MODEL [MODEL ...] (the possible parents)");
        // "--against a b c": the option takes a; b and c follow as positionals.
        var models = against.Concat(args.Positionals.Skip(1)).ToList();
        var mapPaths = maps?.Split(',', StringSplitOptions.TrimEntries);

        var report = LineageReport.Run(candidate, models, mapPaths);
        if (outDir != null) report.Write(outDir);
        Console.Out.Write(report.FormatTable());
        if (outDir != null) Console.Out.WriteLine($"wrote {outDir}");
        return 0;
    }
}
