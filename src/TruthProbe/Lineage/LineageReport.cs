using System.Globalization;
using System.Text.Json;
using System.Text;
using TruthProbe.Common;
using TruthProbe.Model;
using TruthProbe.Numerics;
using TruthProbe.Probing;

namespace TruthProbe.Lineage;

/// <summary>How one model compares with the candidate as its possible parent.</summary>
public sealed record LineageRow(
    string Name, string Path, string Shape, bool Comparable, string? ShapeReason,
    double Drift, double Cosine, double[] PerLayerDrift,
    double? MapPearson, int? MapHeads, bool MapAtChance)
{
    public bool Related => Comparable && Drift < LineageReport.RelatedThreshold;
    public string Status => !Comparable ? "not comparable (shape)" : Related ? "related" : "unrelated";
}

/// <summary>
/// <c>truthprobe lineage</c>: which of several models is most likely the candidate's parent. Weights decide
/// (mean attention rel. Frobenius distance, model as A and candidate as B); head-map correlation, when maps
/// are given, is reported beside them as corroboration.
/// </summary>
public sealed class LineageReport
{
    /// <summary>Related when the mean attention rel. Frobenius distance is below this. See <see cref="Rule"/>.</summary>
    public const double RelatedThreshold = 0.5;

    public static readonly string Rule =
        "a model is related (an ancestor of the candidate, or a close relative) when the candidate's mean attention rel. Frobenius distance from it " +
        "(mean over layers of ||A - B||_F / ||A||_F for W_Q, W_K, W_V, W_O, A = model, B = candidate) is below " +
        $"{RelatedThreshold.ToString(CultureInfo.InvariantCulture)}. Why: for matrices initialised " +
        "and trained independently the flattened cosine is ~0 (+-1/sqrt(entries)), and then ||A - B||/||A|| = sqrt(1 + r^2 - 2 r cos) >= sqrt(1 - cos^2) ~ 1 " +
        "whatever the norm ratio r = ||B||/||A|| (sqrt(2) for equal norms); a distance below the threshold t needs cos >= sqrt(1 - t^2) = " +
        $"{Math.Sqrt(1 - RelatedThreshold * RelatedThreshold).ToString("0.00", CultureInfo.InvariantCulture)}, which independent matrices do not reach, " +
        "while fine-tuned descendants sit at 0.01-0.1 (paper §2.3: 0.03-0.05). A model trained far away from its parent (distance above the threshold) reads as unrelated.";

    public string CandidateName { get; }
    public string CandidatePath { get; }
    public string CandidateShape { get; }
    /// <summary>Most likely parent first: comparable models by drift, then the others.</summary>
    public IReadOnlyList<LineageRow> Ranking { get; }
    public LineageRow? Parent { get; }
    public string Verdict { get; }
    public IReadOnlyList<string> Notes { get; }
    public bool HasMaps { get; }

