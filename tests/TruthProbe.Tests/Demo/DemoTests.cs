using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using TruthProbe.Demo;
using TruthProbe.Lab;
using TruthProbe.Numerics;
using TruthProbe.Probing;
using TruthProbe.Statistics;
using TruthProbe.Tests.Common;
using TruthProbe.Tests.Reports;

namespace TruthProbe.Tests.Demo;

/// <summary>
/// The demo on a family small enough for a test (a few training steps: its maps are at chance level, so
/// the within- vs cross-family claim is checked by the demo itself at its real size, not here). Built
/// once for all tests of the class.
/// </summary>
public sealed class TinyDemo : IDisposable
{
    public static readonly DemoPlan Plan = new(Size: "tiny", PretrainSteps: 6, ChatSteps: 2, DomainSteps: 2, LoraRank: 2, CurveSteps: [0, 2, 4],
        ProbeFolds: 3, EvalSeeds: [1], LambdaCandidates: [2], UnrelatedModels: 2, ProbingEpisodes: 80, EvalItems: 40, EvalFacts: 6, BootstrapRows: 4,
        Vlm: DemoVlmPlan.Tiny, PretrainDecaySteps: 2, PretrainCurriculumSteps: 0);
    public const int Seed = 5;
    /// <summary>The report's figures: 6 heat maps, the matrix, the per-layer drift, 5 per-model drift plots, the curve's r and drift;
    /// the vlm section's base and descendant heat maps, its matrix and its drift plot, and the base and context-row heat maps.</summary>
    public const int Images = 21;

    private readonly TempDir _tmp = new();
    public string Cache => Path.Combine(_tmp.Path, "cache");
    public string Out => Path.Combine(_tmp.Path, "out");
    public DemoFamily Family { get; }
    public DemoRun Run { get; }
    public string Printed { get; }

    public TinyDemo()
    {
        Family = DemoFamily.Build(Cache, Plan, Seed, TextWriter.Null);
        Run = DemoRun.Execute(Family, Plan, Seed, Out);
        Printed = Run.TextSummary();
    }

    public string TempPath(string name) => Path.Combine(_tmp.Path, name);

    public void Dispose() => _tmp.Dispose();
}

public partial class DemoTests(TinyDemo demo) : IClassFixture<TinyDemo>
{
    [Fact]
    public void Report_IsSelfContained_HasEverySection_AndEveryNumberIsItsFilesNumber()
    {
        string html = File.ReadAllText(Path.Combine(demo.Out, "report.html"));
        ReportChecks.AssertSelfContained(html);
        Assert.Equal(DemoReport.SectionIds, ReportChecks.SectionIds(html));
        Assert.Equal(TinyDemo.Images, ReportChecks.AssertImagesMatchFiles(html, demo.Out));
        int numbers = ReportChecks.AssertNumbersMatchFiles(html, demo.Out);
        Assert.True(numbers > 150, $"only {numbers} cited numbers");
        foreach (string table in (string[])["family.csv", "controls.csv", "compare/pairs.csv", "drift_layers.csv", "lineage.csv", "curve/curve.csv", "eval.csv", GatePlacebo.File])
            Assert.Contains($"<table data-file=\"{table}\">", html);
    }

    [SkippableFact]
    public void Report_InABrowserAt1400px_CutsNothingOff_AndLoadsEveryImage()
    {
        string browser = Browser.Require();
        string screenshot = demo.TempPath("report-1400.png");
        var layout = Browser.Measure(browser, Path.Combine(demo.Out, "report.html"), 1400, screenshot);
        Assert.Equal(1400, layout.Window);
        Assert.True(layout.ScrollWidth <= layout.Viewport, $"the page is {layout.ScrollWidth} px wide in a {layout.Viewport} px window");
        Assert.True(layout.CutOff.Length == 0, "reaches past the window: " + string.Join("; ", layout.CutOff));
        Assert.Equal(TinyDemo.Images, layout.Images.Length);
        foreach (var image in layout.Images)
            Assert.True(image.NaturalWidth > 0 && image.ShownWidth > 0, $"{image.File} did not load or is not shown ({image.NaturalWidth} px, shown {image.ShownWidth} px)");
        var png = File.ReadAllBytes(screenshot);
        Assert.Equal(1400, (png[16] << 24) | (png[17] << 16) | (png[18] << 8) | png[19]); // IHDR width
    }

