using System.CommandLine;
using TruthProbe.Lineage;
using TruthProbe.Probing;
using TruthProbe.Reports;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe compare</c>: how alike several Truth-Score maps are (the paper's lineage test, Fig. 1d).</summary>
public sealed class CompareVerb : IVerb
{
    public string Name => "compare";
    public string Summary => "correlate Truth-Score maps of several models (Pearson, Spearman, Kendall, top-k overlap)";

    public string Details => """
        MAP is a scores.npy ([layers, heads]), a scores.csv (columns layer,head,accuracy,...; accuracy is
        the score) or a folder holding either. Heads that are NaN in either map are left out. Maps of
        different shapes are refused unless --shared-indices or --align depth is given.

        --align depth pairs layer i of the map with fewer layers (S) with layer floor((i + 1/2) L / S)
        of the other (L layers): the same relative depth. Heads are paired by index when both maps have
        as many heads per layer; otherwise no head corresponds to another, head-level statistics are
        left empty and r is over the matched layers' mean scores.

        --bootstrap-rows B takes each MAP as a 'score' (or 'probe') output folder with its
        activations.safetensors and manifest.json, and replaces the bootstrap over heads by B resamples
        of the probing rows: every head's probes are re-fitted (the map's solver and folds) and both maps
        recomputed for each resample (the same rows for maps probed on the same rows).

        Writes pearson.csv, spearman.csv, kendall.csv, topk_jaccard.csv (square, names in the first row
        and column), pairs.csv (with pearson_low, pearson_high, p_layer_perm, pearson_layer_centred,
        topk_expected, topk_p), per_layer_pearson.csv, pearson_matrix.png, pearson_vs_reference.png and
        manifest.json (inputs with sha256), and prints the Pearson matrix.
        """;

    private readonly Argument<string[]> _maps = new("MAP") { Description = "two or more Truth-Score maps", Arity = ArgumentArity.ZeroOrMore };
    private readonly Option<string> _out = Opt.Out("DIR", "folder for the results");
    private readonly Option<string?> _names = Opt.Text("--names", "a,b,...", "names for the maps, in order (default: file or folder names)");
    private readonly Option<string?> _reference = Opt.Text("--reference", "NAME", "map the bar chart compares the others with (default: the first)");
    private readonly Option<int> _topK = Opt.Int("--top-k", "K", 20, "size of the top-head sets whose Jaccard overlap is reported", min: 1);
    private readonly Option<double> _chance = Opt.Double("--chance", "C", 0.5,
        "score of a probe that learned nothing; maps whose mean is within noise of it are flagged and must not be read as evidence");
    private readonly Option<bool> _sharedAcrossAll = Opt.Flag("--shared-across-all",
        "compare every pair over the heads scored in ALL maps (the reference script's rule) instead of those the two maps share");
    private readonly Option<bool> _sharedIndices = Opt.Flag("--shared-indices",
        "compare maps that list different layers or heads (e.g. 32x32 and 28x28) over the indices both list; index l is then not the same depth in both");
    private readonly Option<int> _seed = Opt.Int("--seed", "S", PairUncertainty.Default.Seed, "seed of the bootstrap and the permutations (recorded in the manifest)");
    private readonly Option<int> _bootstrap = Opt.Int("--bootstrap", "B", PairUncertainty.Default.Resamples,
        "bootstrap resamples over heads for pearson_low, pearson_high", min: 1);
    private readonly Option<int> _permutations = Opt.Int("--permutations", "P", PairUncertainty.Default.Permutations,
        "within-layer shuffles for p_layer_perm (9999: p down to 1e-4)", min: 1);
    private readonly Option<string> _align = Opt.Choice("--align", "index",
        "pair heads by layer and head index, or by relative depth for maps with different layer counts", "index", "depth");
    private readonly Option<int?> _bootstrapRows = Opt.IntOrNull("--bootstrap-rows", "B",
        "resample the probing rows B times, re-fitting the probes, for pearson_low, pearson_high (MAPs are score folders holding their activations)", min: 1);
    public IEnumerable<Symbol> Symbols => [_maps, _out, _names, _reference, _topK, _chance, _sharedAcrossAll, _sharedIndices, _seed, _bootstrap, _permutations, _align, _bootstrapRows];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        string outDir = args.GetValue(_out)!;
        string? namesOption = args.GetValue(_names);
        string? reference = args.GetValue(_reference);
        int topK = args.GetValue(_topK);
        double chance = args.GetValue(_chance);
        bool sharedAcrossAll = args.GetValue(_sharedAcrossAll);
        bool sharedIndices = args.GetValue(_sharedIndices);
        var uncertainty = new PairUncertainty(args.GetValue(_bootstrap), args.GetValue(_permutations), args.GetValue(_seed));

        var paths = args.GetValue(_maps)!;
        if (paths.Length < 2)
            throw new Common.UserError($"compare needs at least two maps, got {paths.Length} (see 'truthprobe compare --help')");
        string[]? names = namesOption?.Split(',', StringSplitOptions.TrimEntries);
        if (names != null && names.Length != paths.Length)
            throw new Common.UserError($"--names gives {names.Length} names for {paths.Length} maps");
        if (names != null && names.Any(n => n.Length == 0))
            throw new Common.UserError($"--names has an empty name in '{namesOption}'");

        int? bootstrapRows = args.GetValue(_bootstrapRows);
        var alignment = args.GetValue(_align) == "depth" ? MapAlignment.Depth : MapAlignment.Index;
        RowBootstrap? rows = null;
        List<ScoreMap> maps;
        if (bootstrapRows is int resamples)
        {
            var sources = paths.Select((p, i) => RowSource.Load(p, names?[i])).ToList();
            maps = sources.Select(s => s.Map).ToList();
            rows = RowBootstrap.Run(sources, resamples, uncertainty.Seed);
        }
        else maps = paths.Select((p, i) => ScoreMap.Load(p, names?[i])).ToList();
        var report = CompareReport.Run(maps, reference, topK, sharedAcrossAll, chance, sharedIndices, uncertainty, alignment, rows);
        report.Write(outDir, paths, Plots.Writer);
        stdout.Write(report.FormatTable());
        stdout.WriteLine($"wrote {outDir}");
        return 0;
    }
}
