using System.Globalization;
using TruthProbe.Reports;
using static TruthProbe.Reports.HtmlReport;

using TruthProbe.Lab;

namespace TruthProbe.Demo;

/// <summary>
/// report.html of the demo: every section reads its numbers from the run's output files (see
/// <see cref="HtmlReport"/>), and each says in one sentence what its numbers mean. Findings are stated as
/// they came out: a check that failed is shown as failed, gating that did not help is said not to help,
/// and chance-level maps are flagged as such.
/// </summary>
public static class DemoReport
{
    public static readonly string[] SectionIds = ["summary", "family", "maps", "controls", "correlation", "drift", "lineage", "curve", "gating", DemoVlmReport.SectionId, "meaning"];

    public static HtmlReport Build(DemoRun run)
    {
        var report = new HtmlReport(run.OutDir, "truthprobe demo: the truth stays in the family");
        var names = run.Family.Members.Select(m => m.Name).ToList();
        var controls = Lines(run.OutDir, "controls.csv");
        var atChance = controls.Where(c => c[8] != "yes").Select(c => c[0]).ToList();

        var summary = report.Add("summary", "Summary and checks")
            .Text("A small model family grown by truthprobe's lab from seed {{summary.json#seed}} (unrelated models: seeds " +
                  string.Join(", ", run.Family.Unrelated.Select((_, i) => $"{{{{summary.json#unrelated_seeds.{i}}}}}")) + "; " +
                  "probe folds seed {{summary.json#probe_seed}}, shuffled-label control seed {{summary.json#control_seed}}, lambda split seed {{summary.json#lambda_split_seed}}). " +
                  "Maps of {{summary.json#heads_per_map}} heads from {{summary.json#probing_rows}} probing rows; the widest 95% Wilson half-width of any head's Truth Score is {{summary.json#max_wilson_half_width}}. " +
                  "Within-family mean Pearson r of the Truth-Score maps with the base: {{summary.json#within_family_mean_pearson}}; the largest cross-family r (base vs an unrelated model): {{summary.json#cross_family_max_pearson}}.")
            .Text("The same seed gives byte-identical files on the same vector width; another width sums in another order, so the lab's models and every number after them differ. " +
                  "This run: {{summary.json#provenance.vector_width}}-bit vectors (the CPU, .NET and code version are in summary.json's provenance).");
        foreach (var c in run.Checks)
            summary.Verdict(Verdict(c), $"{c.Name}: {CheckText(c, run)}", c.Label);
        if (atChance.Count > 0)
            summary.Verdict(Outcome.Caution, $"At chance level: {string.Join(", ", atChance)}. The correlations of these maps are noise and are not evidence of inheritance.");

        report.Add("family", "The family")
            .Text("Each model as trained; reading accuracy is the share of held-out episodes (x100) whose answer word the model writes greedily, counterfactual = contexts that contradict the memorised facts.")
            .Table("family.csv", "Models, their parents, recipes, steps and seeds");

        var maps = report.Add("maps", "Truth-Score heat maps")
            .Text("Per attention head: the mean validation accuracy over folds of a logistic probe on the head's output (hook_z) at the answer's last token, telling gold from hallucinated answers.")
            .Text($"Probing rows: {DemoRun.ProbingFile}, the lab's probing set with one row per episode (gold for even episodes, hallucinated for odd ones). " +
                  "With both rows of an episode, shuffled folds put one in training and its partner, same context and opposite label, in validation; heads that encode the context then score below chance.");
        maps.Text("All maps share one colour range (lowest to highest head score of any map), so equal colours mean equal scores; each model's own heatmap.png spans only its own range.");
        maps.FigureRow(names.Select(name => (FamilyMaps.PathOf(name), $"{name}: mean Truth Score {{{{controls.csv#{name}/mean_truth_score}}}}" +
                                                                    (atChance.Contains(name) ? " (AT CHANCE LEVEL: not evidence)" : ""))));

        var controlSection = report.Add("controls", "Control baselines")
            .Text("Selectivity = Truth Score minus the same probe's accuracy with labels shuffled across rows; the surface baseline reads the label off the answer's wording alone (length and words). " +
                  "A map is evidence of truthful heads only where it beats both and the binomial chance test.")
            .Table("controls.csv", "Truth Scores against the shuffled-label control and the surface baseline; max_wilson_half_width: the widest 95% Wilson half-width of a head's score over the map's rows");
        foreach (var c in controls.Where(c => c[6] == "0"))
            controlSection.Verdict(Outcome.Caution, $"{c[0]}: no head beats the surface baseline ({{{{controls.csv#{c[0]}/surface_baseline}}}}); its map may encode the answers' wording rather than their truth.");

        report.Add("correlation", "Correlation of the maps")
            .Figure("compare/pearson_matrix.png", "Pearson r between every pair of Truth-Score maps")
            .Text("Intervals of r are 95% bootstrap intervals over the probing rows ({{summary.json#bootstrap_rows}} resamples, each re-fitting every head's probes; bias-corrected on Fisher's z), so they carry the noise of the rows behind both maps.")
            .Table("compare/pairs.csv", "Every pair: Pearson r with its 95% row-bootstrap interval, the layer-preserving permutation p-value, r within layers, and the top-k overlap against chance",
                ["a", "b", "n", "pearson", "pearson_low", "pearson_high", "p_layer_perm", "pearson_layer_centred", "top_k", "topk_expected", "topk_p"]);

        var drift = report.Add("drift", "Weight drift")
            .Figure("drift_layers.png", "Mean attention weight drift from the base per layer")
            .Table("drift_layers.csv", "Per-layer mean of ||A - B||_F / ||A||_F over W_Q, W_K, W_V, W_O (A = base)");
        foreach (var name in names.Skip(1))
            drift.Figure($"drift/{name}/drift.png", $"{name}: drift of each attention matrix per layer");

        report.Add("lineage", "Parent detection")
            .Text("For each model, lineage ranks every other model of the demo by attention weight drift; the closest one below 0.5 is named parent, none if no model is that close.")
            .Table("lineage.csv", "Found parent against the true parent");

        report.Add("curve", "Inheritance against fine-tuning steps")
            .Text("The counterfactual descendant's checkpoints: how much of the base's map survives (Pearson r) as the weights move away (drift).")
            .FigureRow([("curve/curve.png", "Pearson r with the base map at each checkpoint"), ("curve/curve_drift.png", "Attention drift from the base at each checkpoint")])
            .Table("curve/curve.csv", "Inheritance curve");

        var gating = report.Add("gating", "Base-model gates on every model")
            .Text("Gates from the BASE model's Truth Scores (contrast mode: 1 + lambda (S - layer mean)) applied to each model, lambda chosen per model by F1 on a seeded 20% of the lab's HaluEval-layout rows; " +
                  "metrics (x100, mean over the evaluation seeds) on the other 80%. The model judges an answer hallucinated when the word it would write differs from the answer's last word.")
            .Text($"The evaluation items are harder than anything the models were trained on ({run.Plan.EvalFacts} context sentences against at most {Recipe.MaxFacts} in training, most distractors about other people with the asked kind), " +
                  "so that the models still make mistakes that gates could remove. accuracy_low and accuracy_high: 95% paired bootstrap over the test rows; difference_low and difference_high: the same for gated minus vanilla.")
            .Table("eval.csv", "Vanilla against gated")
            .Text("The placebo arm, the control a skeptic asks for: the same protocol (lambda from the same candidates on the same tuning rows, the same test rows) with the base's scores shuffled among the heads of each layer (seed {{summary.json#provenance.seeds.gate_placebo}}). " +
                  "Its gates take the base's values in every layer, so it gates as strongly; only the choice of heads is random. A check passes only when the base's gates beat vanilla and this placebo, each by McNemar below 0.05.")
            .Table(GatePlacebo.File, "Placebo arm: accuracy (x100) at its own lambda; difference_low and difference_high: 95% paired bootstrap of placebo minus vanilla; McNemar against vanilla and against the base's gates");
        foreach (var c in run.Checks.Where(c => c.Name.StartsWith(DemoRun.GatingCheckPrefix, StringComparison.Ordinal)))
            gating.Verdict(Verdict(c), $"{c.Name[DemoRun.GatingCheckPrefix.Length..]}: {CheckText(c, run)}", c.Label);

        DemoVlmReport.Add(report, run, Verdict);

        report.Add("meaning", "What each number means").Definitions(
        [
            ("Truth Score", $"mean over {run.Plan.ProbeFolds} folds of a head's probe validation accuracy; 0.5 is chance on this balanced probing set."),
            ("mean_selectivity", "Truth Score minus the shuffled-label control's accuracy, averaged over heads: how much of a score comes from the labels rather than probe capacity."),
            ("surface_baseline", "accuracy of a probe on the answer text alone (length and words); here {{controls.csv#base/surface_baseline}}, the same for every model since all read the same answers."),
            ("heads_above_surface", "heads whose Truth Score exceeds the surface baseline's accuracy."),
            ("differs_from_chance", "whether at least one head beats the majority share in a one-sided binomial test, Bonferroni-corrected over heads."),
            ("Pearson r", "correlation of two maps over all heads; inheritance predicts high r within the family and low r across families."),
            ("pearson_low, pearson_high", "the 95% bias-corrected bootstrap interval of r over probing rows (compare/pairs.csv)."),
            ("max_wilson_half_width", "the widest 95% Wilson half-width of a head's Truth Score (its accuracy over the probing rows) in the map."),
            ("p_layer_perm", "share of within-layer shuffles of one map whose |r| reaches the observed one: a small value means the maps agree head by head, not only in a shared rise or fall with depth."),
            ("attention_drift", "||A - B||_F / ||A||_F of W_Q, W_K, W_V, W_O, averaged over matrices and layers; 0 = the same weights, about 1.41 = independent ones."),
            ("found_parent", "the model lineage names as the candidate's parent by weight drift (related below 0.5)."),
            ("accuracy, f1, precision, recall", "HaluEval metrics x100 with hallucinated as the positive class, mean over evaluation seeds."),
            ("reading_accuracy", "share of evaluation rows (x100) whose right answer word the model writes itself; counterfactual_ = on contexts contradicting memorised facts."),
            ("mcnemar_p", "exact McNemar test of vanilla against gated verdicts on the same items: below 0.05, the change is unlikely to be noise."),
        ]);
        return report;
    }

