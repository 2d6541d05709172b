using System.Diagnostics;
using System.Runtime.Intrinsics;
using TruthProbe.Model;
using TruthProbe.Numerics;

namespace TruthProbe.Bench;

/// <summary>
/// The decode mat-vec alone, on every weight matrix of the engine benchmark's model, on each vector width the CPU runs
/// (Vector512 where accelerated, and Vector256) and against <see cref="WeightReadFloor"/>, in alternating rounds in one
/// process: each round times one pass of each, by the wall clock and by the process's CPU seconds, which a machine shared
/// with other work stretches less. Medians over the rounds, with their ranges, per pass of all the weights.
/// </summary>
public sealed class DecodeWidthBenchmark : IBenchmark
{
    public string Name => "decodewidth";

    public void Run(BenchContext context)
    {
        var log = context.Log;
        var config = EngineBenchmark.QwenHalfBShape(context.Quick ? 4 : 24);
        int rounds = context.Quick ? 24 : 48;
        string folder = BenchTemp.Create("truthprobe-bench-decodewidth-");
        try
        {
            RandomModel.WriteHf(folder, config, seed: 1, WeightDType.BF16);
            using var model = Transformer.Load(folder);
            var matrices = model.Weights.Matrices().ToArray();
            long bytes = matrices.Sum(m => m.ByteLength);
            float[] x = KernelInput(matrices.Max(m => m.Cols)), y = new float[matrices.Max(m => m.Rows)];
            var forms = new List<(string Name, Action Pass)>();
            if (Vector512.IsHardwareAccelerated) forms.Add(("mat-vec on Vector512", () => MatVecs(matrices, x, y, SimdPath.Vector512)));
            forms.Add(("mat-vec on Vector256", () => MatVecs(matrices, x, y, SimdPath.Vector256)));
            forms.Add(("weights read alone", () => WeightReadFloor.PassSeconds(matrices)));
            var wall = forms.Select(_ => new double[rounds]).ToArray();
            var cpu = forms.Select(_ => new double[rounds]).ToArray();
            foreach (var (_, pass) in forms) pass(); // warm-up: JIT tiers, pages mapped
            for (int r = 0; r < rounds; r++)
                for (int f = 0; f < forms.Count; f++)
                {
                    var cpuStart = Process.GetCurrentProcess().TotalProcessorTime;
                    var sw = Stopwatch.StartNew();
                    forms[f].Pass();
                    wall[f][r] = sw.Elapsed.TotalSeconds;
                    cpu[f][r] = (Process.GetCurrentProcess().TotalProcessorTime - cpuStart).TotalSeconds;
                }
            log.WriteLine($"{matrices.Length} bf16 matrices, {bytes / 1e6:0} MB a pass, {rounds} alternating rounds, {WorkerPool.Count} threads; ms a pass, median (range):");
            for (int f = 0; f < forms.Count; f++)
                log.WriteLine($"  {forms[f].Name,-22} wall {Stats(wall[f])}  CPU {Stats(cpu[f])}  ({bytes / BenchStats.Median(wall[f]) / 1e9:0.0} GB/s by the wall clock)");
            int floor = forms.Count - 1;
            for (int f = 0; f < floor; f++)
                log.WriteLine($"  read floor / {forms[f].Name}, per round: wall {RatioStats(wall[floor], wall[f])}, CPU {RatioStats(cpu[floor], cpu[f])}");
            if (forms.Count == 3)
                log.WriteLine($"  Vector256 / Vector512 per round: wall {RatioStats(wall[1], wall[0])}, CPU {RatioStats(cpu[1], cpu[0])} (above 1: Vector512 is faster)");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static float[] KernelInput(int n) => [.. Enumerable.Range(0, n).Select(i => (i % 13) * 0.01f - 0.06f)];

    private static void MatVecs(WeightMatrix[] matrices, float[] x, float[] y, SimdPath width)
    {
        SimdWidth.Forced = width;
        try
        {
            foreach (var m in matrices) MatVec.Multiply(m, x.AsSpan(0, m.Cols), y.AsSpan(0, m.Rows));
        }
        finally { SimdWidth.Forced = SimdPath.Auto; }
    }

    private static string Stats(double[] seconds)
    {
        var (median, min, max) = BenchStats.Spread(seconds);
        return $"{median * 1e3,7:0.00} ({min * 1e3:0.00}-{max * 1e3:0.00})";
    }

    private static string RatioStats(double[] numerator, double[] denominator)
    {
        var (median, min, max) = BenchStats.Spread(numerator.Zip(denominator, (a, b) => a / b));
        return $"{median:0.000} ({min:0.000}-{max:0.000})";
    }
}
