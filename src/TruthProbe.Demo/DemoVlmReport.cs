using TruthProbe.Reports;
using static TruthProbe.Reports.HtmlReport;

namespace TruthProbe.Demo;

/// <summary>The report's section on the multimodal descendant (files under OUT/vlm, written by <see cref="DemoVlm"/>).</summary>
public static class DemoVlmReport
{
    public const string SectionId = "vlm";

    // pope.csv rows: vanilla then gated per setting (random, popular, adversarial), then all settings pooled (rows 6, 7).
    private const int PooledVanilla = 6;
    private static readonly string[] PairColumns = ["a", "b", "n", "pearson", "pearson_low", "pearson_high", "p_layer_perm", "pearson_layer_centred"];

    public static void Add(HtmlReport report, DemoRun run, Func<DemoCheck, Outcome> verdict)
    {
        var section = report.Add(SectionId, "The multimodal descendant (LLaVA recipe)")
            .Text("A vision-language descendant grown from the base the way LLaVA was grown from Vicuna (lab vlm: a CLIP-style tower, a 2-layer projector, stage 1 projector only, " +
                  "stage 2 projector + LM, stage 3 the scenes' captions join), written as an llava-hf folder and measured with the same code as score --images, eval pope and eval chair. " +
                  "Everything is measured on held-out synthetic scenes the descendant never trained on.")
            .Text("Held-out POPE accuracy before any gating (all settings pooled): {{vlm/pope.csv#" + PooledVanilla + "/accuracy}}% " +
                  "(95% Wilson interval {{vlm/pope.csv#" + PooledVanilla + "/accuracy_low}}-{{vlm/pope.csv#" + PooledVanilla + "/accuracy_high}}%, yes rate {{vlm/pope.csv#" + PooledVanilla + "/yes_ratio}}%). " +
                  "A descendant that cannot see (interval reaching 50%) gives no evidence about image hallucination, so its inheritance and gating checks are then inconclusive, never passed.");
        foreach (var c in run.Checks.Where(c => c.Name.StartsWith(DemoVlm.CheckPrefix, StringComparison.Ordinal)))
            section.Verdict(verdict(c), $"{c.Name}: {CheckText(c, run.OutDir)}", c.Label);
        section
            .FigureRow([("scores/base/heatmap.png", "base: Truth Scores from text rows"), ("vlm/scores/heatmap.png", "vlm: Truth Scores from image rows (its language model's heads)")])
            .Text("Image probing rows: 'Is there a {class} in the image?' asked of every held-out scene holding the class and of as many without it (adversarial and random negatives in turn), one row per episode (gold for even episodes, hallucinated for odd ones), so every kept answer is 'Yes', as often true as a hallucinated object for each question; prompt '<image>\\n{question}\\nASSISTANT: {answer}'.")
            .Figure("vlm/compare/pearson_matrix.png", "Pearson r between the base's text map, the descendant's image map and the unrelated models' text maps")
            .Table("vlm/compare/pairs.csv", "Every pair: Pearson r with its 95% bootstrap interval, the layer-preserving permutation p-value and r within layers",
                PairColumns)
            .Text("Like for like: the base's own probing rows (read a fact from the context), one per episode, each shown a held-out scene first, prompt '<image>\\n' + the base's text prompt; " +
                  "the descendant's map from them measures the skill the base's text map measures, where the image rows ask one the base never had.")
            .FigureRow([("scores/base/heatmap.png", "base: Truth Scores from text rows"), ($"vlm/{DemoVlm.ContextScores}/heatmap.png", "vlm: Truth Scores from the base's rows with a scene shown first")])
            .Table($"vlm/{DemoVlm.ContextCompare}/pairs.csv", "Every pair with the descendant's map from context rows with an image",
                PairColumns)
            .Figure("vlm/drift/drift.png", "vlm: drift of each attention matrix of its language model from the base's, per layer")
            .Table("vlm/lineage.csv", "Parent detection over the family's text models")
            .Text("Gates from the BASE's Truth Scores (contrast mode), lambda chosen by pooled POPE accuracy on a seeded 20% of the held-out scenes (lambda_split_seed); " +
                  "POPE and CHAIR on the other 80%. POPE replies are parsed strictly (the reply must start with yes or no), percentages; CHAIR uses the lab world's 16 class names as its object words " +
                  "and each scene's classes as ground truth; gated minus vanilla CHAIR_i with a 95% paired bootstrap over images.")
            .Table("vlm/pope.csv", "POPE on held-out scenes, vanilla against gated (McNemar exact p over the same questions)")
            .Table($"vlm/{DemoVlm.PopePlaceboFile}", "POPE's placebo arm: the base's map shuffled within layers, lambda chosen the same way; McNemar against vanilla and against the base's gates")
            .Table("vlm/chair.csv", "CHAIR on captions of held-out scenes, vanilla against gated");
    }

