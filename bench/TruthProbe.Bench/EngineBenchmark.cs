using System.Diagnostics;
using System.Runtime.Intrinsics;
using TruthProbe.Model;
using TruthProbe.Numerics;

namespace TruthProbe.Bench;

/// <summary>
/// Prefill and decode speed of the engine on a random bf16 model with Qwen2.5-0.5B shapes, and decode
/// against its memory-bandwidth floor (every weight byte streamed once per token, <see cref="WeightReadFloor"/>),
/// the two alternating in windows of the same run. Ratios against llama.cpp live in the gguf benchmark.
/// </summary>
public sealed class EngineBenchmark : IBenchmark
{
    public string Name => "engine";

    public void Run(BenchContext context)
    {
        var log = context.Log;
        var config = QwenHalfBShape(context.Quick ? 4 : 24);
        int prefillTokens = context.Quick ? 64 : 512;
        string folder = BenchTemp.Create("truthprobe-bench-engine-");
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

            // Decode and its floor take turns in windows, as the training benchmark does with the FMA peak: on a shared
            // machine whose speed drifts for seconds at a time, each window's steps are compared with a floor read moments
            // before, and one slow window moves the median little. Where Vector512 is accelerated each window also decodes
            // on the Vector256 kernels (first or second in turn), so the width the engine picks is checked against the other.
            var matrices = model.Weights.Matrices().ToArray();
            int windows = context.Quick ? 5 : 9, stepsPerWindow = context.Quick ? 4 : 8;
            bool compareWidths = Vector512.IsHardwareAccelerated;
            int[] one = [Generator.ArgMax(logits)];
            Decode(model, state, one, 4, SimdPath.Auto); // warm-up: the decode path's JIT tiers
            if (compareWidths) Decode(model, state, one, 4, SimdPath.Vector256);
            var floors = new double[windows];
            var ratios = new double[windows];
            var cpuRatios = new double[windows];
            var steps = new List<double>();
            var narrowOverWide = new List<double>();
            var cpuNarrowOverWide = new List<double>();
            for (int w = 0; w < windows; w++)
            {
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                floors[w] = Math.Min(WeightReadFloor.PassSeconds(matrices), WeightReadFloor.PassSeconds(matrices));
                double floorCpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds / 2;
                var narrow = compareWidths && w % 2 == 1 ? Decode(model, state, one, stepsPerWindow, SimdPath.Vector256) : default;
                var step = Decode(model, state, one, stepsPerWindow, SimdPath.Auto);
                if (compareWidths && w % 2 == 0) narrow = Decode(model, state, one, stepsPerWindow, SimdPath.Vector256);
                if (compareWidths)
                {
                    narrowOverWide.Add(narrow.Wall / step.Wall);
                    cpuNarrowOverWide.Add(narrow.Cpu / step.Cpu);
                }
                steps.Add(step.Wall);
                ratios[w] = floors[w] / step.Wall;
                cpuRatios[w] = floorCpu / step.Cpu;
            }
            double decodeSeconds = BenchStats.Median(steps), floorSeconds = BenchStats.Median(floors);
            long residentBytes = Environment.WorkingSet;
            double prefillFlops = 2.0 * (config.ParameterCount() - (long)config.Vocab * config.DModel) * prefillTokens + 2.0 * config.Vocab * config.DModel;

            log.WriteLine($"prefill {prefillTokens} tokens: {prefillSeconds:0.000} s = {prefillTokens / prefillSeconds:0.0} tok/s ({prefillFlops / prefillSeconds / 1e9:0.0} GFLOP/s in the matmuls)");
            log.WriteLine($"decode ({SimdWidth.Current}): {decodeSeconds * 1e3:0.0} ms/token (median over {windows} windows of the median of {stepsPerWindow} steps) at positions {prefillTokens}..");
            log.WriteLine($"resident memory after the run: {residentBytes / 1e6:0} MB (bf16 weights mapped, {weightBytes / 1e6:0} MB)");
            log.WriteLine($"weights read with loads alone, 2 passes a window, the faster: {weightBytes / floorSeconds / 1e9:0.0} GB/s -> floor {floorSeconds * 1e3:0.0} ms/token ({floors.Min() * 1e3:0.0}-{floors.Max() * 1e3:0.0})");
            log.WriteLine($"floor / decode per window: {MedianAndRange(ratios)}; per CPU-second {MedianAndRange(cpuRatios)}");
            if (compareWidths)
                log.WriteLine($"decode on Vector256 / on {SimdWidth.Current}, same windows: {MedianAndRange(narrowOverWide)}; per CPU-second {MedianAndRange(cpuNarrowOverWide)} (above 1: the width picked is faster)");
            context.Ratio("decode_vs_bandwidth_floor", BenchStats.Median(ratios));
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

    private static string MedianAndRange(IReadOnlyList<double> values)
    {
        var (median, min, max) = BenchStats.Spread(values);
        return $"median {median:0.000} (range {min:0.000}-{max:0.000})";
    }

    /// <summary><paramref name="count"/> greedy decoding steps on <paramref name="width"/>: the median step's seconds, and the
    /// process's CPU seconds a step (both threads; a machine shared with other work stretches the wall clock, not this).</summary>
    private static (double Wall, double Cpu) Decode(Transformer model, RunState state, int[] one, int count, SimdPath width)
    {
        var times = new List<double>();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        SimdWidth.Forced = width;
        try
        {
            for (int i = 0; i < count; i++)
            {
                var sw = Stopwatch.StartNew();
                one[0] = Generator.ArgMax(model.Forward(state, one));
                times.Add(sw.Elapsed.TotalSeconds);
            }
        }
        finally { SimdWidth.Forced = SimdPath.Auto; }
        return (BenchStats.Median(times), (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds / count);
    }
}