    [Fact]
    public void Lineage_PlacesEachDescendantInTheFamily_AndFindsNoParentForTheUnrelatedModel()
    {
        var (header, rows) = ReportChecks.ReadCsv(Path.Combine(demo.Out, "lineage.csv"));
        var found = rows.ToDictionary(r => r[0], r => r[header.IndexOf("found_parent")]);
        // The true lineage, as the family was built: three descendants of base, one model from another seed.
        // After 2-4 fine-tuning steps two siblings have moved the same way from the base, so one sibling can
        // sit closer to another than the base does; naming the base itself is checked by the demo at full
        // size (its lineage_finds_parents check), here only membership of the family.
        string[] family = ["base", "chat", "counterfactual", "domain-lora"];
        foreach (var child in (string[])["chat", "counterfactual", "domain-lora"])
            Assert.Contains(found[child], family.Where(f => f != child));
        var unrelated = demo.Family.Unrelated.Select(u => u.Name).ToList();
        Assert.Equal(["unrelated-1", "unrelated-2"], unrelated);
        foreach (var u in unrelated) Assert.Equal("none", found[u]);
        bool allBase = found.Where(f => !unrelated.Contains(f.Key)).All(f => f.Value == "base");
        Assert.Contains(allBase ? "PASS lineage_finds_parents" : "FAIL lineage_finds_parents", demo.Printed);
    }

    [Fact]
    public void Drift_GrowsWithFineTuningSteps_FromZeroAtTheBase()
    {
        var (header, rows) = ReportChecks.ReadCsv(Path.Combine(demo.Out, "curve", "curve.csv"));
        int step = header.IndexOf("step"), drift = header.IndexOf("attention_drift"), r = header.IndexOf("pearson_with_base");
        Assert.Equal(["0", "2", "4"], rows.Select(x => x[step]));
        double[] d = rows.Select(x => double.Parse(x[drift], CultureInfo.InvariantCulture)).ToArray();
        // Step 0 is the base itself: no drift, and its map is the base's map (r = 1 exactly).
        Assert.Equal(0.0, d[0]);
        Assert.Equal(1.0, double.Parse(rows[0][r], CultureInfo.InvariantCulture));
        Assert.True(d[0] < d[1] && d[1] < d[2], $"drift {string.Join(", ", d)}");
        Assert.Contains("PASS drift_grows_with_fine_tuning", demo.Printed);
        // Across descendants too: counterfactual, fine-tuned twice as long as chat, is further from the base.
        var (lh, lineage) = ReportChecks.ReadCsv(Path.Combine(demo.Out, "lineage.csv"));
        double Drift(string model) => double.Parse(lineage.First(x => x[0] == model)[lh.IndexOf("found_drift")], CultureInfo.InvariantCulture);
        Assert.True(Drift("counterfactual") > Drift("chat"), $"counterfactual {Drift("counterfactual")} vs chat {Drift("chat")}");
    }

