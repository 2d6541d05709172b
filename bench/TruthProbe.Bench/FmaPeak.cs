using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TruthProbe.Bench;

/// <summary>
/// The machine's fp32 FMA ceiling, measured now: every core runs 12 independent chains of Vector512 FMAs
/// (enough to hide the FMA latency), or Vector256 where 512-bit vectors are not accelerated. Benchmarks
/// divide their achieved FLOP/s by this to get a ratio that does not depend on the machine.
/// </summary>
public static class FmaPeak
{
    /// <summary>FLOP/s on all cores (an FMA counts as 2 FLOP); best of a few short rounds.</summary>
    public static double Measure(TimeSpan? duration = null)
    {
        double seconds = (duration ?? TimeSpan.FromSeconds(0.5)).TotalSeconds;
        int threads = Environment.ProcessorCount;
        const long iterations = 1 << 22;
        double best = 0;
        var clock = Stopwatch.StartNew();
        do
        {
            var start = Stopwatch.GetTimestamp();
            var sinks = new float[threads];
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t => sinks[t] = Vector512.IsHardwareAccelerated ? Chains512(iterations) : Chains256(iterations));
            double elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
            int lanes = Vector512.IsHardwareAccelerated ? 16 : 8;
            best = Math.Max(best, threads * iterations * 12.0 * lanes * 2 / elapsed);
        } while (clock.Elapsed.TotalSeconds < seconds);
        return best;
    }

    /// <summary>
    /// FLOP per second of CPU time on one core: one thread's rounds of ~50 ms, best of five, timed by the process's
    /// CPU clock, which a machine shared with other work does not stretch. Divides work measured the same way.
    /// </summary>
    public static double PerCoreCpuSecond()
    {
        const long iterations = 1 << 22;
        int lanes = Vector512.IsHardwareAccelerated ? 16 : 8;
        double best = 0;
        for (int round = 0; round < 5; round++)
        {
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            float sink = Vector512.IsHardwareAccelerated ? Chains512(iterations) : Chains256(iterations);
            double seconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
            if (sink != 0 && seconds > 0) best = Math.Max(best, iterations * 12.0 * lanes * 2 / seconds);
        }
        return best;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains512(long iterations)
    {
        var m = Vector512.Create(0.999999f);
        var a = Vector512.Create(1e-7f);
        Vector512<float> c0 = Vector512.Create(1f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        for (long i = 0; i < iterations; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, a); c1 = Vector512.FusedMultiplyAdd(c1, m, a);
            c2 = Vector512.FusedMultiplyAdd(c2, m, a); c3 = Vector512.FusedMultiplyAdd(c3, m, a);
            c4 = Vector512.FusedMultiplyAdd(c4, m, a); c5 = Vector512.FusedMultiplyAdd(c5, m, a);
            c6 = Vector512.FusedMultiplyAdd(c6, m, a); c7 = Vector512.FusedMultiplyAdd(c7, m, a);
            c8 = Vector512.FusedMultiplyAdd(c8, m, a); c9 = Vector512.FusedMultiplyAdd(c9, m, a);
            c10 = Vector512.FusedMultiplyAdd(c10, m, a); c11 = Vector512.FusedMultiplyAdd(c11, m, a);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains256(long iterations)
    {
        var m = Vector256.Create(0.999999f);
        var a = Vector256.Create(1e-7f);
        Vector256<float> c0 = Vector256.Create(1f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        for (long i = 0; i < iterations; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, m, a); c1 = Vector256.FusedMultiplyAdd(c1, m, a);
            c2 = Vector256.FusedMultiplyAdd(c2, m, a); c3 = Vector256.FusedMultiplyAdd(c3, m, a);
            c4 = Vector256.FusedMultiplyAdd(c4, m, a); c5 = Vector256.FusedMultiplyAdd(c5, m, a);
            c6 = Vector256.FusedMultiplyAdd(c6, m, a); c7 = Vector256.FusedMultiplyAdd(c7, m, a);
            c8 = Vector256.FusedMultiplyAdd(c8, m, a); c9 = Vector256.FusedMultiplyAdd(c9, m, a);
            c10 = Vector256.FusedMultiplyAdd(c10, m, a); c11 = Vector256.FusedMultiplyAdd(c11, m, a);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }
}
