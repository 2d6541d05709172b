using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Gating;
using TruthProbe.Lab;
using TruthProbe.Lineage;
using TruthProbe.Model;
using TruthProbe.Numerics;
using TruthProbe.Probing;
using TruthProbe.Reports;
using TruthProbe.Statistics;
using TruthProbe.Vision;

namespace TruthProbe.Demo;

/// <summary>
/// What the demo grows for its multimodal descendant: the held-out scenes (<c>lab scenes</c>) and <c>lab vlm</c>'s
/// step counts (null: <see cref="LabVlm.Options"/>' own). Part of the family's cache key.
/// </summary>
public sealed record DemoVlmPlan(int HeldOutScenes = 200, int SceneSize = 64, int? TrainScenes = null, int? TowerSteps = null,
    int? Stage1Steps = null, int? Stage2Steps = null, int CaptionTokens = 32, int LoraRank = DemoVlmPlan.DefaultLoraRank,
    double LmLearningRate = DemoVlmPlan.DefaultLmLearningRate, int? Stage3Steps = DemoVlmPlan.DefaultStage3Steps)
{
    /// <summary>
    /// Stage 2 trains rank-8 adapters on the LM's q/k/v/o, not the whole LM: on the wide base the full fine-tune stayed
    /// blind (yes rate 100%) and moved the LM's attention 0.79 from the base, so far that lineage named no parent;
    /// LoRA 8 saw (held-out POPE 56.3 / 75.3 / 64.2%) with the LM kept near its base (docs/lab.md).
    /// </summary>
    public const int DefaultLoraRank = 8;

    /// <summary>
    /// Stage 2's peak rate for the adapters (the projector keeps 2e-3): at 2e-3 the merged adapters moved the LM's
    /// attention 0.51 from the base's, past lineage's 0.5; at 5e-4 it moved 0.25 but only began to use the image at the
    /// last step; at 1e-3 it sees and lineage names the base (docs/lab.md, "Keeping the descendant near its base").
    /// </summary>
    public const double DefaultLmLearningRate = 1e-3;

    /// <summary>
    /// No caption stage: <c>lab vlm</c>'s 600 caption steps (its default) teach the descendant to name objects but move
    /// the LM's attention 0.78 from the base's (0.45 without them), past lineage's 0.5, and cost ~45% more of the vlm's
    /// CPU (docs/lab.md, "Captions"), so the demo's CHAIR check has no objects to count (it says so).
    /// </summary>
    public const int DefaultStage3Steps = 0;

    /// <summary>Seconds, for the tests' tiny family: mechanics only, the descendant stays blind.</summary>
    public static DemoVlmPlan Tiny => new(HeldOutScenes: 10, TrainScenes: 16, TowerSteps: 1, Stage1Steps: 1, Stage2Steps: 1, CaptionTokens: 6, Stage3Steps: 1);

    public LabVlm.Options Options(string baseDir, string scenes, string outDir, int seed)
    {
        var o = new LabVlm.Options(baseDir, scenes, outDir, new VlmPromptFormat(LlavaPrompts.Pope, LlavaPrompts.Chair), Seed: seed);
        return o with
        {
            TrainScenes = TrainScenes ?? o.TrainScenes, TowerSteps = TowerSteps ?? o.TowerSteps,
            Stage1Steps = Stage1Steps ?? o.Stage1Steps, Stage2Steps = Stage2Steps ?? o.Stage2Steps, LoraRank = LoraRank, LmLearningRate = LmLearningRate,
            Stage3Steps = Stage3Steps ?? o.Stage3Steps,
        };
    }
}