    private LineageReport(string name, string path, string shape, IReadOnlyList<LineageRow> ranking, bool hasMaps, IEnumerable<string> comparisonNotes)
    {
        (CandidateName, CandidatePath, CandidateShape, Ranking, HasMaps) = (name, path, shape, ranking, hasMaps);
        var notes = new List<string>(comparisonNotes);
        var comparable = ranking.Where(r => r.Comparable).ToList();
        var related = ranking.Where(r => r.Related).ToList();
        if (related.Count == 0)
        {
            Verdict = $"no parent found: none of the {ranking.Count} models is related by weights (mean attention rel. Frobenius < {RelatedThreshold}); " +
                      (comparable.Count > 0
                          ? $"the closest comparable one, {comparable[0].Name}, is at {Fixed(comparable[0].Drift)} (cosine {Fixed(comparable[0].Cosine)})"
                          : "no model has shapes comparable with the candidate");
        }
        else
        {
            Parent = related[0];
            var runnerUp = comparable.Count > 1 ? comparable[1] : null;
            var sb = new StringBuilder($"parent: {Parent.Name} (mean attention rel. Frobenius {Fixed(Parent.Drift)}, cosine {Fixed(Parent.Cosine)}");
            sb.Append(runnerUp == null
                ? "; no other comparable model"
                : $"; runner-up {runnerUp.Name} at {Fixed(runnerUp.Drift)}, margin {Fixed(runnerUp.Drift - Parent.Drift)}" +
                  (Parent.Drift > 0 ? $", {(runnerUp.Drift / Parent.Drift).ToString("0.0", CultureInfo.InvariantCulture)}x farther" : ""));
            if (Parent.MapPearson is double r)
            {
                sb.Append($"; head-map Pearson r {Fixed(r)}");
                if (runnerUp?.MapPearson is double r2) sb.Append($" vs {Fixed(r2)} for the runner-up");
            }
            Verdict = sb.Append(')').ToString();
            if (Parent.Drift == 0) notes.Add($"{Parent.Name} has exactly the candidate's attention weights: the same model or a copy of it");
            foreach (var other in related.Skip(1))
                notes.Add($"{other.Name} is related too ({Fixed(other.Drift)}): same family (an earlier ancestor, a sibling or another descendant); the closest is named parent");
        }
        if (hasMaps)
        {
            var usable = ranking.Where(r => r.MapPearson != null && !r.MapAtChance).ToList();
            var bestMap = usable.OrderByDescending(r => r.MapPearson).FirstOrDefault();
            if (bestMap != null && Parent != null && bestMap != Parent)
                notes.Add($"head maps disagree with the weights: {bestMap.Name} has the highest map correlation ({Fixed(bestMap.MapPearson!.Value)}); the verdict follows the weights");
            foreach (var row in ranking.Where(r => r.MapAtChance))
                notes.Add($"{row.Name}: a score map at chance level (or the candidate's is); its correlation is not evidence");
        }
        Notes = notes;
    }

    /// <summary>
    /// Compares the candidate with each model in turn (one model mapped at a time). <paramref name="mapPaths"/>,
    /// when given, holds the candidate's score map first and then one per model, in order.
    /// </summary>
    public static LineageReport Run(string candidatePath, IReadOnlyList<string> modelPaths, IReadOnlyList<string>? mapPaths, double chance = 0.5)
    {
        if (modelPaths.Count == 0) throw new UserError("lineage needs at least one model to compare the candidate with") { Field = "against" };
        if (mapPaths != null && mapPaths.Count != modelPaths.Count + 1)
            throw new UserError($"{mapPaths.Count} maps given; {modelPaths.Count + 1} are needed: the candidate's first, then one per model compared with, in order") { Field = "maps" };
        string[] names = [DriftModel.DisplayName(candidatePath), .. UniqueNames(modelPaths)];
        var maps = mapPaths?.Select((p, i) => ScoreMap.Load(p, names[i])).ToList();
        bool candidateAtChance = maps != null && ChanceCheck.Of(maps[0], chance).AtChance;

        using var candidate = WeightDrift.LoadWeights(candidatePath);
        var rows = new List<LineageRow>();
        var layerNotes = new List<string>();
        for (int i = 0; i < modelPaths.Count; i++)
        {
            using var model = WeightDrift.LoadWeights(modelPaths[i]);
            // Layer counts may differ (a pruned or grown relative): the common prefix is compared, and said so.
            string? mismatch = WeightDrift.ShapeMismatch(model.Config, candidate.Config, align: true);
            double drift = double.NaN, cosine = double.NaN;
            double[] perLayer = [];
            if (mismatch == null)
            {
                var d = WeightDrift.Compute(model, candidate, align: true, attentionOnly: true);
                if (model.Config.Layers != candidate.Config.Layers)
                    layerNotes.Add($"{names[i + 1]} has {model.Config.Layers} layers, the candidate {candidate.Config.Layers}: compared over layers 0..{d.Layers - 1}");
                (drift, cosine) = (d.ModelMean(WeightDrift.Attention), d.ModelMeanCosine(WeightDrift.Attention));
                perLayer = Enumerable.Range(0, d.Layers).Select(l => d.LayerMean(l, WeightDrift.Attention)).ToArray();
            }
            double? pearson = null;
            int? heads = null;
            bool atChance = false;
            if (maps != null)
            {
                var (samples, layers) = MapComparison.Align([maps[0], maps[i + 1]]);
                var stats = MapComparison.Compare(maps[0].Name, maps[i + 1].Name, samples[0], samples[1], layers, topK: 1);
                (pearson, heads) = (stats.Pearson, stats.N);
                atChance = candidateAtChance || ChanceCheck.Of(maps[i + 1], chance).AtChance;
            }
            rows.Add(new LineageRow(names[i + 1], modelPaths[i], WeightDrift.DescribeShape(model.Config), mismatch == null, mismatch,
                drift, cosine, perLayer, pearson, heads, atChance));
        }
        var ranking = rows.Where(r => r.Comparable).OrderBy(r => r.Drift)
            .Concat(rows.Where(r => !r.Comparable).OrderByDescending(r => r.MapPearson ?? double.NegativeInfinity))
            .ToList();
        return new LineageReport(names[0], candidatePath, WeightDrift.DescribeShape(candidate.Config), ranking, maps != null, layerNotes);
    }

