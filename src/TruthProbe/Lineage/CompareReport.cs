using System.Globalization;
using System.Text.Json.Serialization;
using System.Text.Json;
using System.Text;
using TruthProbe.Common;
using TruthProbe.Numerics;
using TruthProbe.Probing;
using TruthProbe.Statistics;
using static TruthProbe.Common.CsvFormat;

namespace TruthProbe.Lineage;

/// <summary>
/// The comparison of several head maps: every pair's statistics, each map's chance check, and the files
/// that present them (square CSV matrices, per-pair and per-layer CSVs, two PNGs, a manifest).
/// </summary>
public sealed class CompareReport
{
    public IReadOnlyList<ScoreMap> Maps { get; }
    public IReadOnlyList<ChanceCheck> Chance { get; }
    public IReadOnlyList<PairStatistics> Pairs { get; }
    /// <summary>Each map compared with itself: the diagonal of the matrices.</summary>
    public IReadOnlyList<PairStatistics> Self { get; }
    public string Reference { get; }
    public int TopK { get; }
    public bool SharedAcrossAll { get; }
    public IReadOnlyList<string> Warnings { get; }
    public PairUncertainty Uncertainty { get; }
    public MapAlignment Alignment { get; private init; }
    /// <summary>Set when the intervals of r come from re-fitting probes on resampled rows instead of resampling heads.</summary>
    public RowBootstrap? Rows { get; private init; }

    private CompareReport(IReadOnlyList<ScoreMap> maps, IReadOnlyList<ChanceCheck> chance, IReadOnlyList<PairStatistics> pairs,
        IReadOnlyList<PairStatistics> self, string reference, int topK, bool sharedAcrossAll, IReadOnlyList<string> warnings, PairUncertainty uncertainty)
    {
        (Maps, Chance, Pairs, Self, Reference, TopK, SharedAcrossAll, Warnings, Uncertainty) = (maps, chance, pairs, self, reference, topK, sharedAcrossAll, warnings, uncertainty);
    }

