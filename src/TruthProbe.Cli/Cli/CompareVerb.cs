using TruthProbe.Reports;
using TruthProbe.Lineage;
using TruthProbe.Probing;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe compare</c>: how alike several Truth-Score maps are (the paper's lineage test, Fig. 1d).</summary>
public sealed class CompareVerb : IVerb
{
    public string Name => "compare";
    public string Summary => "correlate Truth-Score maps of several models (Pearson, Spearman, Kendall, top-k overlap)";
    public IReadOnlyCollection<string> Flags => ["shared-across-all", "shared-indices"];

    public string Usage => """
        usage: truthprobe compare MAP MAP [MAP ...] --out DIR [--names a,b,...] [--reference NAME]
                                  [--top-k 20] [--chance 0.5] [--shared-across-all] [--shared-indices]
                                  [--seed 42] [--bootstrap 2000] [--permutations 9999]

        MAP is a scores.npy ([layers, heads]), a scores.csv (columns layer,head,accuracy,...; accuracy is
        the score) or a folder holding either. Heads that are NaN in either map are left out. Maps of
        different shapes are refused unless --shared-indices is given.

          --names a,b,...        names for the maps, in order (default: file or folder names)
          --reference NAME       map the bar chart compares the others with (default: the first)
          --top-k K              size of the top-head sets whose Jaccard overlap is reported (default 20)
          --chance C             score of a probe that learned nothing (default 0.5); maps whose mean is
                                 within noise of it are flagged and must not be read as evidence
          --shared-across-all    compare every pair over the heads scored in ALL maps (the reference
                                 script's rule) instead of those the two maps share
          --shared-indices       compare maps that list different layers or heads (e.g. 32x32 and 28x28)
                                 over the indices both list; index l is then not the same depth in both
          --seed S               seed of the bootstrap and the permutations (default 42; in the manifest)
          --bootstrap B          bootstrap resamples over heads for pearson_low, pearson_high (default 2000)
          --permutations P       within-layer shuffles for p_layer_perm (default 9999: p down to 1e-4)

        Writes pearson.csv, spearman.csv, kendall.csv, topk_jaccard.csv (square, names in the first row
        and column), pairs.csv (with pearson_low, pearson_high, p_layer_perm, pearson_layer_centred,
        topk_expected, topk_p), per_layer_pearson.csv, pearson_matrix.png, pearson_vs_reference.png and
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
        bool sharedIndices = args.Flag("shared-indices");
        var uncertainty = new PairUncertainty(args.Int("bootstrap", PairUncertainty.Default.Resamples), args.Int("permutations", PairUncertainty.Default.Permutations), args.Int("seed", PairUncertainty.Default.Seed));
        args.EnsureAllRead(int.MaxValue);

        var paths = args.Positionals;
        if (paths.Count < 2)
            throw new Common.UserError($"compare needs at least two maps, got {paths.Count} (see 'truthprobe compare --help')");
        if (uncertainty.Resamples < 1) throw new Common.UserError($"--bootstrap must be at least 1, got {uncertainty.Resamples}");
        if (uncertainty.Permutations < 1) throw new Common.UserError($"--permutations must be at least 1, got {uncertainty.Permutations}");
        string[]? names = namesOption?.Split(',', StringSplitOptions.TrimEntries);
        if (names != null && names.Length != paths.Count)
            throw new Common.UserError($"--names gives {names.Length} names for {paths.Count} maps");
        if (names != null && names.Any(n => n.Length == 0))
            throw new Common.UserError($"--names has an empty name in '{namesOption}'");

        var maps = paths.Select((p, i) => ScoreMap.Load(p, names?[i])).ToList();
        var report = CompareReport.Run(maps, reference, topK, sharedAcrossAll, chance, sharedIndices, uncertainty);
        report.Write(outDir, paths, Plots.Writer);
        Console.Out.Write(report.FormatTable());
        Console.Out.WriteLine($"wrote {outDir}");
        return 0;
    }
}