    [Fact]
    public void ChanceLevelMaps_AreNotPresentedAsEvidence()
    {
        // Six training steps teach the base nothing: its map is at chance, and the demo must say so
        // wherever the map appears, and call the within- vs cross-family comparison inconclusive.
        var (header, rows) = ReportChecks.ReadCsv(Path.Combine(demo.Out, "controls.csv"));
        var atChance = rows.ToDictionary(r => r[0], r => r[header.IndexOf("differs_from_chance")] == "no");
        Assert.True(atChance["base"]);
        Assert.Contains("INCONCLUSIVE within_family_above_cross_family", demo.Printed);
        Assert.Matches(@"McNemar (p < 1e-4|p = \d)", demo.Printed); // never "McNemar p 0.000"
        string html = File.ReadAllText(Path.Combine(demo.Out, "report.html"));
        Assert.Contains("<b>INCONCLUSIVE</b> within_family_above_cross_family", html);
        Assert.Contains("not evidence of inheritance", html);
        foreach (var (model, chance) in atChance)
            Assert.Equal(chance, html.Contains($"<figcaption>{model}: mean Truth Score <span class=\"n\" data-file=\"controls.csv\" data-key=\"{model}/mean_truth_score\">") &&
                                 Regex.IsMatch(html, $"<figcaption>{model}: mean Truth Score <span[^>]*>[^<]*</span> \\(AT CHANCE LEVEL"));
    }

    [Fact]
    public void Vlm_PopePlaceboArm_IsScoredFromItsOwnReplies_OnTheGatedArmsQuestions()
    {
        // Labels from the scenes' POPE files (ids: setting index * 1,000,000 + question_id, as the demo numbers them).
        var labels = new Dictionary<long, string>();
        foreach (var (setting, i) in SceneDatasets.PopeSettings.Select((s, i) => (s, i)))
            foreach (var line in File.ReadLines(Path.Combine(DemoVlm.ScenesDir(demo.Family), $"pope_{setting}.jsonl")))
            {
                var q = JsonNode.Parse(line)!;
                labels[i * 1_000_000L + q["question_id"]!.GetValue<long>()] = q["label"]!.GetValue<string>();
            }
        var replies = File.ReadLines(Path.Combine(demo.Out, "vlm", "pope_replies.jsonl")).Skip(1).Select(l => JsonNode.Parse(l)!)
            .GroupBy(r => r["arm"]!.GetValue<string>()).ToDictionary(g => g.Key, g => g.ToDictionary(r => r["id"]!.GetValue<long>(), r => r["reply"]!.GetValue<string>()));
        Assert.Equal(replies["gated"].Keys.Order(), replies["placebo"].Keys.Order());
        // Strict parse: the reply, lower-cased and trimmed, starts with the word yes or no.
        double Accuracy(string arm) => 100.0 * replies[arm].Count(r => Regex.Match(r.Value.Trim().ToLowerInvariant(), @"^(yes|no)\b") is { Success: true } m && m.Value == labels[r.Key]) / replies[arm].Count;
        var (ph, placebo) = ReportChecks.ReadCsv(Path.Combine(demo.Out, "vlm", DemoVlm.PopePlaceboFile));
        var (h, pope) = ReportChecks.ReadCsv(Path.Combine(demo.Out, "vlm", "pope.csv"));
        Assert.Equal(Accuracy("placebo"), double.Parse(placebo.Single(r => r[0] == "all")[ph.IndexOf("accuracy")], CultureInfo.InvariantCulture), 9);
        Assert.Equal(Accuracy("gated"), double.Parse(pope.Single(r => r[0] == "all" && r[1] == "gated")[h.IndexOf("accuracy")], CultureInfo.InvariantCulture), 9);
        Assert.Equal(["random", "popular", "adversarial", "all"], placebo.Select(r => r[0]));
    }

