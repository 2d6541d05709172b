using System.Diagnostics;
using System.Runtime.InteropServices;
using TruthProbe.Model;
using TruthProbe.Numerics;

namespace TruthProbe.Bench;

/// <summary>
/// The prefill GEMM with bf16 weights against the fp32 FMA peak measured in the same run, at two shapes:
/// Qwen2.5-0.5B's MLP (M=512 tokens, K=896, N=4864: `gemm_vs_peak`) and a 7B layer's (K=4096, N=11008:
/// `gemm_7b_vs_peak`, W 90 MB, far past the caches); and CLIP ViT-L/14-336's fc1 with fp16 weights as llava-hf ships
/// them (M=577 positions, K=1024, N=4096: `vision_gemm_vs_peak`).
/// </summary>
public sealed unsafe class GemmBenchmark : IBenchmark
{
    public string Name => "gemm";

    public void Run(BenchContext context)
    {
        context.Log.WriteLine($"SIMD path {SimdWidth.Current}, {Environment.ProcessorCount} threads");
        GemmVersusPeak(context, "gemm_vs_peak", 512, 896, 4864);
        GemmVersusPeak(context, "gemm_7b_vs_peak", 512, 4096, 11008);
        GemmVersusPeak(context, "vision_gemm_vs_peak", 577, 1024, 4096, WeightDType.F16);
    }

    private static void GemmVersusPeak(BenchContext context, string ratio, int m, int k, int n, WeightDType dtype = WeightDType.BF16)
    {
        var rng = new Random(1);
        ushort[] bits = GC.AllocateArray<ushort>(n * k, pinned: true);
        for (int i = 0; i < bits.Length; i++)
        {
            float value = (float)(rng.NextDouble() * 2 - 1) * 0.05f;
            bits[i] = dtype == WeightDType.F16 ? BitConverter.HalfToUInt16Bits((Half)value) : (ushort)(BitConverter.SingleToInt32Bits(value) >>> 16);
        }
        var w = new WeightMatrix(n, k, dtype, (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(bits, 0), bits);
        float[] x = new float[m * k], y = new float[m * n];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        double work = 2.0 * m * n * k;

        // Alternate the two measurements so both see the same machine (other processes come and go).
        double peak = 0, best = double.MaxValue, bestCpu = double.MaxValue;
        for (int round = 0; round < (context.Quick ? 3 : 6); round++)
        {
            peak = Math.Max(peak, FmaPeak.Measure(TimeSpan.FromSeconds(0.3)));
            for (int rep = 0; rep < 3; rep++)
            {
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                var sw = Stopwatch.StartNew();
                WeightGemm.Multiply(w, x, y, m);
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
                bestCpu = Math.Min(bestCpu, (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds);
            }
        }
        // Per second of CPU actually received, both sides: readable on a machine shared with other work, where
        // the wall-clock ratio depends on which side caught a quiet moment.
        double peakPerCpu = FmaPeak.PerCoreCpuSecond();
        double gemmPerCpu = work / bestCpu;
        context.Log.WriteLine($"GEMM M={m} K={k} N={n} {dtype}: best {best * 1e3:0.00} ms = {work / best / 1e9:0.0} GFLOP/s against an fp32 FMA peak of {peak / 1e9:0.0}; " +
            $"per CPU-second GEMM {gemmPerCpu / 1e9:0.0}, FMA loop {peakPerCpu / 1e9:0.0} = {gemmPerCpu / peakPerCpu:0.00}");
        context.Ratio(ratio, work / best / peak);
    }
}