    /// <summary>The check's evidence with every number cited from its file.</summary>
    private static string CheckText(DemoCheck c, DemoRun run) => c.Name switch
    {
        DemoRun.WithinFamilyCheck => WithinText(run, "pearson", "pearson_low", "pearson_high", c),
        DemoRun.WithinFamilyLayerCentredCheck => WithinText(run, "pearson_layer_centred", "layer_centred_low", "layer_centred_high", c),
        "lineage_finds_parents" => string.Join("; ", Lines(run.OutDir, "lineage.csv").Select(l =>
            $"{l[0]}: found {l[2]} (true parent {l[1]})" + (l[2] == "none" ? "" : $" at drift {{{{lineage.csv#{l[0]}/found_drift}}}}"))) + ".",
        "drift_grows_with_fine_tuning" => "mean attention drift from the base at " + string.Join(", ", Lines(run.OutDir, Path.Combine("curve", LabCurve.CsvFile)).Select(l =>
            $"step {l[0]}: {{{{curve/curve.csv#{l[0]}/attention_drift}}}}")) + ".",
        _ when c.Name.StartsWith(DemoRun.GatingCheckPrefix, StringComparison.Ordinal) => GatingText(c, run),
        _ when c.Name.StartsWith(DemoVlm.CheckPrefix, StringComparison.Ordinal) => DemoVlmReport.CheckText(c, run.OutDir),
        _ => throw new ArgumentException($"no report text for check '{c.Name}'"),
    };