    /// <param name="sharedIndices">compare maps that list different layers or heads over the indices they share;
    /// without it such maps are refused, since layer 27 of a 28-layer model is not layer 27 of a 32-layer one.</param>
    /// <param name="alignment"><see cref="MapAlignment.Depth"/> pairs layers by relative depth (<see cref="DepthAlignment"/>).</param>
    /// <param name="rows">the row bootstrap of these maps (same order), whose intervals replace the bootstrap over heads.</param>
    public static CompareReport Run(IReadOnlyList<ScoreMap> maps, string? reference, int topK, bool sharedAcrossAll, double chance,
        bool sharedIndices = false, PairUncertainty? uncertainty = null, MapAlignment alignment = MapAlignment.Index, RowBootstrap? rows = null)
    {
        bool depth = alignment == MapAlignment.Depth;
        if (depth && (sharedIndices || sharedAcrossAll))
            throw new UserError("depth alignment pairs each two maps by relative depth; it cannot also pair them by shared indices or over the heads of all maps") { Field = "align" };
        if (rows != null && !rows.Sources.Select(s => s.Map).SequenceEqual(maps))
            throw new ArgumentException("the row bootstrap must be of the maps compared, in their order", nameof(rows));
        if (maps.Count < 2) throw new UserError($"compare needs at least two maps, got {maps.Count}");
        if (topK < 1) throw new UserError($"top-k must be at least 1, got {topK}") { Field = "top_k" };
        var duplicate = maps.GroupBy(m => m.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate != null) throw new UserError($"two maps are both named '{duplicate.Key}'; give the maps distinct names") { Field = "names" };
        reference ??= maps[0].Name;
        if (maps.All(m => m.Name != reference))
            throw new UserError($"reference map '{reference}' is not one of the maps ({string.Join(", ", maps.Select(m => m.Name))})") { Field = "reference" };

        var checks = maps.Select(m => ChanceCheck.Of(m, chance)).ToList();
        var warnings = new List<string>();
        foreach (var m in maps)
            warnings.AddRange(m.Notes.Select(n => $"{m.Name}: {n}"));
        for (int i = 0; i < maps.Count; i++)
            if (checks[i].AtChance)
                warnings.Add($"{maps[i].Name} is at chance level (mean {checks[i].Mean:0.0000} vs chance {chance}, sd {checks[i].StdDev:0.0000} over {checks[i].N} heads): " +
                             "its correlations are noise and are not evidence of inheritance");
        bool sameIndices = maps.All(m => m.LayerIds.SequenceEqual(maps[0].LayerIds) && m.HeadIds.SequenceEqual(maps[0].HeadIds));
        if (!sameIndices && !sharedIndices && !depth)
            throw new UserError($"maps differ in shape ({string.Join(", ", maps.Select(m => $"{m.Name} {m.Shape}"))}): pairing heads by index would " +
                                "correlate layers at different depths; compare maps of one architecture, align them by relative depth (--align depth), " +
                                "or give --shared-indices to compare over the layer and head indices both maps list");
        if (!sameIndices && !depth)
            warnings.Add($"maps differ in shape ({string.Join(", ", maps.Select(m => $"{m.Name} {m.Shape}"))}); each pair is compared over the layer and head indices it shares" +
                         (sharedAcrossAll ? " by all maps" : ""));

        uncertainty ??= PairUncertainty.Default;
        var pairs = depth ? DepthAlignment.CompareAll(maps, topK, uncertainty, warnings) : MapComparison.CompareAll(maps, topK, sharedAcrossAll, uncertainty);
        if (rows != null)
        {
            Func<ScoreMap, ScoreMap, (double[], double[])> pairOf = depth
                ? (x, y) => DepthAlignment.Align(x, y) is var p ? (p.A, p.B) : default
                : (x, y) => MapComparison.Align([x, y]) is var (s, _) ? (s[0], s[1]) : default;
            pairs = pairs.Select(p => p with { PearsonInterval = rows.PearsonInterval(IndexIn(maps, p.A), IndexIn(maps, p.B), pairOf, p.Pearson) }).ToList();
            for (int i = 0; i < rows.Sources.Count; i++)
                if (rows.RefitDifference[i] > RefitTolerance)
                    warnings.Add(string.Create(CultureInfo.InvariantCulture,
                        $"{maps[i].Name}: re-fitting the probes on its activations differs from the map by up to {rows.RefitDifference[i]:0.####}; the activations, settings or vector width are not the map's, so its row bootstrap is of another map"));
        }
        var chanceOverlap = pairs.Where(p => p.TopKPValue >= 0.05).ToList();
        if (chanceOverlap.Count > 0)
            warnings.Add("top-k overlap no larger than two random sets of heads share (hypergeometric p >= 0.05; shared vs expected): " +
                         string.Join(", ", chanceOverlap.Select(p => string.Create(CultureInfo.InvariantCulture,
                             $"{p.A} vs {p.B} {p.TopKOverlap} vs {p.TopKExpected:0.0} of top-{p.TopK}"))));
        foreach (var p in pairs.Where(p => p.TopK > 0 && p.TopK < topK))
            warnings.Add($"{p.A} vs {p.B}: only {p.N} heads compared, so top-k uses k = {p.TopK}");
        var self = maps.Select(m =>
        {
            var (samples, layers) = MapComparison.Align([m]);
            return MapComparison.Compare(m.Name, m.Name, samples[0], samples[0], layers, topK);
        }).ToList();
        return new CompareReport(maps, checks, pairs, self, reference, topK, sharedAcrossAll, warnings, uncertainty) { Alignment = alignment, Rows = rows };
    }

    /// <summary>A re-fit on the map's own rows, folds and solver reproduces it up to the float32 Gram's rounding; more means other inputs.</summary>
    private const double RefitTolerance = 1e-9;

