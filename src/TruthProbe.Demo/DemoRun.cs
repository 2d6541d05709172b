using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.Json;
using System.Text;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Formats;
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
    /// <summary>True when the analysis was read from <see cref="DemoAnalysisCache"/> instead of computed.</summary>
    public bool FromCache { get; private set; }

    public const string ProbingFile = "probing_one_per_episode.jsonl";
    /// <summary>The demo's own sets, drawn from the family's world: the probing set (both rows per episode) and the harder evaluation set.</summary>
    public const string ProbingPairsFile = "probing.jsonl", EvalFile = "halueval_hard.jsonl";
    /// <summary>Seed of the row bootstrap and of the gating bootstrap.</summary>
    public const int BootstrapSeed = 42;

    private ProbeOptions Probe => new(Folds: Plan.ProbeFolds, Seed: 42);
    /// <summary>The base's probing set cut to one row per episode (see <see cref="LabScoring.OneRowPerEpisode"/>).</summary>
    public string ProbingPath => Out(ProbingFile);
    private IEnumerable<FamilyMember> Descendants => Family.Descendants;
    private string Out(params string[] parts) => Path.Combine([OutDir, .. parts]);

    /// <summary>
    /// The stages of the whole demo, for its one progress line, each weighted by its expected share of a cold
    /// run's time (estimated for the 2-core machines, docs/demo.md; the weights only shape the ETA).
    /// </summary>
    public static IReadOnlyList<(string Name, double Weight)> Stages(DemoPlan plan)
    {
        var family = DemoFamily.Layout("", plan, 0);
        double rows = plan.ProbingEpisodes * (double)(family.Members.Count + CurveBetween(family).Count);
        return
        [
            ("family", FamilyProgress.ExpectedSeconds(plan)),
            ("scores", rows * SecondsPerRow / DemoLanes.Count), // the models and the curve's checkpoints on two lanes
            ("compare", plan.BootstrapRows * family.Members.Count * plan.ProbingEpisodes * SecondsPerBootstrapRow),
            ("drift and lineage", 2),
            ("curve", 1), // every step is scored by then: its drift and files
            ("gating", family.Members.Count * plan.EvalItems * (2 * plan.Lambdas.Length * 0.2 + 3 * 0.8) * SecondsPerCompletion), // base and placebo arms
            ("vlm", 20),
            ("report", 2),
        ];
    }

    /// <summary>The curve's checkpoints that are not members of the family (its ends are the base and the counterfactual descendant).</summary>
    private static List<(int Step, string Dir)> CurveBetween(DemoFamily family) =>
        family.CurveCheckpoints.Where(c => family.Members.All(m => m.Dir != c.Dir)).ToList();

    // Rough seconds per unit on the 2-core machines with two training lanes (docs/demo.md); they shape the ETA only,
    // which extrapolates the measured elapsed time, so a uniformly slower machine still gets a right ETA.
    private const double SecondsPerRow = 0.002, SecondsPerBootstrapRow = 1.6e-5, SecondsPerCompletion = 0.002;

    public static DemoRun Execute(DemoFamily family, DemoPlan plan, int seed, string outDir, StageProgress? progress = null)
    {
        var run = new DemoRun { Family = family, Plan = plan, Seed = seed, OutDir = outDir };
        Directory.CreateDirectory(outDir);
        using var quiet = progress == null ? new StageProgress("demo", Stages(plan), quiet: true) : null;
        progress ??= quiet!;
        var cache = DemoAnalysisCache.For(family, plan, seed, outDir);
        if (cache.TryRestore(run))
        {
            progress.Begin("report", 1);
            run.FromCache = true;
            return run;
        }
        run.WriteFamily();
        run.WriteSets();
        // The curve's checkpoints between its ends (the base and the counterfactual descendant, members already) are scored
        // here on the lanes beside the members, into the folders the curve would score them in, instead of one after
        // another in the curve stage.
        var scoring = family.Members.Select(m => (m.Dir, Folder: run.Out("scores", m.Name)))
            .Concat(CurveBetween(family).Select(c => (c.Dir, Folder: LabCurve.ScoresDir(run.Out("curve"), c.Step)))).ToList();
        progress.Begin("scores", scoring.Count);
        var scored = new ProbeRun[scoring.Count];
        DemoLanes.Run(scoring.Select((job, i) => (Action)(() =>
        {
            scored[i] = LabScoring.Score(job.Dir, run.ProbingPath, job.Folder, run.Probe);
            progress.Advance();
        })).ToList());
        var scores = family.Members.Select((m, i) => (m.Name, Run: scored[i])).ToDictionary(s => s.Name, s => s.Run);
        var curveDirs = family.CurveCheckpoints.Select(c => c.Dir).ToHashSet(StringComparer.Ordinal);
        var curveScored = scoring.Select((job, i) => (job.Dir, Scored: (scored[i], job.Folder))).Where(x => curveDirs.Contains(x.Dir)).ToDictionary(x => x.Dir, x => x.Scored);
        run.WriteControls(scores);
        FamilyMaps.Write(outDir, scores);
        // Gating and the vlm's measures read only the scores, so they run beside compare, drift and the curve (whose
        // bootstrap and probe fits leave a core partly idle) instead of after them; each writes its own files.
        var gatingStage = new DemoLanes.AheadStage(progress, "gating", family.Members.Count);
        var vlmStage = new DemoLanes.AheadStage(progress, "vlm", DemoVlm.Stages);
        var gating = DemoLanes.Aside(() => run.Evaluate(scores["base"], gatingStage.Advance));
        var vlm = DemoLanes.Aside(() => DemoVlm.Run(run, scores["base"], run.Probe, vlmStage.Advance));
        CompareReport compare;
        IReadOnlyList<CurvePoint> curve;
        try
        {
            progress.Begin("compare", plan.BootstrapRows * family.Members.Count);
            compare = run.Compare(progress);
            progress.Begin("drift and lineage", family.Members.Count - 1);
            run.DriftAndLineage(progress);
            progress.Begin("curve", family.CurveCheckpoints.Count);
            curve = LabCurve.Measure(family.Base.Dir, scores["base"].Scores.Accuracy, family.CurveCheckpoints, run.ProbingPath,
                run.Out("curve"), run.Probe, "counterfactual", seed, () => progress.Advance(), curveScored);
        }
        catch
        {
            DemoLanes.Settle(gating, vlm);
            throw;
        }
        gatingStage.Begin();
        DemoLanes.Join(gating, vlm);
        run.CheckClaims(compare, scores, curve);
        vlmStage.Begin();
        DemoLanes.Join(vlm);
        vlm.Result(); // the vlm's checks come after the text ones
        progress.Begin("report", 1);
        run.WriteSummary(scores, compare);
        DemoReport.Build(run).Write();
        cache.Store();
        return run;
    }

    /// <summary>
    /// The probing set (<see cref="DemoPlan.ProbingEpisodes"/> episodes, cut to one row per episode) and the harder
    /// evaluation set (<see cref="DemoPlan.EvalFacts"/> context sentences, most distractors of the asked kind),
    /// drawn from the family's world by the lab's held-out streams.
    /// </summary>
    private void WriteSets()
    {
        var world = new SyntheticWorld(DemoFamily.WorldSeed);
        LabDatasets.WriteProbing(Out(ProbingPairsFile), world, Plan.ProbingEpisodes);
        LabScoring.OneRowPerEpisode(Out(ProbingPairsFile), ProbingPath);
        LabDatasets.WriteHaluEval(Out(EvalFile), world, Plan.EvalItems, Plan.EvalFacts, PretrainRecipe.SameKindShare);
    }

    // ---- the family ----

    private void WriteFamily()
    {
        var sb = new StringBuilder("name,parent,recipe,steps,lora_rank,seed,reading_accuracy,counterfactual_reading_accuracy\n");
        foreach (var m in Family.Members)
        {
            var lab = JsonNode.Parse(File.ReadAllText(Path.Combine(m.Dir, LabCheckpoint.MetadataFile)))!;
            double Acc(string key) => lab["reading_accuracy"]?[key]?.GetValue<double>() * 100 ?? double.NaN;
            // The steps trained: a pretraining's stop rule may end it before the plan's cap.
            sb.Append(CultureInfo.InvariantCulture, $"{m.Name},{m.Parent ?? "none"},{m.Recipe},{lab["steps"]?.GetValue<int>() ?? m.Steps},{m.LoraRank},{m.Seed},{CsvFormat.Number(Acc("overall"))},{CsvFormat.Number(Acc("counterfactual"))}\n");
        }
        AtomicFile.WriteAllText(Out("family.csv"), sb.ToString());
    }

    private void WriteControls(IReadOnlyDictionary<string, ProbeRun> scores)
    {
        var sb = new StringBuilder("model,mean_truth_score,max_truth_score,control_mean,mean_selectivity,surface_baseline,heads_above_surface,heads_above_chance,differs_from_chance,rows,max_wilson_half_width\n");
        foreach (var (name, r) in scores)
        {
            double mean = r.Scores.Accuracy.Average(), control = r.Control?.Accuracy.Average() ?? double.NaN;
            double surface = r.Surface?.Accuracy[0] ?? double.NaN;
            sb.Append(CultureInfo.InvariantCulture,
                $"{name},{CsvFormat.Number(mean)},{CsvFormat.Number(r.Scores.Accuracy.Max())},{CsvFormat.Number(control)},{CsvFormat.Number(mean - control)},{CsvFormat.Number(surface)},{r.Scores.Accuracy.Count(a => a > surface)},{r.Chance.HeadsAboveChance},{(r.Chance.DiffersFromChance ? "yes" : "no")}," +
                $"{r.Set.Rows},{CsvFormat.Number(MaxWilsonHalfWidth(r))}\n");
        }
        AtomicFile.WriteAllText(Out("controls.csv"), sb.ToString());
    }

    /// <summary>The widest 95% Wilson half-width of a head's Truth Score over the map: how well the rows pin each score down.</summary>
    public static double MaxWilsonHalfWidth(ProbeRun r) => r.Scores.Accuracy.Max(a =>
        Proportion.Wilson(Proportion.Correct(a, r.Set.Rows), r.Set.Rows) is var w ? (w.High - w.Low) / 2 : double.NaN);

    // ---- comparison, drift, lineage ----

    /// <summary>
    /// compare with the row bootstrap (as <c>compare --bootstrap-rows</c>): every resample re-fits every head's probes,
    /// so each r's interval carries the noise of the probing rows behind both maps. The layer-centred r gets its
    /// interval from the same resamples (<see cref="LayerCentredIntervals"/>).
    /// </summary>
    private CompareReport Compare(StageProgress progress)
    {
        var folders = Family.Members.Select(m => Out("scores", m.Name)).ToList();
        var sources = Family.Members.Select((m, i) => RowSource.Load(folders[i], m.Name)).ToList();
        var rows = RowBootstrap.Run(sources, Plan.BootstrapRows, BootstrapSeed, progress.Counter());
        var maps = sources.Select(s => s.Map).ToList();
        var report = CompareReport.Run(maps, "base", topK: 4, sharedAcrossAll: false, Chance, rows: rows);
        report.Write(Out("compare"), folders.Select(f => Path.Combine(f, "scores.npy")).ToList(), Plots.Writer);
        LayerCentred = LayerCentredIntervals(report, rows);
        return report;
    }

    /// <summary>The row-bootstrap interval of each pair's layer-centred r (with the base), keyed by the other model's name.</summary>
    public IReadOnlyDictionary<string, Interval> LayerCentred { get; private set; } = new Dictionary<string, Interval>();

    private Dictionary<string, Interval> LayerCentredIntervals(CompareReport report, RowBootstrap rows)
    {
        static (double[], double[]) Centred(ScoreMap x, ScoreMap y)
        {
            var (s, layers) = MapComparison.Align([x, y]);
            return (MapCorrelation.LayerCentred(s[0], layers), MapCorrelation.LayerCentred(s[1], layers));
        }
        return Family.Members.Skip(1).ToDictionary(m => m.Name, m =>
            rows.PearsonInterval(0, Index(m.Name), Centred, report.Pair(0, Index(m.Name)).PearsonLayerCentred));
    }

    private void DriftAndLineage(StageProgress progress)
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
    /// 20% of the rows (as <c>eval halueval --lambda-sweep</c>); metrics on the other 80% only. The same protocol with
    /// the <see cref="GatePlacebo"/> map is the control arm -> eval_placebo.csv.
    /// </summary>
    private void Evaluate(ProbeRun baseScores, Action advance)
    {
        var rows = LabJudge.ReadRows(Out(EvalFile));
        var (tuningData, testData) = HaluEvalSweep.Split(rows.Select(r => r.Data).ToList(), SplitSeed);
        var tuningIds = tuningData.Select(r => r.Index).ToHashSet();
        var tuning = rows.Where(r => tuningIds.Contains(r.Data.Index)).ToList();
        var test = rows.Where(r => !tuningIds.Contains(r.Data.Index)).ToList();
        var set = baseScores.Set;
        Directory.CreateDirectory(Out("gates"));
        double[] placeboScores = GatePlacebo.Shuffled(baseScores.Scores.Accuracy, set.Layers, set.Heads, GatePlacebo.Seed);
        Npy.WriteFloat64(Out("gates", GatePlacebo.ScoresFile), placeboScores, set.Layers, set.Heads);

        var sb = new StringBuilder("model,condition,gates_from,lambda,accuracy,f1,precision,recall,reading_accuracy,counterfactual_reading_accuracy,mcnemar_p,items,accuracy_low,accuracy_high,difference_low,difference_high\n");
        var placeboCsv = new StringBuilder("model,lambda,accuracy,accuracy_low,accuracy_high,difference_low,difference_high,mcnemar_p,mcnemar_p_vs_base_gates\n");
        foreach (var m in Family.Members)
        {
            using var model = Transformer.Load(m.Dir);
            GateTable Table(double[] scores, double lambda, string source) => GateTable.FromScores(scores, set.Layers, set.Heads, GateMode.Contrast, lambda, source: source);
            // One arm of the protocol: lambda by tuning F1, then the test rows at that lambda.
            (double Lambda, LabJudgement Test) Arm(double[] scores, string source)
            {
                Interventions Gates(double lambda) => new Interventions(model.Config).Gate(Table(scores, lambda, source).ToFloats(), GateSite.Head);
                double chosen = HaluEvalSweep.Choose(Plan.Lambdas.Select(lambda =>
                    (lambda, LabJudge.Judge(tuning, LabJudge.Completions(model, tuning, Gates(lambda)), Plan.Seeds).Metric(s => s.F1).Mean)).ToList());
                return (chosen, LabJudge.Judge(test, LabJudge.Completions(model, test, Gates(chosen)), Plan.Seeds));
            }
            var (chosen, gated) = Arm(baseScores.Scores.Accuracy, Out("scores", "base", "scores.npy"));
            Table(baseScores.Scores.Accuracy, chosen, Out("scores", "base", "scores.npy")).Save(Out("gates", $"{m.Name}.npy"));
            var vanilla = LabJudge.Judge(test, LabJudge.Completions(model, test, null), Plan.Seeds);
            var (placeboLambda, placebo) = Arm(placeboScores, Out("gates", GatePlacebo.ScoresFile));
            double p = HaluEvalComparison.Of(vanilla.Judged, gated.Judged).Pooled.PValue;
            var (v, g, pl) = (RowAccuracy(vanilla, test.Count), RowAccuracy(gated, test.Count), RowAccuracy(placebo, test.Count));
            var (ones, zeros) = (Enumerable.Repeat(1.0, test.Count).ToArray(), new double[test.Count]);
            // Means as ratios over one per row; each condition's interval is its difference from an all-zero one.
            Interval Bootstrap(double[] a, double[] b) => PairedBootstrap.RatioDifference(a, ones, b, ones, GatingResamples, BootstrapSeed);
            void Line(string condition, LabJudgement j, double? lambda, Interval accuracy, Interval difference) => sb.Append(CultureInfo.InvariantCulture,
                $"{m.Name},{condition},{(lambda == null ? "none" : "base")},{(lambda == null ? "nan" : CsvFormat.Number(lambda.Value))},{CsvFormat.Number(j.Metric(s => s.Accuracy).Mean)},{CsvFormat.Number(j.Metric(s => s.F1).Mean)}," +
                $"{CsvFormat.Number(j.Metric(s => s.Precision).Mean)},{CsvFormat.Number(j.Metric(s => s.Recall).Mean)},{CsvFormat.Number(j.ReadingAccuracy)},{CsvFormat.Number(j.CounterfactualReadingAccuracy)},{CsvFormat.Number(p)},{j.Judged.Count}," +
                $"{CsvFormat.Number(100 * accuracy.Low)},{CsvFormat.Number(100 * accuracy.High)},{CsvFormat.Number(100 * difference.Low)},{CsvFormat.Number(100 * difference.High)}\n");
            Line("vanilla", vanilla, null, Bootstrap(zeros, v), Interval.Undefined);
            Line("gated", gated, chosen, Bootstrap(zeros, g), Bootstrap(v, g));
            var (placeboAccuracy, placeboDifference) = (Bootstrap(zeros, pl), Bootstrap(v, pl));
            placeboCsv.Append(CultureInfo.InvariantCulture,
                $"{m.Name},{CsvFormat.Number(placeboLambda)},{CsvFormat.Number(placebo.Metric(s => s.Accuracy).Mean)},{CsvFormat.Number(100 * placeboAccuracy.Low)},{CsvFormat.Number(100 * placeboAccuracy.High)}," +
                $"{CsvFormat.Number(100 * placeboDifference.Low)},{CsvFormat.Number(100 * placeboDifference.High)},{CsvFormat.Number(HaluEvalComparison.Of(vanilla.Judged, placebo.Judged).Pooled.PValue)}," +
                $"{CsvFormat.Number(HaluEvalComparison.Of(placebo.Judged, gated.Judged).Pooled.PValue)}\n");
            advance();
        }
        AtomicFile.WriteAllText(Out("eval.csv"), sb.ToString());
        AtomicFile.WriteAllText(Out(GatePlacebo.File), placeboCsv.ToString());
    }

    public const int GatingResamples = 2000;

    /// <summary>
    /// Each test row's share of right verdicts over the evaluation seeds (the judged items run seed by seed over the
    /// rows in order): the per-row unit the paired bootstrap resamples, whose mean x 100 is the accuracy in eval.csv.
    /// </summary>
    private static double[] RowAccuracy(LabJudgement j, int rows)
    {
        var right = new double[rows];
        for (int i = 0; i < j.Judged.Count; i++) right[i % rows] += j.Judged[i].Outcome.Correct ? 1 : 0;
        int seeds = j.Judged.Count / rows;
        for (int i = 0; i < rows; i++) right[i] /= seeds;
        return right;
    }

    // ---- the claims ----

    private void CheckClaims(CompareReport compare, IReadOnlyDictionary<string, ProbeRun> scores, IReadOnlyList<CurvePoint> curve)
    {
        var atChance = scores.Where(s => !s.Value.Chance.DiffersFromChance).Select(s => s.Key).ToList();
        Checks.Add(WithinAboveCross(WithinFamilyCheck, compare, p => p.Pearson, name => compare.Pair(0, Index(name)).PearsonInterval, atChance));
        Checks.Add(WithinAboveCross(WithinFamilyLayerCentredCheck, compare, p => p.PearsonLayerCentred, name => LayerCentred[name], atChance));

        var lineage = ReportLines(Out("lineage.csv"));
        Checks.Add(new DemoCheck("lineage_finds_parents", DemoCheck.Of(lineage.All(l => l[^1] == "yes")),
            string.Join("; ", lineage.Select(l => $"{l[0]}: found {l[2]} (true {l[1]})"))));

        bool increasing = curve.Zip(curve.Skip(1)).All(p => p.Second.AttentionDrift > p.First.AttentionDrift);
        Checks.Add(new DemoCheck("drift_grows_with_fine_tuning", DemoCheck.Of(increasing),
            string.Join(", ", curve.Select(p => Invariant($"step {p.Step}: {p.AttentionDrift:0.0000}")))));

        // One check per model, so a model the gates hurt is a FAIL in the summary, not only in the gating section.
        var placebos = PlaceboLines();
        foreach (var pair in ReportLines(Out("eval.csv")).Chunk(2))
        {
            double vanilla = Number(pair[0][4]), gated = Number(pair[1][4]), p = Number(pair[1][10]);
            var placebo = placebos[pair[0][0]];
            double placeboAccuracy = Number(placebo[2]), pVsPlacebo = Number(placebo[8]);
            string intervals = Invariant($" (95% [{Number(pair[0][12]):0.00}, {Number(pair[0][13]):0.00}] vanilla, [{Number(pair[1][12]):0.00}, {Number(pair[1][13]):0.00}] gated; gated - vanilla [{Number(pair[1][14]):0.00}, {Number(pair[1][15]):0.00}]; paired bootstrap over rows)");
            var outcome = GatePlacebo.Outcome(vanilla, gated, p, placeboAccuracy, pVsPlacebo, GatingAlpha);
            Checks.Add(new DemoCheck(GatingCheckPrefix + pair[0][0], outcome,
                Invariant($"accuracy {vanilla:0.00} vanilla vs {gated:0.00} gated at lambda {pair[1][3]}, McNemar {PValueText.Format(p)}") + intervals +
                Invariant($"; placebo map (the base's shuffled within layers) {placeboAccuracy:0.00} at lambda {placebo[1]}, McNemar against vanilla {PValueText.Format(Number(placebo[7]))}, base gates against placebo {PValueText.Format(pVsPlacebo)}") +
                GatePlacebo.InconclusiveReason(outcome, p, GatingAlpha)));
        }
    }

    public const string WithinFamilyCheck = "within_family_above_cross_family", WithinFamilyLayerCentredCheck = "within_family_above_cross_family_layer_centred";

    /// <summary>
    /// The inheritance claim, with the uncertainty of the rows: PASS when every descendant's r with the base has its
    /// 95% row-bootstrap interval entirely above every unrelated model's r with the base (the null: how well maps of
    /// independent models agree by chance and shared structure); FAIL when some descendant's r itself is not above
    /// every unrelated r; INCONCLUSIVE in between (the order holds but an interval reaches into the null), and
    /// whenever a map is at chance level, since such correlations say nothing either way.
    /// </summary>
    private DemoCheck WithinAboveCross(string name, CompareReport compare, Func<PairStatistics, double> statistic, Func<string, Interval> interval, List<string> atChance)
    {
        var within = Descendants.Select(d => (d.Name, R: statistic(compare.Pair(0, Index(d.Name))), Ci: interval(d.Name))).ToList();
        var cross = Family.Unrelated.Select(u => (u.Name, R: statistic(compare.Pair(0, Index(u.Name))))).ToList();
        double nullMax = cross.Max(c => c.R);
        var outcome = InheritanceOutcome(within.Select(w => (w.R, w.Ci)).ToList(), cross.Select(c => c.R).ToList(), atChance.Count > 0);
        return new DemoCheck(name, outcome,
            "with the base, descendants: " + string.Join(", ", within.Select(w => Invariant($"{w.Name} {w.R:0.0000} [{w.Ci.Low:0.0000}, {w.Ci.High:0.0000}]"))) +
            "; unrelated: " + string.Join(", ", cross.Select(c => Invariant($"{c.Name} {c.R:0.0000}"))) +
            Invariant($"; rule: every descendant's 95% row-bootstrap lower bound above the largest unrelated r ({nullMax:0.0000})") +
            (atChance.Count > 0 ? $"; maps at chance level ({string.Join(", ", atChance)}): these correlations are not evidence of inheritance either way" : ""));
    }

    /// <summary>The rule of <see cref="WithinAboveCross"/> on its numbers: each descendant's r with its interval, each unrelated model's r.</summary>
    public static DemoCheck.Result InheritanceOutcome(IReadOnlyList<(double R, Interval Ci)> within, IReadOnlyList<double> cross, bool anyAtChance)
    {
        double nullMax = cross.Max();
        return anyAtChance ? DemoCheck.Result.Inconclusive
            : within.All(w => w.Ci.Low > nullMax) ? DemoCheck.Result.Pass
            : within.Any(w => !(w.R > nullMax)) ? DemoCheck.Result.Fail
            : DemoCheck.Result.Inconclusive;
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
            ["unrelated_seeds"] = new JsonArray(Family.Unrelated.Select(u => (JsonNode?)u.Seed).ToArray()),
            ["probe_seed"] = Probe.Seed,
            ["control_seed"] = Probe.ControlSeed,
            ["eval_seeds"] = new JsonArray(Plan.Seeds.Select(s => (JsonNode?)s).ToArray()),
            ["lambda_split_seed"] = SplitSeed,
            ["family_cache"] = Family.Dir,
            ["family_from_cache"] = Family.FromCache,
            ["plan"] = JsonSerializer.SerializeToNode(Plan),
            ["within_family_mean_pearson"] = JsonNumber(Descendants.Average(d => compare.Pair(0, Index(d.Name)).Pearson)),
            ["cross_family_max_pearson"] = JsonNumber(Family.Unrelated.Max(u => compare.Pair(0, Index(u.Name)).Pearson)),
            ["probing_rows"] = scores["base"].Set.Rows,
            ["heads_per_map"] = scores["base"].Set.HeadCount,
            ["max_wilson_half_width"] = JsonNumber(scores.Values.Max(MaxWilsonHalfWidth)),
            ["bootstrap_rows"] = Plan.BootstrapRows,
            ["pairs_with_base"] = new JsonObject(Family.Members.Skip(1).Select(m => KeyValuePair.Create(m.Name, (JsonNode?)PairJson(compare.Pair(0, Index(m.Name)), LayerCentred[m.Name])))),
            ["gating"] = GatingJson(),
            ["checks"] = new JsonArray(Checks.Select(c => (JsonNode?)new JsonObject { ["name"] = c.Name, ["outcome"] = c.Label, ["detail"] = c.Detail }).ToArray()),
            ["score_sha256"] = new JsonObject(scores.Keys.Select(n => KeyValuePair.Create(n, (JsonNode?)Hashing.Sha256File(Out("scores", n, "scores.npy"))))),
            // The family is grown here from the seeds (its lab.json files record their data hashes), so there are no input files.
            ["provenance"] = Provenance.Of(
                new (string, JsonNode)[] { ("family", Seed), ("probe", Probe.Seed), ("control", Probe.ControlSeed), ("lambda_split", SplitSeed),
                                           ("bootstrap", BootstrapSeed), ("gate_placebo", GatePlacebo.Seed) }
                    .Concat(Family.Unrelated.Select(u => (u.Name, (JsonNode)u.Seed)))
                    .Concat(Plan.Seeds.Select((s, i) => ($"eval_{i}", (JsonNode)s))), []),
        };
        AtomicFile.WriteAllText(Out("summary.json"), summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>A number for summary.json; null where it is undefined (NaN), which the report shows as n/a.</summary>
    private static JsonNode? JsonNumber(double x) => double.IsFinite(x) ? JsonValue.Create(x) : null;

    private static JsonObject PairJson(PairStatistics p, Interval layerCentred) => new()
    {
        ["pearson"] = JsonNumber(p.Pearson), ["pearson_low"] = JsonNumber(p.PearsonInterval.Low), ["pearson_high"] = JsonNumber(p.PearsonInterval.High),
        ["pearson_layer_centred"] = JsonNumber(p.PearsonLayerCentred), ["layer_centred_low"] = JsonNumber(layerCentred.Low), ["layer_centred_high"] = JsonNumber(layerCentred.High),
        ["p_layer_perm"] = JsonNumber(p.PLayerPermutation),
    };

    /// <summary>eval.csv's accuracies with their intervals, per model: vanilla, gated and their difference (x100).</summary>
    private JsonObject GatingJson()
    {
        var placebos = PlaceboLines();
        return new(ReportLines(Out("eval.csv")).Chunk(2).Select(pair => KeyValuePair.Create(pair[0][0], (JsonNode?)new JsonObject
        {
            ["lambda"] = JsonNumber(Number(pair[1][3])),
            ["vanilla_accuracy"] = JsonNumber(Number(pair[0][4])), ["vanilla_low"] = JsonNumber(Number(pair[0][12])), ["vanilla_high"] = JsonNumber(Number(pair[0][13])),
            ["gated_accuracy"] = JsonNumber(Number(pair[1][4])), ["gated_low"] = JsonNumber(Number(pair[1][12])), ["gated_high"] = JsonNumber(Number(pair[1][13])),
            ["difference_low"] = JsonNumber(Number(pair[1][14])), ["difference_high"] = JsonNumber(Number(pair[1][15])),
            ["vanilla_reading_accuracy"] = JsonNumber(Number(pair[0][8])), ["mcnemar_p"] = JsonNumber(Number(pair[1][10])),
            ["placebo"] = PlaceboJson(placebos[pair[0][0]]),
        })));
    }

    /// <summary>eval_placebo.csv's lines by model.</summary>
    private Dictionary<string, string[]> PlaceboLines() => ReportLines(Out(GatePlacebo.File)).ToDictionary(l => l[0]);

    /// <summary>The placebo arm of one model: its eval_placebo.csv line.</summary>
    private static JsonObject PlaceboJson(string[] l) => new()
    {
        ["lambda"] = JsonNumber(Number(l[1])), ["accuracy"] = JsonNumber(Number(l[2])), ["low"] = JsonNumber(Number(l[3])), ["high"] = JsonNumber(Number(l[4])),
        ["difference_low"] = JsonNumber(Number(l[5])), ["difference_high"] = JsonNumber(Number(l[6])),
        ["mcnemar_p"] = JsonNumber(Number(l[7])), ["mcnemar_p_vs_base_gates"] = JsonNumber(Number(l[8])),
    };

    /// <summary>The short text summary the demo prints.</summary>
    public string TextSummary()
    {
        var sb = new StringBuilder();
        foreach (var line in ReportLines(Out("controls.csv")))
            sb.AppendLine($"  {line[0],-15} mean Truth Score {Fixed(line[1])}  max {Fixed(line[2])}  control {Fixed(line[3])}  surface {Fixed(line[5])} (heads above it: {line[6]})  {(line[8] == "yes" ? "" : "AT CHANCE")}");
        var placebos = PlaceboLines();
        foreach (var line in ReportLines(Out("eval.csv")).Chunk(2))
            sb.AppendLine($"  {line[0][0],-15} accuracy vanilla {Fixed(line[0][4])} [{Fixed(line[0][12])}, {Fixed(line[0][13])}] -> gated {Fixed(line[1][4])} [{Fixed(line[1][12])}, {Fixed(line[1][13])}] " +
                          $"(lambda {line[1][3]}, McNemar {PValue(line[1][10])}; reading {Fixed(line[0][8])}; placebo {Fixed(placebos[line[0][0]][2])} at lambda {placebos[line[0][0]][1]})");
        foreach (var c in Checks) sb.AppendLine($"{c.Label} {c.Name}: {c.Detail}");
        return sb.ToString();
    }

    private static string PValue(string v) => PValueText.Format(Number(v));

    private static string Fixed(string v) => double.IsNaN(Number(v)) ? v : Number(v).ToString("0.000", CultureInfo.InvariantCulture);

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

}