/// <summary>
/// The family's vision-language member, grown from the base the LLaVA way (<see cref="LabVlm"/>), and what the demo
/// measures on it: its Truth-Score map from image probing rows (as <c>score --images</c>), r with the base's text map and
/// with the unrelated models', LM weight drift and lineage, and model-driven POPE and CHAIR, vanilla against gated with
/// the BASE's scores (as <c>eval pope</c> / <c>eval chair</c> with a model). Everything lands in OUT/vlm.
/// </summary>
public static class DemoVlm
{
    public const string Name = "vlm";
    public const string CheckPrefix = "vlm_";
    public const string Sees = "vlm_descendant_sees";
    public const string InheritedCheck = "vlm_map_inherited_across_modality", SameSkillCheck = "vlm_map_inherited_same_skill";
    /// <summary>
    /// The base's own probing rows (read a fact from a context) with a held-out scene shown first: the descendant's map on
    /// the skill the base's text map measures, where the scenes' presence rows ask one the base never had.
    /// </summary>
    public const string ContextRowsFile = "probing_context_image.jsonl", ContextScores = "scores_context", ContextCompare = "compare_context";
    /// <summary>The base's own text task (the reference's context prompt) with the row's scene shown before it.</summary>
    public const string ContextTemplate = "<image>\n" + PromptTemplate.Default;
    /// <summary>Progress stages: map, comparison with drift and lineage, POPE, CHAIR.</summary>
    public const int Stages = 4;
    public const int MaxPopeTokens = 3;
    /// <summary>The POPE placebo arm per setting and pooled (<see cref="GatePlacebo"/>), beside pope.csv.</summary>
    public const string PopePlaceboFile = "pope_placebo.csv";
    public const int BootstrapResamples = 1000;
    public const double TuningShare = 0.2;

    public static string Dir(DemoFamily family) => Path.Combine(family.Dir, Name);
    public static string ScenesDir(DemoFamily family) => Path.Combine(family.Dir, "scenes");

    /// <summary>Held-out scenes (their own seed stream: <c>lab vlm</c> draws its training scenes elsewhere), then the descendant.</summary>
    public static void Grow(DemoFamily family, DemoVlmPlan plan, int seed, TextWriter log, IProgress<int>? steps)
    {
        string scenes = ScenesDir(family);
        SceneDatasets.Sample(plan.HeldOutScenes, (ulong)seed).Write(scenes, plan.SceneSize, (ulong)seed);
        LabVlm.Train(plan.Options(family.Base.Dir, scenes, Dir(family), seed) with { StepProgress = steps }, log);
    }

    /// <summary>
    /// Measures the descendant into OUT/vlm, calling <paramref name="advance"/> after each of its <see cref="Stages"/>. Reads
    /// only the family and the text models' scores, so it may run beside the text analysis; returns what adds its checks,
    /// to be called once the text checks are in.
    /// </summary>
    public static Action Run(DemoRun run, ProbeRun baseScores, ProbeOptions probe, Action advance)
    {
        string outDir = Path.Combine(run.OutDir, Name), scenes = ScenesDir(run.Family), model = Dir(run.Family);
        Directory.CreateDirectory(outDir);
        var plan = run.Plan.VlmPlan;
        var heldOut = SceneDatasets.Sample(plan.HeldOutScenes, (ulong)run.Seed).Scenes;
        string objectRows = Path.Combine(outDir, DemoRun.ProbingFile), contextRows = Path.Combine(outDir, ContextRowsFile);
        LabScoring.OneRowPerEpisode(Path.Combine(scenes, "probing.jsonl"), objectRows);
        WriteContextRows(run.ProbingPath, heldOut, contextRows);
        using var llava = LlavaModel.Load(model);
        var map = Score(llava, scenes, objectRows, LlavaImagePrompts.ImageTemplate, Path.Combine(outDir, "scores"), probe);
        var contextMap = Score(llava, scenes, contextRows, ContextTemplate, Path.Combine(outDir, ContextScores), probe);
        advance();
        var (compare, names) = Compare(run, outDir, "scores", "compare");
        var (contextCompare, _) = Compare(run, outDir, ContextScores, ContextCompare);
        bool parentFound = DriftAndLineage(run, model, outDir);
        advance();
        var tuningImages = TuningImages(heldOut.Select(s => s.ImageName), DemoRun.SplitSeed);
        var gates = new BaseGates(llava, baseScores, Path.Combine(run.OutDir, "scores", "base", "scores.npy"));
        var pope = Pope(llava, gates, scenes, tuningImages, run.Plan.Lambdas, outDir);
        advance();
        var chair = Chair(llava, gates, scenes, heldOut.Where(s => !tuningImages.Contains(s.ImageName)).ToList(), pope.Lambda, plan.CaptionTokens, run.Seed, outDir);
        advance();
        return () => Check(run, (map, compare), (contextMap, contextCompare), names, parentFound, pope, chair);
    }

    // ---- the map ----

