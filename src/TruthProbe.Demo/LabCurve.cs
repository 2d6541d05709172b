using System.Globalization;
using System.Text.Json.Nodes;
using System.Text;
using TruthProbe.Common;
using TruthProbe.Lineage;
using TruthProbe.Numerics;
using TruthProbe.Probing;
using TruthProbe.Reports;
using TruthProbe.Statistics;

using TruthProbe.Lab;
using static TruthProbe.Common.CsvFormat;

namespace TruthProbe.Demo;

/// <summary>One point of the inheritance curve: a checkpoint's Truth-Score map against the base's, and its weight drift.</summary>
public sealed record CurvePoint(int Step, string Checkpoint, double PearsonWithBase, double AttentionDrift, double MeanTruthScore, bool DiffersFromChance);

/// <summary>
/// How fast inheritance decays with fine-tuning distance (<c>lab curve</c>): fine-tune the base with
/// checkpoints at the asked steps, score each checkpoint on the base's probing set, and measure the Pearson
/// r of its map with the base's and its mean attention weight drift from the base.
/// </summary>
public static class LabCurve
{
    public const string CsvFile = "curve.csv", PlotFile = "curve.png", DriftPlotFile = "curve_drift.png", ManifestFile = "curve.json";

    /// <summary>Sorted distinct steps, each at least 0, at least one above 0.</summary>
    public static int[] ParseSteps(IReadOnlyList<int> steps)
    {
        if (steps.Any(s => s < 0)) throw new UserError($"curve steps must be non-negative, got {string.Join(",", steps)}") { Field = "steps" };
        var sorted = steps.Distinct().Order().ToArray();
        if (sorted.Length == 0 || sorted[^1] == 0) throw new UserError("curve steps need at least one step above 0, e.g. 0,50,100,200") { Field = "steps" };
        return sorted;
    }

    /// <summary>
    /// Fine-tunes <paramref name="baseDir"/> for the largest step, with checkpoints every gcd of the steps, into
    /// <paramref name="fineTuneDir"/>; returns the checkpoint folder of each step (step 0 is the base itself).
    /// </summary>
    public static IReadOnlyList<(int Step, string Dir)> FineTune(string baseDir, string recipe, int[] steps, string fineTuneDir, int seed, int loraRank, TextWriter log,
        IProgress<int>? progress = null)
    {
        steps = ParseSteps(steps);
        int last = steps[^1];
        int every = steps.Where(s => s > 0).Aggregate(Gcd);
        LabRuns.FineTune(new LabRuns.FineTuneOptions(baseDir, fineTuneDir, recipe, last, loraRank, seed, CheckpointEvery: every < last ? every : 0, StepProgress: progress), log);
        return steps.Select(s => (s, CheckpointDir(baseDir, fineTuneDir, s, last))).ToList();
    }

    /// <summary>Where <see cref="Measure"/> scores the checkpoint of <paramref name="step"/> under the curve's <paramref name="outDir"/>.</summary>
    public static string ScoresDir(string outDir, int step) => Path.Combine(outDir, "scores", $"step-{step:D5}");

    public static string CheckpointDir(string baseDir, string fineTuneDir, int step, int lastStep) =>
        step == 0 ? baseDir : step == lastStep ? fineTuneDir : Path.Combine(fineTuneDir, $"step-{step:D5}");