    /// <summary>Each descendant's r with the base and its row-bootstrap interval, against every unrelated model's r, cited from summary.json.</summary>
    private static string WithinText(DemoRun run, string r, string low, string high, DemoCheck c)
    {
        string cite(string model, string key) => $"{{{{summary.json#pairs_with_base.{model}.{key}}}}}";
        return "with the base, descendants " + string.Join("; ", run.Family.Descendants.Select(m => $"{m.Name} {cite(m.Name, r)} [{cite(m.Name, low)}, {cite(m.Name, high)}]")) +
               " against unrelated " + string.Join("; ", run.Family.Unrelated.Select(m => $"{m.Name} {cite(m.Name, r)}")) +
               ". PASS needs every descendant's lower bound above every unrelated r; FAIL, some descendant's r not above them" +
               (c.Outcome == DemoCheck.Result.Inconclusive ? "; INCONCLUSIVE: the order holds without its intervals, or some maps are at chance level." : ".");
    }

    private static Outcome Verdict(DemoCheck c) =>
        c.Outcome switch { DemoCheck.Result.Pass => Outcome.Pass, DemoCheck.Result.Fail => Outcome.Fail, _ => Outcome.Caution };

    /// <summary>The gating check's numbers cited from eval.csv (rows model/vanilla and model/gated, in that order).</summary>
    private static string GatingText(DemoCheck c, DemoRun run)
    {
        string model = c.Name[DemoRun.GatingCheckPrefix.Length..];
        int i = Lines(run.OutDir, "eval.csv").FindIndex(l => l[0] == model);
        string cite(int row, string col) => $"{{{{eval.csv#{row}/{col}}}}}";
        string numbers = $"accuracy {cite(i, "accuracy")} vanilla vs {cite(i + 1, "accuracy")} gated at lambda {cite(i + 1, "lambda")}, McNemar {cite(i + 1, "mcnemar_p|p")}";
        string placebo = $"placebo map {{{{{GatePlacebo.File}#{model}/accuracy}}}} at lambda {{{{{GatePlacebo.File}#{model}/lambda}}}}, McNemar against vanilla {{{{{GatePlacebo.File}#{model}/mcnemar_p|p}}}}, " +
                         $"base gates against placebo {{{{{GatePlacebo.File}#{model}/mcnemar_p_vs_base_gates|p}}}}";
        string alpha = DemoRun.GatingAlpha.ToString(CultureInfo.InvariantCulture);
        return c.Outcome switch
        {
            DemoCheck.Result.Pass => $"base gates help {model}, and more than the placebo map ({numbers}; {placebo}).",
            DemoCheck.Result.Fail => $"base gates hurt {model} ({numbers}; {placebo}).",
            _ when c.Detail.Contains("placebo map does as well", StringComparison.Ordinal) => $"base gates raise {model}'s accuracy, but the placebo map does as well ({numbers}; {placebo}; base against placebo p ≥ {alpha}).",
            _ => $"base gates do not change {model}'s accuracy significantly ({numbers}; p ≥ {alpha}; {placebo}).",
        };
    }

    private static List<string[]> Lines(string dir, string file) =>
        File.ReadAllLines(Path.Combine(dir, file)).Skip(1).Where(l => l.Length > 0).Select(l => l.Split(',')).ToList();
}
