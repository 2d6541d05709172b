using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.Json;
using System.Text;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Gating;
using TruthProbe.Lineage;
using TruthProbe.Model;
using TruthProbe.Numerics;
using TruthProbe.Probing;
using TruthProbe.Reports;
using TruthProbe.Training;

using TruthProbe.Lab;
using TruthProbe.Statistics;

namespace TruthProbe.Demo;

/// <summary>
/// One of the demo's claims, checked on this run's numbers. Inconclusive: the numbers cannot speak to the
/// claim (maps at chance level say nothing about inheritance, whichever way they correlate).
/// </summary>
public sealed record DemoCheck(string Name, DemoCheck.Result Outcome, string Detail)
{
    public enum Result { Pass, Fail, Inconclusive }
    public string Label => Outcome.ToString().ToUpperInvariant();
    public static Result Of(bool passed) => passed ? Result.Pass : Result.Fail;
}

/// <summary>
/// The demo after the family exists: score every model, compare the maps, weight drift and parent
/// detection, the inheritance curve, base-model gates on every descendant (vanilla vs gated on the lab's
/// HaluEval-layout set), the checks, summary.json and report.html. Every file lands under the output folder.
/// </summary>
public sealed class DemoRun
{
    public const double Chance = 0.5;
    public const int SplitSeed = 42;

    public required DemoFamily Family { get; init; }
    public required DemoPlan Plan { get; init; }
    public required int Seed { get; init; }
    public required string OutDir { get; init; }
    public List<DemoCheck> Checks { get; } = [];

    public const string ProbingFile = "probing_one_per_episode.jsonl";

    private ProbeOptions Probe => new(Folds: Plan.ProbeFolds, Seed: 42);
    /// <summary>The base's probing set cut to one row per episode (see <see cref="LabScoring.OneRowPerEpisode"/>).</summary>
    public string ProbingPath => Out(ProbingFile);
    private IEnumerable<FamilyMember> Descendants => Family.Members.Where(m => m.Parent != null);
    private string Out(params string[] parts) => Path.Combine([OutDir, .. parts]);

    public static DemoRun Execute(DemoFamily family, DemoPlan plan, int seed, string outDir)
    {
        var run = new DemoRun { Family = family, Plan = plan, Seed = seed, OutDir = outDir };
        Directory.CreateDirectory(outDir);
        // scores per model, compare, lineage per non-base model, curve checkpoints, eval per model, report
        int stages = family.Members.Count + 1 + (family.Members.Count - 1) + family.CurveCheckpoints.Count + family.Members.Count + 1 + DemoVlm.Stages;
        using var progress = new Progress("demo", stages);
        run.WriteFamily();
        LabScoring.OneRowPerEpisode(family.ProbingPath, run.ProbingPath);
        var scores = family.Members.ToDictionary(m => m.Name, m =>
        {
            var r = LabScoring.Score(m.Dir, run.ProbingPath, run.Out("scores", m.Name), run.Probe);
            progress.Advance();
            return r;
        });
        run.WriteControls(scores);
        FamilyMaps.Write(outDir, scores);
        var compare = run.Compare(scores);
        progress.Advance();
        run.DriftAndLineage(progress);
        var curve = LabCurve.Measure(family.Base.Dir, scores["base"].Scores.Accuracy, family.CurveCheckpoints, run.ProbingPath,
            run.Out("curve"), run.Probe, "counterfactual", seed, progress);
        run.Evaluate(scores["base"], progress);
        run.CheckClaims(compare, scores, curve);
        DemoVlm.Run(run, scores["base"], run.Probe, progress);
        run.WriteSummary(scores, compare);
        progress.Advance();
        DemoReport.Build(run).Write();
        return run;
    }

    // ---- the family ----

    private void WriteFamily()
    {
        var sb = new StringBuilder("name,parent,recipe,steps,lora_rank,seed,reading_accuracy,counterfactual_reading_accuracy\n");
        foreach (var m in Family.Members)
        {
            var lab = JsonNode.Parse(File.ReadAllText(Path.Combine(m.Dir, LabCheckpoint.MetadataFile)))!;
            double Acc(string key) => lab["reading_accuracy"]?[key]?.GetValue<double>() * 100 ?? double.NaN;
            sb.Append(CultureInfo.InvariantCulture, $"{m.Name},{m.Parent ?? "none"},{m.Recipe},{m.Steps},{m.LoraRank},{m.Seed},{CsvFormat.Number(Acc("overall"))},{CsvFormat.Number(Acc("counterfactual"))}\n");
        }
        AtomicFile.WriteAllText(Out("family.csv"), sb.ToString());
    }