    /// <summary>
    /// Scores every checkpoint (into outDir/scores/step-NNNNN), compares it with the base's map and weights, and writes the CSV, plot and manifest.
    /// <paramref name="scored"/>: checkpoints already scored on the same probing set with the same options (the demo's base and
    /// counterfactual descendant, which are the curve's first and last steps), by folder, with the folder their scores are in;
    /// they are not scored again (the scores are the same bytes: each costs a pass over the probing set and the probes).
    /// </summary>
    public static IReadOnlyList<CurvePoint> Measure(string baseDir, double[] baseScores, IReadOnlyList<(int Step, string Dir)> checkpoints,
        string probingPath, string outDir, ProbeOptions probe, string recipe, int seed, Action? pointDone = null,
        IReadOnlyDictionary<string, (ProbeRun Run, string ScoresDir)>? scored = null)
    {
        Directory.CreateDirectory(outDir);
        var points = new List<CurvePoint>();
        var folders = new List<string>();
        using var parent = WeightDrift.LoadWeights(baseDir);
        foreach (var (step, dir) in checkpoints)
        {
            string folder = ScoresDir(outDir, step);
            ProbeRun run;
            if (scored != null && scored.TryGetValue(dir, out var done)) (run, folder) = done;
            else run = LabScoring.Score(dir, probingPath, folder, probe);
            folders.Add(Path.GetRelativePath(outDir, folder).Replace('\\', '/'));
            double r = Correlation.Pearson(baseScores, run.Scores.Accuracy);
            double drift;
            using (var child = WeightDrift.LoadWeights(dir))
                drift = WeightDrift.Compute(parent, child, attentionOnly: true).ModelMean(WeightDrift.Attention);
            points.Add(new CurvePoint(step, dir, r, drift, run.Scores.Accuracy.Average(), run.Chance.DiffersFromChance));
            pointDone?.Invoke();
        }
        Write(points, folders, outDir, baseDir, probingPath, recipe, seed, probe);
        return points;
    }

    private static void Write(IReadOnlyList<CurvePoint> points, IReadOnlyList<string> folders, string outDir, string baseDir, string probingPath, string recipe, int seed, ProbeOptions probe)
    {
        var sb = new StringBuilder("step,pearson_with_base,attention_drift,mean_truth_score,differs_from_chance\n");
        foreach (var p in points)
            sb.Append(CultureInfo.InvariantCulture, $"{p.Step},{Number(p.PearsonWithBase)},{Number(p.AttentionDrift)},{Number(p.MeanTruthScore)},{(p.DiffersFromChance ? "yes" : "no")}\n");
        AtomicFile.WriteAllText(Path.Combine(outDir, CsvFile), sb.ToString());

        double[] x = points.Select(p => (double)p.Step).ToArray();
        bool anyChance = points.Any(p => !p.DiffersFromChance);
        // Two figures, one quantity per axis: r and drift have different units and ranges.
        Plots.Writer.Lines(Path.Combine(outDir, PlotFile), $"Inheritance against fine-tuning steps ({recipe})", "fine-tuning steps", "Pearson r with the base map",
            [("Pearson r with the base map", x, points.Select(p => p.PearsonWithBase).ToArray())],
            caption: "Each checkpoint scored on the base's probing set; r over all heads." +
                     (anyChance ? " Some maps are at chance level (see curve.csv): their r is noise, not inheritance." : ""),
            integerX: true);
        Plots.Writer.Lines(Path.Combine(outDir, DriftPlotFile), $"Weight drift against fine-tuning steps ({recipe})", "fine-tuning steps", "mean attention drift ||A - B||_F / ||A||_F",
            [("mean attention drift", x, points.Select(p => p.AttentionDrift).ToArray())],
            caption: "Mean over layers and W_Q, W_K, W_V, W_O of the relative Frobenius distance from the base.", integerX: true, yFromZero: true);

        var manifest = new JsonObject
        {
            ["tool"] = "truthprobe lab curve",
            ["base"] = Path.GetFullPath(baseDir),
            ["recipe"] = recipe,
            ["fine_tune_seed"] = seed,
            ["probe_seed"] = probe.Seed,
            ["probe_folds"] = probe.Folds,
            ["pearson"] = "Pearson r of the checkpoint's Truth-Score map with the base's, over all heads",
            ["drift"] = WeightDrift.Normalisation,
            ["steps"] = new JsonArray(points.Select(p => (JsonNode?)p.Step).ToArray()),
            ["outputs"] = new JsonArray(CsvFile, PlotFile, DriftPlotFile, "scores/step-NNNNN/"),
            // Each step's scores folder, relative to this one: a step scored before the curve keeps its own folder.
            ["score_folders"] = new JsonObject(points.Select((p, i) => KeyValuePair.Create(p.Step.ToString(CultureInfo.InvariantCulture), (JsonNode?)folders[i]))),
            ["provenance"] = Provenance.Of([("fine_tune", seed), ("probe", probe.Seed), ("control", probe.ControlSeed)],
                [("probing_set", Hashing.Sha256File(probingPath))]),
        };
        AtomicFile.WriteAllText(Path.Combine(outDir, ManifestFile), manifest.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);

}