    /// <summary>A check's evidence with its main numbers cited from the files (the summary's detail holds them all).</summary>
    public static string CheckText(DemoCheck c, string outDir)
    {
        const string Pope = "vlm/pope.csv#";
        string verdict = c.Outcome == DemoCheck.Result.Inconclusive ? " Inconclusive: " + c.Detail : "";
        return c.Name switch
        {
            DemoVlm.Sees => $"held-out POPE accuracy {{{{{Pope}{PooledVanilla}/accuracy}}}}% (95% Wilson {{{{{Pope}{PooledVanilla}/accuracy_low}}}}-{{{{{Pope}{PooledVanilla}/accuracy_high}}}}%), " +
                            (c.Outcome == DemoCheck.Result.Pass ? "above chance." : "not above chance: a descendant that cannot see gives no evidence either way."),
            DemoVlm.InheritedCheck => "Pearson r of the base's text map with the descendant's image map, and of every cross-family pair: " + Pairs(outDir, "compare") + verdict,
            DemoVlm.SameSkillCheck => "the same with the descendant's map from the base's own context rows, each shown a held-out scene first: " + Pairs(outDir, DemoVlm.ContextCompare) + verdict,
            "vlm_lineage_finds_base" => $"lineage names {Rows(outDir, "vlm/lineage.csv")[0][2]} (true parent: base); LM attention drift from the base {{{{vlm/lineage.csv#{DemoVlm.Name}/attention_drift_from_base}}}}.",
            "vlm_base_gates_help_pope" => $"held-out POPE accuracy {{{{{Pope}{PooledVanilla}/accuracy}}}}% vanilla vs {{{{{Pope}{PooledVanilla + 1}/accuracy}}}}% gated at lambda {{{{{Pope}{PooledVanilla + 1}/lambda}}}}, " +
                                          $"McNemar {{{{{Pope}{PooledVanilla + 1}/mcnemar_p|p}}}}; placebo map {{{{vlm/{DemoVlm.PopePlaceboFile}#all/accuracy}}}}%, base gates against placebo {{{{vlm/{DemoVlm.PopePlaceboFile}#all/mcnemar_p_vs_base_gates|p}}}}." + verdict,
            "vlm_base_gates_reduce_chair" => "CHAIR_s {{vlm/chair.csv#vanilla/chair_s}} vanilla vs {{vlm/chair.csv#gated/chair_s}} gated." + (c.Outcome == DemoCheck.Result.Inconclusive ? verdict : " " + c.Detail),
            _ => throw new ArgumentException($"no report text for check '{c.Name}'"),
        };
    }

    private static string Pairs(string outDir, string folder) =>
        string.Join("; ", Rows(outDir, $"vlm/{folder}/pairs.csv").Select((r, i) => $"{r[0]}-{r[1]} {{{{vlm/{folder}/pairs.csv#{i}/pearson}}}}")) + ".";

    private static List<string[]> Rows(string dir, string file) =>
        File.ReadAllLines(Path.Combine(dir, file)).Skip(1).Where(l => l.Length > 0).Select(l => l.Split(',')).ToList();
}