    /// <summary>The descendant's map from image rows (<paramref name="rows"/>, each naming a held-out scene) in <paramref name="template"/>.</summary>
    private static ProbeRun Score(LlavaModel llava, string scenes, string rows, string template, string scoresDir, ProbeOptions probe)
    {
        var data = ProbingData.Load(rows, samples: null, skipBad: false);
        var collection = ActivationCollector.Collect(LlavaImagePrompts.FromFolder(llava, new PromptTemplate(template), Path.Combine(scenes, "images")), data, null, false, scoresDir, TextWriter.Null);
        var run = ProbeRun.Execute(collection.Set, probe);
        run.Write(scoresDir, new ProbeInputs(collection.Path, null, "truthprobe demo (image rows)"), Plots.Writer);
        return run;
    }

    /// <summary>The base's probing rows (one per episode), episode i shown held-out scene i mod their count.</summary>
    private static void WriteContextRows(string baseRows, IReadOnlyList<Scene> scenes, string path)
    {
        var rows = ProbingData.Load(baseRows, samples: null, skipBad: false).Rows;
        var lines = rows.Select((r, i) => new JsonObject
        {
            ["context"] = r.Context, ["question"] = r.Question, ["answer"] = r.Answer, ["label"] = r.Label == 1 ? "gold" : "hallucinated",
            ["image"] = scenes[i % scenes.Count].ImageName,
        }.ToJsonString() + "\n");
        AtomicFile.WriteAllText(path, string.Concat(lines));
    }

    /// <summary>
    /// The base's text map, one of the descendant's image maps (OUT/vlm/<paramref name="scores"/>) and every unrelated
    /// model's text map, compared with the base as reference into OUT/vlm/<paramref name="folder"/>.
    /// </summary>
    private static (CompareReport Report, List<string> Names) Compare(DemoRun run, string outDir, string scores, string folder)
    {
        var unrelated = run.Family.Members.Skip(1).Where(m => m.Parent == null).Select(m => m.Name).ToList();
        var names = new List<string> { "base", Name }.Concat(unrelated).ToList();
        var paths = names.Select(n => n == Name ? Path.Combine(outDir, scores, "scores.npy") : Path.Combine(run.OutDir, "scores", n, "scores.npy")).ToList();
        var report = CompareReport.Run(names.Select((n, i) => ScoreMap.Load(paths[i], n)).ToList(), "base", topK: 4, sharedAcrossAll: false, DemoRun.Chance);
        report.Write(Path.Combine(outDir, folder), paths, Plots.Writer);
        return (report, names);
    }

    /// <summary>LM attention drift against the base, and lineage over every text model of the family; true when it names the base.</summary>
    private static bool DriftAndLineage(DemoRun run, string model, string outDir)
    {
        double driftFromBase;
        using (var parent = WeightDrift.LoadWeights(run.Family.Base.Dir))
        using (var child = WeightDrift.LoadWeights(model))
        {
            var drift = WeightDrift.Compute(parent, child);
            DriftReport.Write(drift, Path.Combine(outDir, "drift"), Plots.Writer);
            driftFromBase = Enumerable.Range(0, drift.Layers).Average(l => drift.LayerMean(l, WeightDrift.Attention));
        }
        var members = run.Family.Members;
        var maps = new[] { Path.Combine(outDir, "scores", "scores.npy") }.Concat(members.Select(m => Path.Combine(run.OutDir, "scores", m.Name, "scores.npy"))).ToList();
        var report = LineageReport.Run(model, members.Select(m => m.Dir).ToList(), maps, DemoRun.Chance);
        report.Write(Path.Combine(outDir, "lineage"));
        string found = report.Parent == null ? "none" : members.FirstOrDefault(m => Path.GetFullPath(m.Dir) == Path.GetFullPath(report.Parent.Path))?.Name ?? report.Parent.Name;
        AtomicFile.WriteAllText(Path.Combine(outDir, "lineage.csv"), "candidate,true_parent,found_parent,found_drift,attention_drift_from_base,correct\n" +
            $"{Name},base,{found},{CsvFormat.Number(report.Parent?.Drift ?? double.NaN)},{CsvFormat.Number(driftFromBase)},{(found == "base" ? "yes" : "no")}\n");
        return found == "base";
    }

    /// <summary>A seeded <see cref="TuningShare"/> of the held-out scenes: lambda is chosen on their questions, never scored on them.</summary>
    private static HashSet<string> TuningImages(IEnumerable<string> images, int seed)
    {
        var rng = new SeededRandom((ulong)seed);
        var shuffled = images.Order(StringComparer.Ordinal).Select(i => (i, rng.NextUInt64())).OrderBy(p => p.Item2).Select(p => p.i).ToList();
        return shuffled.Take((int)Math.Ceiling(TuningShare * shuffled.Count)).ToHashSet(StringComparer.Ordinal);
    }