    private void WriteControls(IReadOnlyDictionary<string, ProbeRun> scores)
    {
        var sb = new StringBuilder("model,mean_truth_score,max_truth_score,control_mean,mean_selectivity,surface_baseline,heads_above_surface,heads_above_chance,differs_from_chance\n");
        foreach (var (name, r) in scores)
        {
            double mean = r.Scores.Accuracy.Average(), control = r.Control?.Accuracy.Average() ?? double.NaN;
            double surface = r.Surface?.Accuracy[0] ?? double.NaN;
            sb.Append(CultureInfo.InvariantCulture,
                $"{name},{CsvFormat.Number(mean)},{CsvFormat.Number(r.Scores.Accuracy.Max())},{CsvFormat.Number(control)},{CsvFormat.Number(mean - control)},{CsvFormat.Number(surface)},{r.Scores.Accuracy.Count(a => a > surface)},{r.Chance.HeadsAboveChance},{(r.Chance.DiffersFromChance ? "yes" : "no")}\n");
        }
        AtomicFile.WriteAllText(Out("controls.csv"), sb.ToString());
    }

    // ---- comparison, drift, lineage ----

    private CompareReport Compare(IReadOnlyDictionary<string, ProbeRun> scores)
    {
        var paths = Family.Members.Select(m => Out("scores", m.Name, "scores.npy")).ToList();
        var maps = Family.Members.Select((m, i) => ScoreMap.Load(paths[i], m.Name)).ToList();
        var report = CompareReport.Run(maps, "base", topK: 4, sharedAcrossAll: false, Chance);
        report.Write(Out("compare"), paths, Plots.Writer);
        return report;
    }

    private void DriftAndLineage(Progress progress)
    {
        var perLayer = new List<(string Name, double[] Layers, double[] Drift)>();
        var layerCsv = new StringBuilder("model,layer,attention_drift\n");
        using (var parent = WeightDrift.LoadWeights(Family.Base.Dir))
            foreach (var m in Family.Members.Skip(1))
            {
                using var child = WeightDrift.LoadWeights(m.Dir);
                var drift = WeightDrift.Compute(parent, child);
                DriftReport.Write(drift, Out("drift", m.Name), Plots.Writer);
                var layers = Enumerable.Range(0, drift.Layers).Select(l => drift.LayerMean(l, WeightDrift.Attention)).ToArray();
                for (int l = 0; l < layers.Length; l++) layerCsv.Append(CultureInfo.InvariantCulture, $"{m.Name},{l},{CsvFormat.Number(layers[l])}\n");
                perLayer.Add((m.Name, Enumerable.Range(0, layers.Length).Select(l => (double)l).ToArray(), layers));
            }
        AtomicFile.WriteAllText(Out("drift_layers.csv"), layerCsv.ToString());
        Plots.Writer.Lines(Out("drift_layers.png"), "Attention weight drift from the base, per layer", "layer", "mean ||A - B||_F / ||A||_F over Q, K, V, O",
            perLayer, caption: "A = base, B = each other model. Descendants stay close to the base; the unrelated model (independent initialisation) sits near sqrt(2) = 1.41.",
            integerX: true, yFromZero: true);
        var sb = new StringBuilder("candidate,true_parent,found_parent,found_drift,runner_up,runner_up_drift,correct\n");
        foreach (var m in Family.Members.Skip(1))
        {
            var others = Family.Members.Where(o => o != m).ToList();
            var maps = new[] { m }.Concat(others).Select(o => Out("scores", o.Name, "scores.npy")).ToList();
            var report = LineageReport.Run(m.Dir, others.Select(o => o.Dir).ToList(), maps, Chance);
            report.Write(Out("lineage", m.Name));
            string found = report.Parent?.Name ?? "none";
            var runnerUp = report.Ranking.Where(r => r.Comparable && r != report.Parent).FirstOrDefault();
            bool correct = found == (m.Parent ?? "none");
            sb.Append(CultureInfo.InvariantCulture,
                $"{m.Name},{m.Parent ?? "none"},{found},{CsvFormat.Number(report.Parent?.Drift ?? double.NaN)},{runnerUp?.Name ?? "none"},{CsvFormat.Number(runnerUp?.Drift ?? double.NaN)},{(correct ? "yes" : "no")}\n");
            progress.Advance();
        }
        AtomicFile.WriteAllText(Out("lineage.csv"), sb.ToString());
    }

    // ---- gates and evaluation ----

