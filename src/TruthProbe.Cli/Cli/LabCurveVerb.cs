using System.CommandLine;
using TruthProbe.Common;
using TruthProbe.Demo;
using TruthProbe.Lab;
using TruthProbe.Probing;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe lab curve</c>: Truth-Score correlation with the base and weight drift against fine-tuning steps.</summary>
public sealed class LabCurveVerb : IVerb
{
    public string Name => "lab curve";
    public string Summary => "inheritance curve: map correlation with the base and weight drift against fine-tuning steps";
    public string Details => """
        Fine-tunes the lab model BASE (from 'lab pretrain') for the largest step with checkpoints at the
        others (step 0 is BASE itself), scores every checkpoint on BASE's probing.jsonl cut to one row per
        episode (both rows of an episode in the set bias cross-validated scores below chance) and writes, in DIR:
        curve.csv (step, pearson_with_base, attention_drift, mean_truth_score,
        differs_from_chance), curve.png (r), curve_drift.png (drift), curve.json (seeds, definitions), scores/step-NNNNN/ (each map)
        and finetune/ (the checkpoints).
        """;

    private readonly Argument<string> _base = new("BASE") { Description = "the lab model folder (from lab pretrain)" };
    private readonly Option<string> _recipe = LabOptions.Recipe();
    private readonly Option<int[]?> _steps = Opt.Ints("--steps", "0,50,100,200", "fine-tuning steps to measure at (step 0 is BASE itself)");
    private readonly Option<string> _out = Opt.Out("DIR", "output folder", Path.Combine("out", "curve"));
    private readonly Option<int> _lora = LabOptions.Lora();
    private readonly Option<int> _seed = LabOptions.Seed();
    private readonly Option<int> _folds = Opt.Int("--folds", "K", 5, "cross-validation folds of each map", min: 2);
    public IEnumerable<Symbol> Symbols => [_base, _recipe, _steps, _out, _lora, _seed, _folds];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        string baseDir = args.GetValue(_base)!;
        string recipe = args.GetValue(_recipe)!;
        int[] steps = LabCurve.ParseSteps(args.Given(_steps) ?? []);
        string outDir = args.GetValue(_out)!;
        int lora = args.GetValue(_lora);
        int seed = args.GetValue(_seed);
        int folds = args.GetValue(_folds);
        string basePairs = Path.Combine(baseDir, "probing.jsonl");
        if (!File.Exists(basePairs)) throw new UserError($"{baseDir}: no probing.jsonl; BASE must be a folder written by 'truthprobe lab pretrain'");
        string probing = Path.Combine(outDir, DemoRun.ProbingFile);
        LabScoring.OneRowPerEpisode(basePairs, probing);

        var checkpoints = LabCurve.FineTune(baseDir, recipe, steps, Path.Combine(outDir, "finetune"), seed, lora, stdout);
        var probe = new ProbeOptions(Folds: folds, Seed: 42);
        var baseScores = LabScoring.Score(baseDir, probing, Path.Combine(outDir, "scores", "base"), probe).Scores.Accuracy;
        using var progress = new Progress("curve", checkpoints.Count, to: stderr);
        var points = LabCurve.Measure(baseDir, baseScores, checkpoints, probing, outDir, probe, recipe, seed, () => progress.Advance());
        progress.Dispose();
        foreach (var p in points)
            stdout.WriteLine(FormattableString.Invariant($"step {p.Step,6}  r with base {p.PearsonWithBase,7:0.0000}  attention drift {p.AttentionDrift:0.0000}  mean score {p.MeanTruthScore:0.0000}{(p.DiffersFromChance ? "" : "  AT CHANCE")}"));
        stdout.WriteLine($"wrote {Path.Combine(outDir, LabCurve.CsvFile)} and {Path.Combine(outDir, LabCurve.PlotFile)}");
        return 0;
    }
}