    private static int IndexIn(IReadOnlyList<ScoreMap> maps, string name)
    {
        for (int i = 0; i < maps.Count; i++)
            if (maps[i].Name == name) return i;
        throw new ArgumentException($"no map named '{name}'", nameof(name));
    }

    public PairStatistics Pair(int i, int j)
    {
        if (i == j) return Self[i];
        string a = Maps[Math.Min(i, j)].Name, b = Maps[Math.Max(i, j)].Name;
        return Pairs.First(p => p.A == a && p.B == b);
    }

    public double[,] Matrix(Func<PairStatistics, double> statistic)
    {
        int k = Maps.Count;
        var m = new double[k, k];
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                m[i, j] = statistic(Pair(i, j));
        return m;
    }

    public bool EitherAtChance(PairStatistics p) =>
        Chance[IndexOf(p.A)].AtChance || Chance[IndexOf(p.B)].AtChance;

    private int IndexOf(string name) => IndexIn(Maps, name);

    /// <summary>Writes every output file into <paramref name="outDir"/> and returns their names.</summary>
    public IReadOnlyList<string> Write(string outDir, IReadOnlyList<string> inputPaths, IFigures figures)
    {
        Directory.CreateDirectory(outDir);
        var written = new List<string>();
        void Text(string name, string content)
        {
            AtomicFile.WriteAllText(Path.Combine(outDir, name), content);
            written.Add(name);
        }
        string[] names = Maps.Select(m => m.Name).ToArray();
        Text("pearson.csv", SquareCsv(Matrix(p => p.Pearson)));
        Text("spearman.csv", SquareCsv(Matrix(p => p.Spearman)));
        Text("kendall.csv", SquareCsv(Matrix(p => p.KendallTauB)));
        Text("topk_jaccard.csv", SquareCsv(Matrix(p => p.TopKJaccard)));
        Text("pairs.csv", PairsCsv());
        Text("per_layer_pearson.csv", PerLayerCsv());

        string chanceNote = Chance.Any(c => c.AtChance)
            ? " Maps marked (chance) score at chance level: their correlations are not evidence of inheritance."
            : "";
        string[] labels = names.Select((n, i) => Chance[i].AtChance ? $"{n} (chance)" : n).ToArray();
        double low = ColourFloor();
        figures.Heatmap(Path.Combine(outDir, "pearson_matrix.png"), Matrix(p => p.Pearson), "Pearson r between Truth-Score maps", "", "",
            caption: string.Create(CultureInfo.InvariantCulture, $"{HeadsComparedText()}. Colours span r = {low:0.0} to 1 (the lowest pair's r rounded down), not -1 to 1, so 0.7 and 0.95 look different.{chanceNote}"),
            rowLabels: labels, colLabels: labels, annotateCells: true, min: low, max: 1);
        written.Add("pearson_matrix.png");

        int r = IndexOf(Reference);
        var others = Enumerable.Range(0, Maps.Count).Where(i => i != r).ToList();
        figures.Bars(Path.Combine(outDir, "pearson_vs_reference.png"), $"Pearson r with {Reference}", "", "Pearson r",
            others.Select(i => labels[i]).ToList(), others.Select(i => Pair(r, i).Pearson).ToList(),
            caption: $"Per-head Truth Scores correlated over the heads both maps score (negative values are shown as they are).{chanceNote}");
        written.Add("pearson_vs_reference.png");

        written.Add("manifest.json");
        AtomicFile.WriteAllText(Path.Combine(outDir, "manifest.json"), Manifest(inputPaths, written));
        return written;
    }

    /// <summary>The lowest r between two different maps, rounded down to a tenth (at least -1; -1 when none is defined).</summary>
    private double ColourFloor()
    {
        var finite = Pairs.Select(p => p.Pearson).Where(double.IsFinite).ToList();
        return finite.Count == 0 ? -1 : Math.Clamp(Math.Floor(finite.Min() * 10) / 10, -1, 0.9);
    }

