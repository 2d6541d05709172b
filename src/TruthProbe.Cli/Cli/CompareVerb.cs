using TruthProbe.Reports;
using TruthProbe.Lineage;
using TruthProbe.Probing;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe compare</c>: how alike several Truth-Score maps are (the paper's lineage test, Fig. 1d).</summary>
public sealed class CompareVerb : IVerb
{
    public string Name => "compare";
    public string Summary => "correlate Truth-Score maps of several models (Pearson, Spearman, Kendall, top-k overlap)";
    public IReadOnlyCollection<string> Flags => ["shared-across-all"];

    public string Usage => """
        usage: truthprobe compare MAP MAP [MAP ...] --out DIR [--names a,b,...] [--reference NAME]
                                  [--top-k 20] [--chance 0.5] [--shared-across-all]

        MAP is a scores.npy ([layers, heads]), a scores.csv (columns layer,head,accuracy,...; accuracy is
        the score) or a folder holding either. Maps of different shapes are compared over the layer and
        head indices they share; heads that are NaN in either map are left out.

          --names a,b,...        names for the maps, in order (default: file or folder names)
          --reference NAME       map the bar chart compares the others with (default: the first)
          --top-k K              size of the top-head sets whose Jaccard overlap is reported (default 20)
          --chance C             score of a probe that learned nothing (default 0.5); maps whose mean is
                                 within noise of it are flagged and must not be read as evidence
          --shared-across-all    compare every pair over the heads scored in ALL maps (the reference
                                 script's rule) instead of those the two maps share

        Writes pearson.csv, spearman.csv, kendall.csv, topk_jaccard.csv (square, names in the first row
        and column), pairs.csv, per_layer_pearson.csv, pearson_matrix.png, pearson_vs_reference.png and
        manifest.json (inputs with sha256), and prints the Pearson matrix.
        """;

    public int Run(Args args)
    {
        string outDir = args.Required("out", "folder for the results");
        string? namesOption = args.Get("names");
        string? reference = args.Get("reference");
        int topK = args.Int("top-k", 20);
        double chance = args.Double("chance", 0.5);
        bool sharedAcrossAll = args.Flag("shared-across-all");
        args.EnsureAllRead(int.MaxValue);

        var paths = args.Positionals;
        if (paths.Count < 2)
            throw new Common.UserError($"compare needs at least two maps, got {paths.Count} (see 'truthprobe compare --help')");
        string[]? names = namesOption?.Split(',', StringSplitOptions.TrimEntries);
        if (names != null && names.Length != paths.Count)
            throw new Common.UserError($"--names gives {names.Length} names for {paths.Count} maps");
        if (names != null && names.Any(n => n.Length == 0))
            throw new Common.UserError($"--names has an empty name in '{namesOption}'");

        var maps = paths.Select((p, i) => ScoreMap.Load(p, names?[i])).ToList();
        var report = CompareReport.Run(maps, reference, topK, sharedAcrossAll, chance);
        report.Write(outDir, paths, Plots.Writer);
        Console.Out.Write(report.FormatTable());
        Console.Out.WriteLine($"wrote {outDir}");
        return 0;
    }
}