    // ---- gates, POPE, CHAIR ----

    /// <summary>Gates from the base's map (contrast mode) on the descendant's language model, and from its <see cref="GatePlacebo"/> map.</summary>
    private sealed class BaseGates(LlavaModel llava, ProbeRun scores, string source)
    {
        private readonly double[] _placebo = GatePlacebo.Shuffled(scores.Scores.Accuracy, scores.Set.Layers, scores.Set.Heads, GatePlacebo.Seed);
        public Arm Arm(string name, double lambda) => Gated(name, scores.Scores.Accuracy, lambda);
        public Arm Placebo(string name, double lambda) => Gated(name, _placebo, lambda);
        private Arm Gated(string name, double[] map, double lambda) => new(name, new Interventions(llava.Language.Config).Gate(
            GateTable.FromScores(map, scores.Set.Layers, scores.Set.Heads, GateMode.Contrast, lambda, source: source).ToFloats(), GateSite.Head));
    }

    /// <summary>Pooled POPE: vanilla, the base's gates and the placebo arm (each lambda chosen on the tuning scenes), McNemar against vanilla and base against placebo.</summary>
    public sealed record PopeOutcome(double Lambda, PopeCounts Vanilla, PopeCounts Gated, double PValue, double PlaceboLambda, PopeCounts Placebo, double PlaceboVsGatedP);

    /// <summary>One reply per prompt and arm, through <see cref="ImagePromptRunner"/> as <c>eval pope</c> / <c>eval chair</c> run them.</summary>
    private static IReadOnlyDictionary<(string Arm, long Id), string> Answer(LlavaModel llava, IReadOnlyList<ImagePrompt> prompts, IReadOnlyList<Arm> arms, int maxNewTokens, string logPath)
    {
        if (File.Exists(logPath)) File.Delete(logPath);   // a rerun answers again: the model may have been regrown
        using var log = ReplyLog.Open(logPath, "truthprobe demo " + System.IO.Path.GetFileName(logPath));
        ImagePromptRunner.Run(llava, llava.ImagePreprocessor(llava.DefaultAspect), prompts, arms, new GenerationOptions { MaxNewTokens = maxNewTokens }, log);
        return log.Replies.ToDictionary(kv => kv.Key, kv => kv.Value);
    }