    private string HeadsComparedText()
    {
        int fewest = Pairs.Min(p => p.N), most = Pairs.Max(p => p.N);
        return fewest == most ? $"{most} heads compared per pair" : $"{fewest} to {most} heads compared per pair (n of each in pairs.csv)";
    }

    private string SquareCsv(double[,] m)
    {
        var sb = new StringBuilder();
        sb.Append("name");
        foreach (var map in Maps) sb.Append(',').Append(Field(map.Name));
        sb.Append('\n');
        for (int i = 0; i < Maps.Count; i++)
        {
            sb.Append(Field(Maps[i].Name));
            for (int j = 0; j < Maps.Count; j++) sb.Append(',').Append(Number(m[i, j]));
            sb.Append('\n');
        }
        return sb.ToString();
    }

    private string PairsCsv()
    {
        var sb = new StringBuilder("a,b,n,pearson,spearman,kendall_tau_b,top_k,topk_jaccard,chance_level," +
                                   "pearson_low,pearson_high,p_layer_perm,pearson_layer_centred,topk_expected,topk_p\n");
        foreach (var p in Pairs)
            sb.Append(CultureInfo.InvariantCulture,
                $"{Field(p.A)},{Field(p.B)},{p.N},{Number(p.Pearson)},{Number(p.Spearman)},{Number(p.KendallTauB)},{p.TopK},{Number(p.TopKJaccard)},{(EitherAtChance(p) ? "yes" : "no")}," +
                $"{Number(p.PearsonInterval.Low)},{Number(p.PearsonInterval.High)},{Number(p.PLayerPermutation)},{Number(p.PearsonLayerCentred)},{Number(p.TopKExpected)},{Number(p.TopKPValue)}\n");
        return sb.ToString();
    }

    private string PerLayerCsv()
    {
        var sb = new StringBuilder("a,b,layer,n,pearson\n");
        foreach (var p in Pairs)
            foreach (var l in p.PerLayer)
                sb.Append(CultureInfo.InvariantCulture, $"{Field(p.A)},{Field(p.B)},{l.Layer},{l.N},{Number(l.Pearson)}\n");
        return sb.ToString();
    }

