using TruthProbe.Demo;
using TruthProbe.Common;
using TruthProbe.Lab;
using TruthProbe.Probing;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe lab curve</c>: Truth-Score correlation with the base and weight drift against fine-tuning steps.</summary>
public sealed class LabCurveVerb : IVerb
{
    public string Name => "lab curve";
    public string Summary => "inheritance curve: map correlation with the base and weight drift against fine-tuning steps";
    public string Usage => """
        usage: truthprobe lab curve BASE --recipe chat|counterfactual|domain --steps 0,50,100,200 [--out DIR]
                                    [--lora R] [--seed S] [--folds 5]

        Fine-tunes the lab model BASE (from 'lab pretrain') for the largest step with checkpoints at the
        others (step 0 is BASE itself), scores every checkpoint on BASE's probing.jsonl cut to one row per
        episode (both rows of an episode in the set bias cross-validated scores below chance) and writes, in DIR
        (default out/curve): curve.csv (step, pearson_with_base, attention_drift, mean_truth_score,
        differs_from_chance), curve.png, curve.json (seeds, definitions), scores/step-NNNNN/ (each map)
        and finetune/ (the checkpoints).
        """;

    public int Run(Args args)
    {
        string baseDir = args.Positional(0, "BASE model folder (from lab pretrain)");
        string recipe = args.Required("recipe", "chat, counterfactual or domain");
        int[] steps = LabCurve.ParseSteps(args.Ints("steps", []));
        string outDir = args.Get("out", Path.Combine("out", "curve"));
        int lora = args.Int("lora", 0);
        int seed = args.Int("seed", 1);
        int folds = args.Int("folds", 5);
        args.EnsureAllRead(1);
        string basePairs = Path.Combine(baseDir, "probing.jsonl");
        if (!File.Exists(basePairs)) throw new UserError($"{baseDir}: no probing.jsonl; BASE must be a folder written by 'truthprobe lab pretrain'");
        string probing = Path.Combine(outDir, DemoRun.ProbingFile);
        LabScoring.OneRowPerEpisode(basePairs, probing);

        var checkpoints = LabCurve.FineTune(baseDir, recipe, steps, Path.Combine(outDir, "finetune"), seed, lora, Console.Out);
        var probe = new ProbeOptions(Folds: folds, Seed: 42);
        var baseScores = LabScoring.Score(baseDir, probing, Path.Combine(outDir, "scores", "base"), probe).Scores.Accuracy;
        using var progress = new Progress("curve", checkpoints.Count);
        var points = LabCurve.Measure(baseDir, baseScores, checkpoints, probing, outDir, probe, recipe, seed, progress);
        progress.Dispose();
        foreach (var p in points)
            Console.Out.WriteLine(FormattableString.Invariant($"step {p.Step,6}  r with base {p.PearsonWithBase,7:0.0000}  attention drift {p.AttentionDrift:0.0000}  mean score {p.MeanTruthScore:0.0000}{(p.DiffersFromChance ? "" : "  AT CHANCE")}"));
        Console.Out.WriteLine($"wrote {Path.Combine(outDir, LabCurve.CsvFile)} and {Path.Combine(outDir, LabCurve.PlotFile)}");
        return 0;
    }
}