    /// <summary>
    /// Gates from the base's map (contrast mode) on every model, lambda chosen per model by F1 on a seeded
    /// 20% of the rows (as <c>eval halueval --lambda-sweep</c>); metrics on the other 80% only.
    /// </summary>
    private void Evaluate(ProbeRun baseScores, Progress progress)
    {
        var rows = LabJudge.ReadRows(Family.EvalPath);
        var (tuningData, testData) = HaluEvalSweep.Split(rows.Select(r => r.Data).ToList(), SplitSeed);
        var tuningIds = tuningData.Select(r => r.Index).ToHashSet();
        var tuning = rows.Where(r => tuningIds.Contains(r.Data.Index)).ToList();
        var test = rows.Where(r => !tuningIds.Contains(r.Data.Index)).ToList();
        var set = baseScores.Set;
        Directory.CreateDirectory(Out("gates"));

        var sb = new StringBuilder("model,condition,gates_from,lambda,accuracy,f1,precision,recall,reading_accuracy,counterfactual_reading_accuracy,mcnemar_p,items\n");
        foreach (var m in Family.Members)
        {
            using var model = Transformer.Load(m.Dir);
            Interventions Gates(double lambda) => new Interventions(model.Config).Gate(
                GateTable.FromScores(baseScores.Scores.Accuracy, set.Layers, set.Heads, GateMode.Contrast, lambda, source: Out("scores", "base", "scores.npy")).ToFloats(), GateSite.Head);
            var candidates = Plan.Lambdas.Select(lambda =>
            {
                var judged = LabJudge.Judge(tuning, LabJudge.Completions(model, tuning, Gates(lambda)), Plan.Seeds);
                return (lambda, judged.Metric(s => s.F1).Mean);
            }).ToList();
            double chosen = HaluEvalSweep.Choose(candidates);
            GateTable.FromScores(baseScores.Scores.Accuracy, set.Layers, set.Heads, GateMode.Contrast, chosen, source: Out("scores", "base", "scores.npy"))
                .Save(Out("gates", $"{m.Name}.npy"));
            var vanilla = LabJudge.Judge(test, LabJudge.Completions(model, test, null), Plan.Seeds);
            var gated = LabJudge.Judge(test, LabJudge.Completions(model, test, Gates(chosen)), Plan.Seeds);
            double p = HaluEvalComparison.Of(vanilla.Judged, gated.Judged).Pooled.PValue;
            void Line(string condition, LabJudgement j, double? lambda) => sb.Append(CultureInfo.InvariantCulture,
                $"{m.Name},{condition},{(lambda == null ? "none" : "base")},{(lambda == null ? "nan" : CsvFormat.Number(lambda.Value))},{CsvFormat.Number(j.Metric(s => s.Accuracy).Mean)},{CsvFormat.Number(j.Metric(s => s.F1).Mean)}," +
                $"{CsvFormat.Number(j.Metric(s => s.Precision).Mean)},{CsvFormat.Number(j.Metric(s => s.Recall).Mean)},{CsvFormat.Number(j.ReadingAccuracy)},{CsvFormat.Number(j.CounterfactualReadingAccuracy)},{CsvFormat.Number(p)},{j.Judged.Count}\n");
            Line("vanilla", vanilla, null);
            Line("gated", gated, chosen);
            progress.Advance();
        }
        AtomicFile.WriteAllText(Out("eval.csv"), sb.ToString());
    }

    // ---- the claims ----

    private void CheckClaims(CompareReport compare, IReadOnlyDictionary<string, ProbeRun> scores, IReadOnlyList<CurvePoint> curve)
    {
        int b = 0, u = Family.Members.Count - 1;
        double within = Descendants.Average(d => compare.Pair(b, Index(d.Name)).Pearson);
        double cross = compare.Pair(b, u).Pearson;
        var atChance = scores.Where(s => !s.Value.Chance.DiffersFromChance).Select(s => s.Key).ToList();
        Checks.Add(new DemoCheck("within_family_above_cross_family", atChance.Count > 0 ? DemoCheck.Result.Inconclusive : DemoCheck.Of(within > cross),
            Invariant($"mean Pearson r of the base map with its descendants {within:0.0000} vs with the unrelated model {cross:0.0000}") +
            "; 95% intervals over heads: " + string.Join(", ", Family.Members.Skip(1).Select(m => compare.Pair(b, Index(m.Name)) is var p
                ? Invariant($"{m.Name} [{p.PearsonInterval.Low:0.0000}, {p.PearsonInterval.High:0.0000}]") : "")) +
            (atChance.Count > 0 ? $"; maps at chance level ({string.Join(", ", atChance)}): these correlations are not evidence of inheritance either way" : "")));

        var lineage = ReportLines(Out("lineage.csv"));
        Checks.Add(new DemoCheck("lineage_finds_parents", DemoCheck.Of(lineage.All(l => l[^1] == "yes")),
            string.Join("; ", lineage.Select(l => $"{l[0]}: found {l[2]} (true {l[1]})"))));

        bool increasing = curve.Zip(curve.Skip(1)).All(p => p.Second.AttentionDrift > p.First.AttentionDrift);
        Checks.Add(new DemoCheck("drift_grows_with_fine_tuning", DemoCheck.Of(increasing),
            string.Join(", ", curve.Select(p => Invariant($"step {p.Step}: {p.AttentionDrift:0.0000}")))));

        // One check per model, so a model the gates hurt is a FAIL in the summary, not only in the gating section.
        foreach (var pair in ReportLines(Out("eval.csv")).Chunk(2))
        {
            double vanilla = Number(pair[0][4]), gated = Number(pair[1][4]), p = Number(pair[1][10]);
            var outcome = p < GatingAlpha ? DemoCheck.Of(gated > vanilla) : DemoCheck.Result.Inconclusive;
            Checks.Add(new DemoCheck(GatingCheckPrefix + pair[0][0], outcome,
                Invariant($"accuracy {vanilla:0.00} vanilla vs {gated:0.00} gated at lambda {pair[1][3]}, McNemar {PValueText.Format(p)}") +
                (outcome == DemoCheck.Result.Inconclusive ? $"; not significant at {GatingAlpha}" : "")));
        }
    }