    [Fact]
    public void Vlm_SeesCheckIsWilsonAboveChance_AndABlindDescendantLeavesInheritanceAndGatingInconclusive()
    {
        var (header, rows) = ReportChecks.ReadCsv(Path.Combine(demo.Out, "vlm", "pope.csv"));
        string[] pooled = rows.Single(r => r[0] == "all" && r[1] == "vanilla");
        double At(string col) => double.Parse(pooled[header.IndexOf(col)], CultureInfo.InvariantCulture);
        // Wilson's score interval in closed form (Newcombe 1998), from the pooled accuracy and question count.
        double n = At("questions"), p = At("accuracy") / 100, z = 1.959963984540054;
        double centre = (p + z * z / (2 * n)) / (1 + z * z / n), half = z * Math.Sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n);
        Assert.Equal(100 * (centre - half), At("accuracy_low"), 6);
        Assert.Equal(100 * (centre + half), At("accuracy_high"), 6);
        // The POPE test questions: the three files' questions on the scenes outside the seeded 20% tuning share.
        Assert.Equal(rows.Where(r => r[0] != "all" && r[1] == "vanilla").Sum(r => int.Parse(r[header.IndexOf("questions")], CultureInfo.InvariantCulture)), (int)n);

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(demo.Out, "summary.json")));
        var checks = summary.RootElement.GetProperty("checks").EnumerateArray()
            .ToDictionary(c => c.GetProperty("name").GetString()!, c => c.GetProperty("outcome").GetString()!);
        bool sees = At("accuracy_low") > 50;
        Assert.Equal(sees ? "PASS" : "FAIL", checks["vlm_descendant_sees"]);
        // The tiny descendant (one step per stage) cannot see; then nothing it does counts for or against the claims.
        Assert.False(sees);
        foreach (string name in (string[])["vlm_map_inherited_across_modality", "vlm_map_inherited_same_skill", "vlm_base_gates_help_pope", "vlm_base_gates_reduce_chair"])
            Assert.Equal("INCONCLUSIVE", checks[name]);
        // Weights alone: its language model is a few steps from the base's, far from the unrelated model's.
        Assert.Equal("PASS", checks["vlm_lineage_finds_base"]);
        Assert.True(Directory.Exists(Path.Combine(demo.Family.Dir, DemoVlm.Name)), "the descendant is grown into the family's cache folder");
        // The like-for-like rows: the base's rows verbatim in order, each with a held-out scene, the scenes taken in turn.
        var textRows = File.ReadAllLines(demo.Run.ProbingPath).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        var contextRows = File.ReadAllLines(Path.Combine(demo.Out, "vlm", DemoVlm.ContextRowsFile)).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(textRows.Count, contextRows.Count);
        int scenes = TinyDemo.Plan.VlmPlan.HeldOutScenes;
        for (int i = 0; i < textRows.Count; i++)
        {
            foreach (string field in (string[])["context", "question", "answer", "label"]) Assert.Equal(textRows[i][field]!.GetValue<string>(), contextRows[i][field]!.GetValue<string>());
            string image = contextRows[i]["image"]!.GetValue<string>();
            Assert.True(File.Exists(Path.Combine(DemoVlm.ScenesDir(demo.Family), "images", image)), image);
            Assert.Equal(contextRows[i % scenes]["image"]!.GetValue<string>(), image);
        }
        Assert.Equal(scenes, contextRows.Take(scenes).Select(r => r["image"]!.GetValue<string>()).Distinct().Count());
    }

    [Fact]
    public void Summary_ListsEveryCheck_GatingOnEachModelToo_WithItsOutcomeAndNumbers()
    {
        // The outcome of gating each model, recomputed here from eval.csv (rows: vanilla then gated per model) and the
        // placebo arm's eval_placebo.csv: a gain counts only when it also beats the placebo.
        var (header, rows) = ReportChecks.ReadCsv(Path.Combine(demo.Out, "eval.csv"));
        double At(string[] row, string col) => double.Parse(row[header.IndexOf(col)], CultureInfo.InvariantCulture);
        var (ph, placeboRows) = ReportChecks.ReadCsv(Path.Combine(demo.Out, GatePlacebo.File));
        var placebo = placeboRows.ToDictionary(r => r[0], r => (Accuracy: double.Parse(r[ph.IndexOf("accuracy")], CultureInfo.InvariantCulture),
            P: double.Parse(r[ph.IndexOf("mcnemar_p_vs_base_gates")], CultureInfo.InvariantCulture)));
        var gating = rows.Chunk(2).ToDictionary(r => r[0][0], r =>
            At(r[1], "mcnemar_p") >= 0.05 ? "INCONCLUSIVE" : At(r[1], "accuracy") <= At(r[0], "accuracy") ? "FAIL"
            : placebo[r[0][0]].P < 0.05 && At(r[1], "accuracy") > placebo[r[0][0]].Accuracy ? "PASS" : "INCONCLUSIVE");
        Assert.Equal(gating.Keys, placebo.Keys);
        Assert.Equal(demo.Family.Members.Select(m => m.Name), gating.Keys);

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(demo.Out, "summary.json")));
        var checks = summary.RootElement.GetProperty("checks").EnumerateArray()
            .ToDictionary(c => c.GetProperty("name").GetString()!, c => c.GetProperty("outcome").GetString()!);
        foreach (var (model, outcome) in gating) Assert.Equal(outcome, checks[$"base_gates_help_{model}"]);
        Assert.Equal(4 + gating.Count + 6, checks.Count);   // 6: the vlm's (see Vlm_*)

        string html = File.ReadAllText(Path.Combine(demo.Out, "report.html"));
        string summarySection = Regex.Match(html, "<section id=\"summary\">(.*?)</section>", RegexOptions.Singleline).Groups[1].Value;
        foreach (var (name, outcome) in checks)
        {
            // Each check in the summary, with its outcome, and a number cited from a file in the same paragraph.
            Assert.Matches($"<p class=\"verdict [a-z]+\"><b>{outcome}</b> {name}: [^\n]*<span class=\"n\" data-file=", summarySection);
            Assert.Contains($"{outcome} {name}: ", demo.Printed);
        }
    }

    [Fact]
    public void InheritanceRule_PassesOnlyWhenEveryIntervalClearsEveryUnrelatedR()
    {
        var unrelated = new[] { 0.2, 0.45 };
        (double, Interval) W(double r, double low) => (r, new Interval(low, Math.Min(1, r + 0.1)));
        Assert.Equal(DemoCheck.Result.Pass, DemoRun.InheritanceOutcome([W(0.9, 0.8), W(0.7, 0.46)], unrelated, anyAtChance: false));
        // The order holds but one interval reaches below the largest unrelated r.
        Assert.Equal(DemoCheck.Result.Inconclusive, DemoRun.InheritanceOutcome([W(0.9, 0.8), W(0.7, 0.44)], unrelated, anyAtChance: false));
        Assert.Equal(DemoCheck.Result.Fail, DemoRun.InheritanceOutcome([W(0.9, 0.8), W(0.45, 0.3)], unrelated, anyAtChance: false));
        Assert.Equal(DemoCheck.Result.Inconclusive, DemoRun.InheritanceOutcome([W(0.9, 0.8), W(0.7, 0.6)], unrelated, anyAtChance: true));
    }

    [Fact]
    public void Summary_HasRowBootstrapIntervals_WilsonHalfWidth_AndGatingIntervals()
    {
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(demo.Out, "summary.json")));
        var root = summary.RootElement;
        double Num(JsonElement e) => e.ValueKind == JsonValueKind.Null ? double.NaN : e.GetDouble(); // null: undefined

        // The pairs with the base carry pairs.csv's row-bootstrap intervals, and a layer-centred interval of their own.
        var (ph, pairs) = ReportChecks.ReadCsv(Path.Combine(demo.Out, "compare", "pairs.csv"));
        var withBase = root.GetProperty("pairs_with_base");
        Assert.Equal(demo.Family.Members.Skip(1).Select(m => m.Name), withBase.EnumerateObject().Select(p => p.Name));
        foreach (var row in pairs.Where(r => r[ph.IndexOf("a")] == "base"))
        {
            var p = withBase.GetProperty(row[ph.IndexOf("b")]);
            foreach (string key in (string[])["pearson", "pearson_low", "pearson_high", "pearson_layer_centred"])
            {
                string csv = row[ph.IndexOf(key)];
                if (csv == "nan") Assert.True(double.IsNaN(Num(p.GetProperty(key))), key);
                else Assert.Equal(double.Parse(csv, CultureInfo.InvariantCulture), Num(p.GetProperty(key)), 9);
            }
            Assert.True(p.TryGetProperty("layer_centred_low", out _) && p.TryGetProperty("layer_centred_high", out _));
        }
        Assert.Contains("bootstrap over probing rows", File.ReadAllText(Path.Combine(demo.Out, "compare", "manifest.json")));

        // Wilson's 95% half-width, from its closed form, at the worst head of any map.
        int n = root.GetProperty("probing_rows").GetInt32();
        Assert.Equal(TinyDemo.Plan.ProbingEpisodes, n);
        double worst = 0;
        foreach (var m in demo.Family.Members)
        {
            var (sh, scores) = ReportChecks.ReadCsv(Path.Combine(demo.Out, "scores", m.Name, "scores.csv"));
            foreach (var r in scores)
            {
                double p = Math.Round(double.Parse(r[sh.IndexOf("accuracy")], CultureInfo.InvariantCulture) * n) / n, z = 1.959963984540054;
                double half = z / (2 * (n + z * z)) * Math.Sqrt(4 * n * p * (1 - p) + z * z);
                worst = Math.Max(worst, half);
            }
        }
        Assert.Equal(worst, root.GetProperty("max_wilson_half_width").GetDouble(), 6);

        // Gating: every accuracy inside its interval, the difference's interval around gated - vanilla, as in eval.csv.
        var (eh, eval) = ReportChecks.ReadCsv(Path.Combine(demo.Out, "eval.csv"));
        double At(string[] row, string col) => double.Parse(row[eh.IndexOf(col)], CultureInfo.InvariantCulture);
        foreach (var pair in eval.Chunk(2))
        {
            foreach (var row in pair)
                Assert.InRange(At(row, "accuracy"), At(row, "accuracy_low") - 1e-9, At(row, "accuracy_high") + 1e-9);
            Assert.InRange(At(pair[1], "accuracy") - At(pair[0], "accuracy"), At(pair[1], "difference_low") - 1e-9, At(pair[1], "difference_high") + 1e-9);
            var g = root.GetProperty("gating").GetProperty(pair[0][0]);
            Assert.Equal(At(pair[1], "accuracy_low"), g.GetProperty("gated_low").GetDouble(), 9);
            Assert.Equal(At(pair[0], "accuracy_high"), g.GetProperty("vanilla_high").GetDouble(), 9);
        }
        // The placebo arm: its accuracy inside its interval, the difference's interval around placebo - vanilla, as in summary.json.
        var (plh, placebo) = ReportChecks.ReadCsv(Path.Combine(demo.Out, GatePlacebo.File));
        double Pl(string[] row, string col) => double.Parse(row[plh.IndexOf(col)], CultureInfo.InvariantCulture);
        foreach (var (row, vanilla) in placebo.Zip(eval.Chunk(2).Select(p => p[0])))
        {
            Assert.Equal(vanilla[0], row[0]);
            Assert.InRange(Pl(row, "accuracy"), Pl(row, "accuracy_low") - 1e-9, Pl(row, "accuracy_high") + 1e-9);
            Assert.InRange(Pl(row, "accuracy") - At(vanilla, "accuracy"), Pl(row, "difference_low") - 1e-9, Pl(row, "difference_high") + 1e-9);
            Assert.Equal(Pl(row, "accuracy"), root.GetProperty("gating").GetProperty(row[0]).GetProperty("placebo").GetProperty("accuracy").GetDouble(), 9);
        }
    }

    [Fact]
    public void EvaluationItems_HaveThePlansLargerContexts()
    {
        var lines = File.ReadAllLines(Path.Combine(demo.Out, DemoRun.EvalFile));
        Assert.Equal(TinyDemo.Plan.EvalItems, lines.Length);
        foreach (var line in lines)
        {
            using var doc = JsonDocument.Parse(line);
            Assert.Equal(TinyDemo.Plan.EvalFacts, doc.RootElement.GetProperty("knowledge").GetString()!.Count(c => c == '.'));
        }
    }

    [Fact]
    public void SameSeed_ScoreFilesAreByteIdentical_WhenTheFamilyIsGrownAgain()
    {
        var again = DemoFamily.Build(demo.TempPath("cache-again"), TinyDemo.Plan, TinyDemo.Seed, TextWriter.Null);
        Assert.False(again.FromCache);
        var probe = new ProbeOptions(Folds: TinyDemo.Plan.ProbeFolds, Seed: 42);
        string probing = demo.TempPath("probing-again.jsonl");
        LabScoring.OneRowPerEpisode(Path.Combine(demo.Out, DemoRun.ProbingPairsFile), probing);
        foreach (var m in again.Members)
        {
            string dir = demo.TempPath(Path.Combine("scores-again", m.Name));
            LabScoring.Score(m.Dir, probing, dir, probe);
            foreach (string file in (string[])["scores.npy", "scores.csv"])
                Assert.Equal(File.ReadAllBytes(Path.Combine(demo.Out, "scores", m.Name, file)), File.ReadAllBytes(Path.Combine(dir, file)));
        }
        // The vlm trains beside another lane's job (or alone), whichever the timing gives: its bytes may not depend on that.
        Assert.Equal(File.ReadAllBytes(Path.Combine(DemoVlm.Dir(demo.Family), "model.safetensors")), File.ReadAllBytes(Path.Combine(DemoVlm.Dir(again), "model.safetensors")));
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(demo.Out, "summary.json")));
        Assert.Equal(TinyDemo.Seed, summary.RootElement.GetProperty("seed").GetInt32());
        ProvenanceAssert.In(Path.Combine(demo.Out, "summary.json"),
            [("family", 5), ("probe", 42), ("control", 43), ("lambda_split", 42), ("bootstrap", 42), ("gate_placebo", (long)GatePlacebo.Seed), ("unrelated-1", 1005), ("unrelated-2", 2005), ("eval_0", 1)], []);
        ProvenanceAssert.In(Path.Combine(demo.Family.Dir, DemoFamily.ManifestFile), demo.Family.Members.Select(m => (m.Name, (long)m.Seed)),
            demo.Family.Members.Select(m => (m.Name, Path.Combine(m.Dir, "model.safetensors"))));
    }

    [Fact]
    public void Family_IsReadFromTheCache_WhenThePlanIsUnchanged_AndRebuiltWhenItChanges()
    {
        var cached = DemoFamily.Build(demo.Cache, TinyDemo.Plan, TinyDemo.Seed, TextWriter.Null);
        Assert.True(cached.FromCache);
        Assert.Equal(demo.Family.Dir, cached.Dir);
        string key = TinyDemo.Plan.CacheKey(TinyDemo.Seed, Provenance.VectorBits);
        Assert.Equal(Path.GetFileName(cached.Dir), key);
        Assert.NotEqual(key, (TinyDemo.Plan with { ChatSteps = 3 }).CacheKey(TinyDemo.Seed, Provenance.VectorBits));
        Assert.NotEqual(key, (TinyDemo.Plan with { PretrainHoldPeak = 0.5 }).CacheKey(TinyDemo.Seed, Provenance.VectorBits));
        Assert.NotEqual(key, (TinyDemo.Plan with { PretrainHoldUntilReading = 0.8 }).CacheKey(TinyDemo.Seed, Provenance.VectorBits));
        Assert.NotEqual(key, (TinyDemo.Plan with { PretrainDecaySteps = 3 }).CacheKey(TinyDemo.Seed, Provenance.VectorBits));
        Assert.NotEqual(key, (TinyDemo.Plan with { LoraLearningRate = 2e-3 }).CacheKey(TinyDemo.Seed, Provenance.VectorBits));
        Assert.NotEqual(key, (TinyDemo.Plan with { PretrainCurriculumSteps = 3 }).CacheKey(TinyDemo.Seed, Provenance.VectorBits));
        Assert.NotEqual(key, TinyDemo.Plan.CacheKey(TinyDemo.Seed + 1, Provenance.VectorBits));
        Assert.NotEqual(TinyDemo.Plan.CacheKey(TinyDemo.Seed, 256), TinyDemo.Plan.CacheKey(TinyDemo.Seed, 512));
    }

    [Fact]
    public void Cli_BadOptions_FailWithOneLine()
    {
        var r = CliRunner.Run("demo", "--curve-steps", "0", "--out", demo.TempPath("bad"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("curve steps need at least one step above 0, e.g. 0,50,100,200 (--curve-steps)", r.Stderr);
        r = CliRunner.Run("demo", "--finetune-steps", "0");
        Assert.Equal(2, r.ExitCode);
        r = CliRunner.Run("lab", "curve", demo.TempPath("nowhere"), "--recipe", "chat", "--steps", "0,2");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("probing.jsonl", r.Stderr);
        r = CliRunner.Run("lab", "curve", demo.Family.Base.Dir, "--recipe", "chat", "--steps", "-1,2");
        Assert.Equal(2, r.ExitCode);
    }

    [Fact]
    public void LabCurveVerb_WritesOnePointPerStep()
    {
        string outDir = demo.TempPath("curve-cli");
        var r = CliRunner.Run("lab", "curve", demo.Family.Base.Dir, "--recipe", "chat", "--steps", "2,0", "--folds", "3", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var (header, rows) = ReportChecks.ReadCsv(Path.Combine(outDir, "curve.csv"));
        Assert.Equal(["step", "pearson_with_base", "attention_drift", "mean_truth_score", "differs_from_chance"], header);
        Assert.Equal(["0", "2"], rows.Select(x => x[0]));
        Assert.True(File.Exists(Path.Combine(outDir, "curve.png")));
        Assert.True(File.Exists(Path.Combine(outDir, "curve_drift.png")));
        Assert.True(double.Parse(rows[1][2], CultureInfo.InvariantCulture) > 0);
        ProvenanceAssert.In(Path.Combine(outDir, LabCurve.ManifestFile), [("fine_tune", 1), ("probe", 42), ("control", 43)],
            [("probing_set", Path.Combine(outDir, DemoRun.ProbingFile))]);
    }
}

public class OneRowPerEpisodeTests
{
    [Fact]
    public void KeepsOneVerbatimRowPerEpisode_AlternatingLabels()
    {
        using var tmp = new TempDir();
        string source = tmp.File("probing.jsonl"), cut = tmp.File("cut.jsonl");
        string Row(string c, string a, string label) => JsonSerializer.Serialize(new { context = c, question = "Q?", answer = a, label });
        string[] lines =
        [
            Row("A lives in Paris.", "A lives in Paris", "gold"), Row("A lives in Paris.", "A lives in Rome", "hallucinated"),
            Row("B likes red.", "B likes red", "gold"), Row("B likes red.", "B likes blue", "hallucinated"),
            Row("C is 30.", "C is 31", "hallucinated"), Row("C is 30.", "C is 30", "gold"),
        ];
        File.WriteAllLines(source, lines);
        LabScoring.OneRowPerEpisode(source, cut);
        // Episode 0 keeps its gold row, episode 1 its hallucinated row, episode 2 its gold row, whatever the order in the file.
        Assert.Equal([lines[0], lines[3], lines[5]], File.ReadAllLines(cut));
    }

    [Fact]
    public void BadLabel_IsAUserErrorNamingTheLine()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.File("p.jsonl"), "{\"context\":\"x\",\"question\":\"q\",\"answer\":\"a\",\"label\":\"true\"}\n");
        var e = Assert.Throws<TruthProbe.Common.UserError>(() => LabScoring.OneRowPerEpisode(tmp.File("p.jsonl"), tmp.File("o.jsonl")));
        Assert.Contains("line 1", e.Message);
        Assert.False(File.Exists(tmp.File("o.jsonl")));
    }
}
