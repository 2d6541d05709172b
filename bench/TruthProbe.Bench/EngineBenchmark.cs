using System.Diagnostics;
using System.Numerics.Tensors;
using TruthProbe.Model;

namespace TruthProbe.Bench;

/// <summary>
/// Prefill and decode speed of the engine on a random bf16 model with Qwen2.5-0.5B shapes, and decode
/// against its memory-bandwidth floor (every weight byte streamed once per token), with the bandwidth
/// measured in the same run. Ratios against llama.cpp live in the gguf benchmark.
/// </summary>
public sealed class EngineBenchmark : IBenchmark
{
    public string Name => "engine";

    public void Run(BenchContext context)
    {
        var log = context.Log;
        var config = QwenHalfBShape(context.Quick ? 4 : 24);
        int prefillTokens = context.Quick ? 64 : 512, decodeTokens = context.Quick ? 8 : 32;
        string folder = Directory.CreateTempSubdirectory("truthprobe-bench-engine-").FullName;
        try
        {
            var sw = Stopwatch.StartNew();
            RandomModel.WriteHf(folder, config, seed: 1, WeightDType.BF16);
            log.WriteLine($"random bf16 model, {config.Layers} layers, {config.ParameterCount() / 1e6:0} M parameters, written in {sw.Elapsed.TotalSeconds:0.0} s");
            using var model = Transformer.Load(folder);
            // Decode streams every matrix once; an untied embedding only contributes the rows looked up.
            long weightBytes = model.Weights.Matrices().Sum(m => m.ByteLength);

            var state = model.NewState();
            int[] prompt = Enumerable.Range(0, prefillTokens).Select(i => (i * 7919) % config.Vocab).ToArray();
            model.Forward(state, prompt.AsSpan(0, 8)); // warm-up: JIT, page-in of the mapped weights
            state.Reset();
            sw.Restart();
            var logits = model.Forward(state, prompt);
            double prefillSeconds = sw.Elapsed.TotalSeconds;

            int[] one = [Generator.ArgMax(logits)];
            var decodeTimes = new List<double>();
            for (int i = 0; i < decodeTokens; i++)
            {
                sw.Restart();
                one[0] = Generator.ArgMax(model.Forward(state, one));
                decodeTimes.Add(sw.Elapsed.TotalSeconds);
            }
            double decodeSeconds = Median(decodeTimes);
            long residentBytes = Environment.WorkingSet; // before the bandwidth probe's buffer exists
            double bandwidth = MeasureReadBandwidth(context.Quick ? 256 << 20 : 1 << 30);
            double floorSeconds = weightBytes / bandwidth;
            double prefillFlops = 2.0 * (config.ParameterCount() - (long)config.Vocab * config.DModel) * prefillTokens + 2.0 * config.Vocab * config.DModel;

            log.WriteLine($"prefill {prefillTokens} tokens: {prefillSeconds:0.000} s = {prefillTokens / prefillSeconds:0.0} tok/s ({prefillFlops / prefillSeconds / 1e9:0.0} GFLOP/s in the matmuls)");
            log.WriteLine($"decode: {decodeSeconds * 1e3:0.0} ms/token (median of {decodeTokens}) at positions {prefillTokens}..");
            log.WriteLine($"resident memory after the run: {residentBytes / 1e6:0} MB (bf16 weights mapped, {weightBytes / 1e6:0} MB)");
            log.WriteLine($"memory read bandwidth {bandwidth / 1e9:0.0} GB/s; {weightBytes / 1e6:0} MB of weights per token -> floor {floorSeconds * 1e3:0.0} ms/token");
            context.Ratio("decode_vs_bandwidth_floor", floorSeconds / decodeSeconds);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Qwen2.5-0.5B's shapes with a chosen number of layers.</summary>
    public static ModelConfig QwenHalfBShape(int layers) => new()
    {
        Architecture = "qwen2", Layers = layers, DModel = 896, Heads = 14, KvHeads = 2, HeadDim = 64,
        Ffn = 4864, Vocab = 151936, MaxContext = 32768, RopeTheta = 1e6f, RmsEps = 1e-6f, TiedEmbeddings = true, QkvBias = true,
    };

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }

    /// <summary>Bytes per second summing a buffer much larger than the caches, on all cores; best of 3.</summary>
    private static double MeasureReadBandwidth(int bytes)
    {
        var buffer = new float[bytes / 4];
        buffer.AsSpan().Fill(1f);
        int workers = Environment.ProcessorCount;
        double best = 0;
        for (int round = 0; round < 3; round++)
        {
            var sw = Stopwatch.StartNew();
            var sums = new float[workers];
            Parallel.For(0, workers, w =>
            {
                int start = (int)((long)buffer.Length * w / workers), end = (int)((long)buffer.Length * (w + 1) / workers);
                sums[w] = TensorPrimitives.Sum(buffer.AsSpan(start, end - start));
            });
            double seconds = sw.Elapsed.TotalSeconds;
            if (sums.Sum() != buffer.Length) throw new InvalidOperationException("bandwidth probe summed wrong");
            best = Math.Max(best, bytes / seconds);
        }
        return best;
    }
}