    /// <summary>
    /// POPE on the held-out scenes' three files: lambda chosen by pooled accuracy on the tuning scenes' questions, then
    /// vanilla and gated on the other scenes', per setting and pooled, exact McNemar over the same questions.
    /// </summary>
    private static PopeOutcome Pope(LlavaModel llava, BaseGates gates, string scenes, HashSet<string> tuningImages, double[] lambdas, string outDir)
    {
        // Ids unique across the three files: setting index * Stride + question_id.
        const long Stride = 1_000_000;
        var questions = SceneDatasets.PopeSettings.SelectMany((s, i) => PopeScorer.ReadQuestions(Path.Combine(scenes, $"pope_{s}.jsonl"))
            .Select(q => (Setting: s, Q: q with { Id = i * Stride + q.Id }))).ToList();
        ImagePrompt Prompt(PopeQuestion q) => new(q.Id, Path.Combine(scenes, "images", q.Image!), LlavaPrompts.Pope(q.Text));
        var tuning = questions.Where(x => tuningImages.Contains(x.Q.Image!)).Select(x => x.Q).ToList();
        var test = questions.Where(x => !tuningImages.Contains(x.Q.Image!)).ToList();

        var tuningArms = lambdas.Select(l => gates.Arm(Invariant($"lambda_{l}"), l)).ToList();
        var placeboTuningArms = lambdas.Select(l => gates.Placebo(Invariant($"placebo_lambda_{l}"), l)).ToList();
        var tuned = Answer(llava, tuning.Select(Prompt).ToList(), [.. tuningArms, .. placeboTuningArms], MaxPopeTokens, Path.Combine(outDir, "pope_tuning_replies.jsonl"));
        double Choose(List<Arm> candidates) => HaluEvalSweep.Choose(lambdas.Select((l, i) => (l, Counts(tuning, id => tuned[(candidates[i].Name, id)]).Metrics().Accuracy)).ToList());
        var (lambda, placeboLambda) = (Choose(tuningArms), Choose(placeboTuningArms));

        var arms = new List<Arm> { new("vanilla", null), gates.Arm("gated", lambda), gates.Placebo("placebo", placeboLambda) };
        var replies = Answer(llava, test.Select(x => Prompt(x.Q)).ToList(), arms, MaxPopeTokens, Path.Combine(outDir, "pope_replies.jsonl"));
        var sb = new StringBuilder("setting,condition,lambda,accuracy,accuracy_low,accuracy_high,f1,yes_ratio,unknown,questions,mcnemar_p\n");
        var placeboCsv = new StringBuilder("setting,lambda,accuracy,accuracy_low,accuracy_high,mcnemar_p,mcnemar_p_vs_base_gates\n");
        PopeOutcome? pooled = null;
        foreach (var (setting, qs) in SceneDatasets.PopeSettings.Select(s => (s, test.Where(x => x.Setting == s).Select(x => x.Q).ToList())).Append(("all", test.Select(x => x.Q).ToList())))
        {
            var vanilla = Counts(qs, id => replies[("vanilla", id)]);
            var gated = Counts(qs, id => replies[("gated", id)]);
            double p = (double)ImageEvalOutputs.McNemar(Correct(qs, id => replies[("vanilla", id)]), Correct(qs, id => replies[("gated", id)]))["p_value"]!;
            void Line(string condition, PopeCounts c, string lambdaText, string pText)
            {
                var m = c.Metrics();
                var ci = Proportion.Wilson(c.TruePositive + c.TrueNegative, c.Total);
                sb.Append(CultureInfo.InvariantCulture, $"{setting},{condition},{lambdaText},{CsvFormat.Number(m.Accuracy)},{CsvFormat.Number(100 * ci.Low)},{CsvFormat.Number(100 * ci.High)},{CsvFormat.Number(m.F1)},{CsvFormat.Number(m.YesRatio)},{m.Unknown},{m.Questions},{pText}\n");
            }
            Line("vanilla", vanilla, "nan", "nan");
            Line("gated", gated, CsvFormat.Number(lambda), CsvFormat.Number(p));
            var placebo = Counts(qs, id => replies[("placebo", id)]);
            double McNemar(string a, string b) => (double)ImageEvalOutputs.McNemar(Correct(qs, id => replies[(a, id)]), Correct(qs, id => replies[(b, id)]))["p_value"]!;
            var placeboCi = Proportion.Wilson(placebo.TruePositive + placebo.TrueNegative, placebo.Total);
            double pPlacebo = McNemar("placebo", "gated");
            placeboCsv.Append(CultureInfo.InvariantCulture, $"{setting},{CsvFormat.Number(placeboLambda)},{CsvFormat.Number(placebo.Metrics().Accuracy)},{CsvFormat.Number(100 * placeboCi.Low)},{CsvFormat.Number(100 * placeboCi.High)}," +
                $"{CsvFormat.Number(McNemar("vanilla", "placebo"))},{CsvFormat.Number(pPlacebo)}\n");
            if (setting == "all") pooled = new PopeOutcome(lambda, vanilla, gated, p, placeboLambda, placebo, pPlacebo);
        }
        AtomicFile.WriteAllText(Path.Combine(outDir, "pope.csv"), sb.ToString());
        AtomicFile.WriteAllText(Path.Combine(outDir, PopePlaceboFile), placeboCsv.ToString());
        return pooled!;
    }

    private static PopeCounts Counts(IReadOnlyList<PopeQuestion> qs, Func<long, string> reply) =>
        PopeScorer.Score(qs, qs.ToDictionary(q => q.Id, q => new PopeReply(reply(q.Id), "demo", null)), PopeParse.Strict, "demo", "demo");

    private static bool[] Correct(IReadOnlyList<PopeQuestion> qs, Func<long, string> reply) => ImageEvalOutputs.PopeCorrect(qs, reply, PopeParse.Strict);

    public sealed record ChairOutcome(ChairResult Vanilla, ChairResult Gated, double? InstanceLow, double? InstanceHigh);

