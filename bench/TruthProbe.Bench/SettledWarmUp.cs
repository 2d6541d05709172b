using System.Diagnostics;

namespace TruthProbe.Bench;

/// <summary>
/// Warm-up for the training benchmarks: steps run until their CPU time per step stops falling. The tiered JIT
/// replaces the kernels' tier-0 and OSR code with Tier1 code over the first seconds of a process (a tiny step still
/// took 15-25% more CPU at 2 s than at 5 s, docs/performance.md "Tiering delay"), so a fixed 2 s measured part of
/// that. Timed by the process's CPU clock, which load on a shared machine does not stretch.
/// </summary>
public static class SettledWarmUp
{
    /// <summary>Runs <paramref name="step"/> (given its index) for at least 2 s, then in blocks of half a second until a block's CPU per step is within 3% of the block before (at most 8 s); returns the steps run.</summary>
    public static int Run(Action<int> step)
    {
        var process = Process.GetCurrentProcess();
        var clock = Stopwatch.StartNew();
        int steps = 0;
        double previous = double.MaxValue;
        while (true)
        {
            bool first = steps == 0;
            var blockClock = Stopwatch.StartNew();
            process.Refresh();
            var cpu = process.TotalProcessorTime;
            int blockSteps = 0;
            for (; blockClock.Elapsed.TotalSeconds < (first ? 2 : 0.5) || blockSteps < 3; blockSteps++) step(steps + blockSteps);
            steps += blockSteps;
            process.Refresh();
            double perStep = (process.TotalProcessorTime - cpu).TotalSeconds / blockSteps;
            if (!first && (perStep > 0.97 * previous || clock.Elapsed.TotalSeconds > 8)) return steps;
            previous = perStep;
        }
    }
}
