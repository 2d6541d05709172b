using System.Diagnostics;
using TruthProbe.Probing;
using TruthProbe.Training;

namespace TruthProbe.Bench;

/// <summary>
/// Fitting every head's probe, 5-fold plus the all-rows fit, on the paper's Vicuna shape: 32 x 32 heads,
/// 584 rows, d_head 128 (synthetic planted signal). Target for the exact solver: under 5 s on 2 cores.
/// Also times our CPU run of the reference solver (200 epochs of AdamW), on a slice of the heads in --quick.
/// </summary>
public sealed class ProbeBenchmark : IBenchmark
{
    public string Name => "probe";

    public void Run(BenchContext context)
    {
        const int rows = 584, layers = 32, heads = 32, d = 128;
        var strength = Enumerable.Range(0, layers * heads).Select(h => (h % 17) / 8.0).ToArray();
        var set = SyntheticActivations.Planted(rows, layers, heads, d, strength, seed: 7);
        var folds = Folds.Shuffled(rows, 5, 42);

        HeadProber.Fit(set, set.Labels, folds, ProbeSolverKind.Exact, fitAllRows: true); // warm-up (JIT)
        var clock = Stopwatch.StartNew();
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var exact = HeadProber.Fit(set, set.Labels, folds, ProbeSolverKind.Exact, fitAllRows: true);
        double exactSeconds = clock.Elapsed.TotalSeconds;
        // CPU seconds too: on a shared machine the wall clock also counts other people's work.
        double exactCpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
        context.Log.WriteLine($"exact: {exactSeconds:0.000} s wall, {exactCpu:0.000} s CPU on {Environment.ProcessorCount} threads for {layers * heads} heads x 6 fits, {rows} rows, d {d} " +
                              $"(Newton steps mean {exact.MeanIterations:0.0}, max {exact.MaxIterations}; max gradient norm {exact.MaxGradientNorm:0.0e0})");

        // The reference solver costs the same per head; time a slice of layers and scale in --quick.
        int referenceLayers = context.Quick ? 2 : layers;
        var slice = Slice(set, referenceLayers);
        clock.Restart();
        HeadProber.Fit(slice, slice.Labels, folds, ProbeSolverKind.Reference, fitAllRows: true);
        double referenceSeconds = clock.Elapsed.TotalSeconds * layers / referenceLayers;
        context.Log.WriteLine($"reference (AdamW, 200 epochs): {referenceSeconds:0.000} s" +
                              (referenceLayers < layers ? $" (measured on {referenceLayers} layers, scaled)" : ""));

        context.Ratio("probe_exact_vs_5s", 5.0 / exactSeconds);
        context.Ratio("probe_exact_vs_reference_solver", referenceSeconds / exactSeconds);
    }

    private static ActivationSet Slice(ActivationSet set, int layers)
    {
        if (layers == set.Layers) return set;
        int perRow = set.Layers * set.Heads * set.HeadDim, kept = layers * set.Heads * set.HeadDim;
        var values = new float[set.Rows * kept];
        for (int i = 0; i < set.Rows; i++) set.Values.AsSpan(i * perRow, kept).CopyTo(values.AsSpan(i * kept, kept));
        return new ActivationSet(set.Rows, layers, set.Heads, set.HeadDim, values, set.Labels, set.RowIds);
    }
}