    /// <summary>
    /// CHAIR on captions of the scoring scenes, vanilla and gated at POPE's lambda: the lab world's 16 class names are
    /// the object vocabulary (a class is its own synonym; plurals through CHAIR's lemmatiser), each scene's classes the
    /// ground truth. Paired bootstrap over images for gated minus vanilla.
    /// </summary>
    private static ChairOutcome Chair(LlavaModel llava, BaseGates gates, string scenes, IReadOnlyList<Scene> scoring, double lambda, int maxTokens, int seed, string outDir)
    {
        var scorer = new ChairScorer(SceneWorld.Classes.ToDictionary(c => c, c => c, StringComparer.Ordinal), new Dictionary<string, string>(),
            scoring.ToDictionary(s => (long)s.Id, s => s.Objects.Select(o => SceneWorld.Classes[o.Class]).Distinct().Order(StringComparer.Ordinal).ToArray()));
        var prompts = scoring.Select(s => new ImagePrompt(s.Id, Path.Combine(scenes, "images", s.ImageName), LlavaPrompts.Chair)).ToList();
        var arms = new List<Arm> { new("vanilla", null), gates.Arm("gated", lambda) };
        var replies = Answer(llava, prompts, arms, maxTokens, Path.Combine(outDir, "chair_replies.jsonl"));
        ChairResult Score(string arm) => scorer.Score(prompts.Select(p => new Caption(p.Id, replies[(arm, p.Id)])));
        var (vanilla, gated) = (Score("vanilla"), Score("gated"));
        var boot = ImageEvalOutputs.ChairBootstrap(vanilla, gated, BootstrapResamples, (ulong)seed);
        double? low = (double?)boot["chair_i_low"], high = (double?)boot["chair_i_high"];
        var sb = new StringBuilder("condition,lambda,chair_s,chair_i,recall,len,captions,mentions,chair_i_diff,chair_i_diff_low,chair_i_diff_high\n");
        string N(double? v) => CsvFormat.Number(v ?? double.NaN);
        sb.Append(CultureInfo.InvariantCulture, $"vanilla,nan,{N(vanilla.ChairS)},{N(vanilla.ChairI)},{N(vanilla.Recall)},{N(vanilla.Len)},{vanilla.Captions},{vanilla.Mentions},nan,nan,nan\n");
        sb.Append(CultureInfo.InvariantCulture, $"gated,{N(lambda)},{N(gated.ChairS)},{N(gated.ChairI)},{N(gated.Recall)},{N(gated.Len)},{gated.Captions},{gated.Mentions},{N(gated.ChairI - vanilla.ChairI)},{N(low)},{N(high)}\n");
        AtomicFile.WriteAllText(Path.Combine(outDir, "chair.csv"), sb.ToString());
        return new ChairOutcome(vanilla, gated, low, high);
    }

    // ---- the checks ----