    /// <summary>Display names, falling back to the paths as given when two models would read the same.</summary>
    private static string[] UniqueNames(IReadOnlyList<string> paths)
    {
        var names = paths.Select(DriftModel.DisplayName).ToArray();
        return names.Distinct().Count() == names.Length ? names : paths.ToArray();
    }

    public string FormatTable()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"candidate: {CandidateName} ({CandidateShape})");
        int width = Math.Max(5, Ranking.Max(r => r.Name.Length));
        sb.Append($"{"rank",4}  {"model".PadRight(width)}  {"attn rel. Frobenius",19}  {"cosine",7}");
        if (HasMaps) sb.Append($"  {"map r",7}");
        sb.AppendLine("  status");
        for (int i = 0; i < Ranking.Count; i++)
        {
            var r = Ranking[i];
            sb.Append($"{i + 1,4}  {r.Name.PadRight(width)}  {Fixed(r.Drift),19}  {Fixed(r.Cosine),7}");
            if (HasMaps) sb.Append($"  {(r.MapPearson is double p ? Fixed(p) : "n/a"),7}");
            sb.Append("  ").Append(r.Status);
            if (r.ShapeReason != null) sb.Append($": {r.Shape} vs candidate {CandidateShape}");
            if (r.MapAtChance) sb.Append(" (map at chance)");
            sb.AppendLine();
        }
        sb.AppendLine(Verdict);
        foreach (string n in Notes) sb.AppendLine($"note: {n}");
        sb.AppendLine($"rule: {Rule}");
        return sb.ToString();
    }

    public void Write(string outDir)
    {
        Directory.CreateDirectory(outDir);
        var json = new
        {
            tool = "truthprobe lineage",
            candidate = new { name = CandidateName, path = CandidatePath, shape = CandidateShape },
            statistic = "mean over layers of the mean of ||A - B||_F / ||A||_F over W_Q, W_K, W_V, W_O (A = model, B = candidate); lower = closer",
            related_threshold = RelatedThreshold,
            rule = Rule,
            ranking = Ranking.Select((r, i) => new
            {
                rank = i + 1,
                name = r.Name,
                path = r.Path,
                shape = r.Shape,
                status = r.Status,
                shape_mismatch = r.ShapeReason,
                attention_mean_rel_frobenius = r.Comparable ? r.Drift : (double?)null,
                attention_mean_cosine = r.Comparable ? r.Cosine : (double?)null,
                per_layer_attention_rel_frobenius = r.PerLayerDrift,
                map_pearson = r.MapPearson,
                map_heads = r.MapHeads,
                map_chance_level = HasMaps ? r.MapAtChance : (bool?)null,
            }),
            parent = Parent?.Name,
            verdict = Verdict,
            notes = Notes,
            provenance = Provenance.Of([], []), // deterministic, no seeds; checkpoints are not hashed (gigabytes each)
        };
        AtomicFile.WriteAllText(Path.Combine(outDir, "lineage.json"), JsonSerializer.Serialize(json, CompareReport.JsonOptions) + "\n");
    }

    private static string Fixed(double v) => DriftReport.Fixed(v);
}
