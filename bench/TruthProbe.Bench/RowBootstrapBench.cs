using System.Diagnostics;
using TruthProbe.Lineage;
using TruthProbe.Probing;

namespace TruthProbe.Bench;

/// <summary>
/// The demo's row bootstrap on its shape: 2,400 probing rows, 8 x 8 heads of 16, 5 folds, two maps on rows
/// with different labels (so each draws its own rows, as the demo's image map does against the text maps). Reports the CPU seconds of one map's
/// resample against one fit of the same map on its own rows (HeadProber, what 'score' does once):
/// <c>row_bootstrap_resample_vs_map_fit</c> &gt; 1 means a resample costs less than fitting the map.
/// </summary>
public sealed class RowBootstrapBench : IBenchmark
{
    public string Name => "rowboot";

    public void Run(BenchContext context)
    {
        const int rows = 2400, layers = 8, heads = 8, d = 16;
        int resamples = context.Quick ? 4 : 16;
        var strength = Enumerable.Range(0, layers * heads).Select(h => (h % 9) / 12.0).ToArray();
        var parent = SyntheticActivations.Planted(rows, layers, heads, d, strength, seed: 3);
        var child = SyntheticActivations.Planted(rows, layers, heads, d, strength.Select(s => s * 0.8).ToArray(), seed: 4);
        var options = new ProbeOptions(Control: false);
        var sources = new[] { parent, child }.Select((set, i) =>
            new RowSource(new ScoreMap($"m{i}", "memory", Enumerable.Range(0, layers).ToArray(), Enumerable.Range(0, heads).ToArray(),
                ProbeRun.Execute(set, options).Scores.Accuracy), set, options, "memory")).ToList();

        var folds = Folds.Shuffled(rows, options.Folds, options.Seed);
        RowBootstrap.Run(sources, 1, seed: 1); // warm-up (JIT)
        HeadScores? fit = null;
        double fitCpu = Cpu(() => fit = HeadProber.Fit(parent, parent.Labels, folds, options.Solver, fitAllRows: false));
        // MeanIterations averages over folds + 1 slots, the all-rows fit (not made here) counting 0
        context.Log.WriteLine($"Newton steps per fold's fit: mean {fit!.MeanIterations * (options.Folds + 1) / options.Folds:0.0}, max {fit.MaxIterations}");
        var clock = Stopwatch.StartNew();
        double bootCpu = Cpu(() => RowBootstrap.Run(sources, resamples, seed: 7));
        double perResample = bootCpu / (resamples * sources.Count + sources.Count);
        context.Log.WriteLine($"one map fit {fitCpu:0.000} CPU s; {resamples} resamples x {sources.Count} maps (+ the re-fit of each) {bootCpu:0.00} CPU s, " +
                              $"{clock.Elapsed.TotalSeconds:0.00} s wall, {perResample:0.000} CPU s per resampled map ({Environment.ProcessorCount} threads, {TruthProbe.Numerics.Provenance.VectorBits}-bit vectors)");
        context.Ratio("row_bootstrap_resample_vs_map_fit", fitCpu / perResample);
    }

    private static double Cpu(Action action)
    {
        var before = Process.GetCurrentProcess().TotalProcessorTime;
        action();
        return (Process.GetCurrentProcess().TotalProcessorTime - before).TotalSeconds;
    }
}