    private static void Check(DemoRun run, (ProbeRun Map, CompareReport Compare) objects, (ProbeRun Map, CompareReport Compare) context, List<string> names,
        bool parentFound, PopeOutcome pope, ChairOutcome chair)
    {
        var v = pope.Vanilla;
        var ci = Proportion.Wilson(v.TruePositive + v.TrueNegative, v.Total);
        bool sees = ci.Low > DemoRun.Chance;
        run.Checks.Add(new DemoCheck(Sees, DemoCheck.Of(sees),
            Invariant($"held-out POPE accuracy (all settings, vanilla) {v.Metrics().Accuracy:0.0}% of {v.Total} questions, 95% Wilson [{100 * ci.Low:0.0}, {100 * ci.High:0.0}], yes rate {v.Metrics().YesRatio:0.0}%") +
            (sees ? "" : "; a descendant that cannot see gives no evidence about image hallucination either way")));
        string blind = Invariant($"inconclusive: the descendant does not see (held-out POPE {v.Metrics().Accuracy:0.0}%, interval reaches chance)");

        // Within-family r above every cross-family r, on the scenes' presence rows (a skill the base never had) and on the base's
        // own reading task with a scene shown first (the like-for-like comparison).
        foreach (var (check, (map, compare), rows) in new[] { (InheritedCheck, objects, "image map"), (SameSkillCheck, context, "map from its context rows with an image") })
        {
            var within = compare.Pair(0, 1);
            var cross = Enumerable.Range(2, names.Count - 2).SelectMany(u => new[] { (Pair: $"base-{names[u]}", R: compare.Pair(0, u).Pearson), (Pair: $"{Name}-{names[u]}", R: compare.Pair(1, u).Pearson) }).ToList();
            string numbers = Invariant($"r(base text map, {Name} {rows}) {within.Pearson:0.0000} [{within.PearsonInterval.Low:0.0000}, {within.PearsonInterval.High:0.0000}], layer-centred {within.PearsonLayerCentred:0.0000}; cross-family ") +
                string.Join(", ", cross.Select(c => Invariant($"{c.Pair} {c.R:0.0000}"))) +
                // A map its rows' answer words could give is not evidence of truthful heads (the first image rows' was).
                (map.Surface == null ? "" : Invariant($"; surface baseline of the {rows} {map.Surface.Accuracy[0]:0.000}, {map.HeadsAboveSurface()} of {map.Scores.Accuracy.Length} heads above it"));
            var inherited = !sees ? DemoCheck.Result.Inconclusive
                : !map.Chance.DiffersFromChance ? DemoCheck.Result.Inconclusive
                : DemoCheck.Of(cross.All(c => within.Pearson > c.R));
            run.Checks.Add(new DemoCheck(check, inherited, numbers +
                (!sees ? "; " + blind : !map.Chance.DiffersFromChance ? $"; the {rows} is at chance level, so its correlations are not evidence" : "")));
        }

        run.Checks.Add(new DemoCheck("vlm_lineage_finds_base", DemoCheck.Of(parentFound),
            $"lineage over the family's text models names {File.ReadAllLines(Path.Combine(run.OutDir, Name, "lineage.csv"))[1].Split(',')[2]} as the descendant's parent (true: base); weights only, so this holds whether or not it sees"));

        double va = pope.Vanilla.Metrics().Accuracy, ga = pope.Gated.Metrics().Accuracy, pa = pope.Placebo.Metrics().Accuracy;
        var popeOutcome = !sees ? DemoCheck.Result.Inconclusive : GatePlacebo.Outcome(va, ga, pope.PValue, pa, pope.PlaceboVsGatedP, DemoRun.GatingAlpha);
        run.Checks.Add(new DemoCheck("vlm_base_gates_help_pope", popeOutcome,
            Invariant($"held-out POPE accuracy {va:0.0}% vanilla vs {ga:0.0}% gated with the base's scores at lambda {pope.Lambda}, McNemar {PValueText.Format(pope.PValue)}") +
            Invariant($"; placebo map (the base's shuffled within layers) {pa:0.0}% at lambda {pope.PlaceboLambda}, base gates against placebo McNemar {PValueText.Format(pope.PlaceboVsGatedP)}") +
            (!sees ? "; " + blind : GatePlacebo.InconclusiveReason(popeOutcome, pope.PValue, DemoRun.GatingAlpha))));

        var chairOutcome = !sees || chair.InstanceLow == null || chair.InstanceHigh == null ? DemoCheck.Result.Inconclusive
            : chair.InstanceHigh < 0 ? DemoCheck.Result.Pass : chair.InstanceLow > 0 ? DemoCheck.Result.Fail : DemoCheck.Result.Inconclusive;
        run.Checks.Add(new DemoCheck("vlm_base_gates_reduce_chair", chairOutcome,
            Invariant($"CHAIR_i {Fmt(chair.Vanilla.ChairI)} vanilla vs {Fmt(chair.Gated.ChairI)} gated, difference 95% paired bootstrap [{Fmt(chair.InstanceLow)}, {Fmt(chair.InstanceHigh)}] points; CHAIR_s {chair.Vanilla.ChairS:0.0} vs {chair.Gated.ChairS:0.0}; ") +
            Invariant($"objects named per caption {Named(chair.Vanilla)} vs {Named(chair.Gated)}, recall {Fmt(chair.Vanilla.Recall)} vs {Fmt(chair.Gated.Recall)}%") +
            (!sees ? "; " + blind
                : chair.Vanilla.Mentions == 0 || chair.Gated.Mentions == 0 ? "; inconclusive: a caption set names no object, so there is no hallucinated share to compare"
                : chairOutcome == DemoCheck.Result.Inconclusive ? "; the interval includes 0" : "")));
    }

    private static string Named(ChairResult r) => (r.Mentions / (double)Math.Max(1, r.Captions)).ToString("0.00", CultureInfo.InvariantCulture);

    private static string Fmt(double? v) => v is double d && !double.IsNaN(d) ? d.ToString("0.00", CultureInfo.InvariantCulture) : "n/a";

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
