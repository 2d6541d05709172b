using System.Diagnostics;
using System.Runtime.Intrinsics;
using TruthProbe.Lineage;
using TruthProbe.Model;

namespace TruthProbe.Bench;

/// <summary>
/// <c>truthprobe drift</c> on two random bf16 models of Qwen2.5-0.5B's shape, against the ceiling it
/// streams into: a plain parallel read of the very same mapped bytes, measured in the same run.
/// ratio drift_vs_bandwidth = drift GB/s / read GB/s (1 = drift runs at memory speed).
/// </summary>
public sealed unsafe class DriftBench : IBenchmark
{
    public string Name => "drift";

    public void Run(BenchContext context)
    {
        var config = new ModelConfig
        {
            Architecture = "qwen2", Layers = context.Quick ? 4 : 24, DModel = 896, Heads = 14, KvHeads = 2, HeadDim = 64, Ffn = 4864,
            Vocab = context.Quick ? 32_000 : 151_936, MaxContext = 32_768, RopeTheta = 1_000_000f, RmsEps = 1e-6f, TiedEmbeddings = true, QkvBias = true,
        };
        string dir = BenchTemp.Create("truthprobe-bench-drift-");
        try
        {
            var clock = Stopwatch.StartNew();
            RandomModel.WriteHf(Path.Combine(dir, "a"), config, 1, WeightDType.BF16);
            RandomModel.WriteHf(Path.Combine(dir, "b"), config, 2, WeightDType.BF16);
            context.Log.WriteLine($"wrote two {config.ParameterCount() / 1e6:0}M-parameter bf16 models in {clock.Elapsed.TotalSeconds:0.0} s");
            using var a = Transformer.Load(Path.Combine(dir, "a"));
            using var b = Transformer.Load(Path.Combine(dir, "b"));
            var segments = a.Weights.Matrices().Concat(b.Weights.Matrices()).Select(m => ((nint)m.Data, m.ByteLength)).ToArray();
            double gigabytes = segments.Sum(s => s.ByteLength) / 1e9;

            int repeats = context.Quick ? 2 : 3;
            long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            double drift = Best(repeats, () => WeightDrift.Compute(a, b));
            // Streaming check: the managed memory one comparison allocates, against the bytes it reads.
            double allocatedPerRun = (GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore) / (repeats + 1.0);
            context.Log.WriteLine($"one comparison allocated {allocatedPerRun / 1e6:0.0} MB of managed memory for {gigabytes:0.00} GB of weights read");
            double read = Best(repeats, () => ReadAll(segments));
            context.Log.WriteLine($"compared {gigabytes:0.00} GB of weights: drift {gigabytes / drift:0.0} GB/s ({drift * 1e3:0} ms), " +
                                  $"plain parallel read {gigabytes / read:0.0} GB/s ({read * 1e3:0} ms), {Environment.ProcessorCount} threads");
            context.Ratio("drift_vs_bandwidth", read / drift);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Fastest of a warm-up and <paramref name="repeats"/> timed runs, in seconds.</summary>
    private static double Best(int repeats, Action run)
    {
        run();
        double best = double.PositiveInfinity;
        for (int i = 0; i < repeats; i++)
        {
            var clock = Stopwatch.StartNew();
            run();
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return best;
    }

    /// <summary>Sums every byte range as 64-bit words on all cores: the memory-read ceiling for the same data.</summary>
    private static ulong ReadAll((nint Start, long ByteLength)[] segments)
    {
        const long chunk = 4 << 20;
        var pieces = segments.SelectMany(s => Enumerable.Range(0, (int)((s.ByteLength + chunk - 1) / chunk))
            .Select(i => (Start: s.Start + (nint)(i * chunk), Length: Math.Min(chunk, s.ByteLength - i * chunk)))).ToArray();
        ulong total = 0;
        Parallel.For(0, pieces.Length, () => 0UL, (i, _, sum) =>
        {
            ulong* p = (ulong*)pieces[i].Start;
            long words = pieces[i].Length / 8, w = 0;
            var acc = Vector512<ulong>.Zero;
            for (; w + 8 <= words; w += 8) acc += Vector512.Load(p + w);
            for (; w < words; w++) sum += p[w];
            return sum + Vector512.Sum(acc);
        }, sum => Interlocked.Add(ref total, sum));
        return total;
    }
}