    /// <summary>Checks named this plus a model's name: do the base's gates raise that model's accuracy (McNemar p below <see cref="GatingAlpha"/>)?</summary>
    public const string GatingCheckPrefix = "base_gates_help_";
    public const double GatingAlpha = 0.05;

    private static double Number(string s) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v : double.NaN;

    private int Index(string name) => Family.Members.Select(m => m.Name).ToList().IndexOf(name);

    private static List<string[]> ReportLines(string csv) => File.ReadAllLines(csv).Skip(1).Where(l => l.Length > 0).Select(l => l.Split(',')).ToList();

    private void WriteSummary(IReadOnlyDictionary<string, ProbeRun> scores, CompareReport compare)
    {
        var summary = new JsonObject
        {
            ["tool"] = "truthprobe demo",
            ["seed"] = Seed,
            ["unrelated_seed"] = Seed + DemoFamily.UnrelatedSeedOffset,
            ["probe_seed"] = Probe.Seed,
            ["control_seed"] = Probe.ControlSeed,
            ["eval_seeds"] = new JsonArray(Plan.Seeds.Select(s => (JsonNode?)s).ToArray()),
            ["lambda_split_seed"] = SplitSeed,
            ["family_cache"] = Family.Dir,
            ["family_from_cache"] = Family.FromCache,
            ["plan"] = JsonSerializer.SerializeToNode(Plan),
            ["within_family_mean_pearson"] = Descendants.Average(d => compare.Pair(0, Index(d.Name)).Pearson),
            ["cross_family_pearson"] = compare.Pair(0, Family.Members.Count - 1).Pearson,
            ["checks"] = new JsonArray(Checks.Select(c => (JsonNode?)new JsonObject { ["name"] = c.Name, ["outcome"] = c.Label, ["detail"] = c.Detail }).ToArray()),
            ["score_sha256"] = new JsonObject(scores.Keys.Select(n => KeyValuePair.Create(n, (JsonNode?)Hashing.Sha256File(Out("scores", n, "scores.npy"))))),
            // The family is grown here from the seeds (its lab.json files record their data hashes), so there are no input files.
            ["provenance"] = Provenance.Of(
                new (string, JsonNode)[] { ("family", Seed), ("unrelated", Seed + DemoFamily.UnrelatedSeedOffset), ("probe", Probe.Seed),
                                           ("control", Probe.ControlSeed), ("lambda_split", SplitSeed) }
                    .Concat(Plan.Seeds.Select((s, i) => ($"eval_{i}", (JsonNode)s))), []),
        };
        AtomicFile.WriteAllText(Out("summary.json"), summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>The short text summary the demo prints.</summary>
    public string TextSummary()
    {
        var sb = new StringBuilder();
        foreach (var line in ReportLines(Out("controls.csv")))
            sb.AppendLine($"  {line[0],-15} mean Truth Score {Fixed(line[1])}  max {Fixed(line[2])}  control {Fixed(line[3])}  surface {Fixed(line[5])} (heads above it: {line[6]})  {(line[8] == "yes" ? "" : "AT CHANCE")}");
        foreach (var line in ReportLines(Out("eval.csv")).Chunk(2))
            sb.AppendLine($"  {line[0][0],-15} F1 vanilla {Fixed(line[0][5])} -> gated {Fixed(line[1][5])} (lambda {line[1][3]}, McNemar {PValue(line[1][10])})");
        foreach (var c in Checks) sb.AppendLine($"{c.Label} {c.Name}: {c.Detail}");
        return sb.ToString();
    }

    private static string PValue(string v) => PValueText.Format(Number(v));

    private static string Fixed(string v) => double.IsNaN(Number(v)) ? v : Number(v).ToString("0.000", CultureInfo.InvariantCulture);

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

}