    private string Manifest(IReadOnlyList<string> inputPaths, IReadOnlyList<string> outputs)
    {
        string[] sha256 = Maps.Select(m => Hashing.Sha256File(m.File)).ToArray();
        var manifest = new
        {
            tool = "truthprobe compare",
            inputs = Maps.Select((m, i) => new
            {
                name = m.Name,
                path = inputPaths[i],
                file = m.File,
                sha256 = sha256[i],
                shape = new[] { m.Layers, m.Heads },
                scored_heads = m.ValidCount,
                mean = Chance[i].Mean,
                sd = Chance[i].StdDev,
                chance_level = Chance[i].AtChance,
                notes = m.Notes,
            }),
            reference = Reference,
            top_k = TopK,
            heads_compared = SharedAcrossAll ? "heads scored in every map (the reference's rule)" : "heads scored in both maps of each pair",
            alignment = Alignment == MapAlignment.Depth
                ? "depth: layer i of the map with fewer layers (S) paired with layer floor((i + 1/2) L / S) of the other (L); heads by index when head counts agree, else per-layer mean scores"
                : "index: layer and head indices",
            chance = Chance[0].Chance,
            chance_rule = ChanceCheck.Rule,
            uncertainty = new
            {
                seed = Uncertainty.Seed,
                bootstrap_resamples = Rows?.Resamples ?? Uncertainty.Resamples,
                bootstrap_over = Rows == null ? "heads" : "rows",
                row_bootstrap_refit_difference = Rows?.RefitDifference,
                permutations = Uncertainty.Permutations,
                pearson_interval = Rows != null ? RowBootstrap.Description + ": pearson_low, pearson_high"
                    : "95% percentile bootstrap over heads (pairs resampled with replacement; numpy's linear quantiles): pearson_low, pearson_high",
                p_layer_perm = "two-sided permutation p-value of Pearson r with each layer's heads shuffled within the layer, (1 + #{|r_perm| >= |r|}) / (1 + permutations): a shared depth trend alone does not make it small",
                pearson_layer_centred = "Pearson r after subtracting each layer's mean from both maps",
                topk = "topk_expected = k^2 / n shared heads for two random k-sets; topk_p = hypergeometric P(overlap >= observed)",
            },
            warnings = Warnings,
            outputs,
            provenance = Provenance.Of(Rows == null ? [("uncertainty", Uncertainty.Seed)] : [("uncertainty", Uncertainty.Seed), ("row_bootstrap", Rows.Seed)],
                Maps.Select((m, i) => (m.Name, sha256[i])).Concat(Rows?.Sources.Select(r => ($"{r.Map.Name}_activations", Hashing.Sha256File(r.ActivationsFile))) ?? [])),
        };
        return JsonSerializer.Serialize(manifest, JsonOptions) + "\n";
    }

    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // keep "+" and "<" readable
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>The Pearson matrix and the per-pair statistics as aligned text, then the warnings.</summary>
    public string FormatTable()
    {
        var sb = new StringBuilder();
        string[] names = Maps.Select(m => m.Name).ToArray();
        int rowWidth = names.Max(n => n.Length);
        int[] colWidth = names.Select(n => Math.Max(7, n.Length)).ToArray();
        sb.AppendLine($"Pearson r (over the heads scored in {(SharedAcrossAll ? "every map" : "both maps of a pair")}):");
        sb.Append(new string(' ', rowWidth));
        for (int j = 0; j < names.Length; j++) sb.Append("  ").Append(names[j].PadLeft(colWidth[j]));
        sb.AppendLine();
        for (int i = 0; i < names.Length; i++)
        {
            sb.Append(names[i].PadRight(rowWidth));
            for (int j = 0; j < names.Length; j++) sb.Append("  ").Append(Fixed(Pair(i, j).Pearson).PadLeft(colWidth[j]));
            sb.AppendLine();
        }
        sb.AppendLine();
        int pairWidth = Math.Max(4, Pairs.Max(p => p.A.Length + p.B.Length + 4));
        sb.AppendLine($"{"pair".PadRight(pairWidth)}  {"n",5}  {"pearson",8}  {"95% interval",16}  {"layer perm",12}  {"in-layer r",10}  {"spearman",8}  {"kendall",8}  {"top-k jaccard",13}  {"top-k shared vs chance",24}");
        foreach (var p in Pairs)
            sb.AppendLine($"{$"{p.A} vs {p.B}".PadRight(pairWidth)}  {p.N,5}  {Fixed(p.Pearson),8}  {$"[{Fixed(p.PearsonInterval.Low)}, {Fixed(p.PearsonInterval.High)}]",16}  " +
                          $"{PValueText.Format(p.PLayerPermutation),12}  {Fixed(p.PearsonLayerCentred),10}  {Fixed(p.Spearman),8}  {Fixed(p.KendallTauB),8}  {Fixed(p.TopKJaccard) + $" (k={p.TopK})",13}  " +
                          $"{string.Create(CultureInfo.InvariantCulture, $"{p.TopKOverlap} vs {p.TopKExpected:0.0}, {PValueText.Format(p.TopKPValue)}"),24}" +
                          (EitherAtChance(p) ? "  (chance-level map: not evidence)" : ""));
        foreach (string w in Warnings) sb.AppendLine($"warning: {w}");
        return sb.ToString();
    }

    private static string Fixed(double v) => double.IsNaN(v) ? "nan" : v.ToString("0.0000", CultureInfo.InvariantCulture);

    private static string Field(string s) =>
        s.IndexOfAny([',', '"', '\n']) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
}
