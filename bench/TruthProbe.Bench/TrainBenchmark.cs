using System.Diagnostics;
using System.Globalization;
using TruthProbe.Lab;

namespace TruthProbe.Bench;

/// <summary>
/// Training speed of the demo's model (lab pretrain --size tiny, batch 64): tokens/s, and achieved FLOP/s
/// (6 x parameters x tokens/s, the usual dense-training count, attention scores excluded) over the fp32
/// FMA peak measured in the same run. Also the GEMM kernel alone on a training-shaped product.
/// </summary>
public sealed class TrainBenchmark : IBenchmark
{
    public string Name => "train";

    public void Run(BenchContext context)
    {
        double peak = FmaPeak.Measure();
        context.Log.WriteLine(Invariant($"fp32 FMA peak: {peak / 1e9:0.0} GFLOP/s on {Environment.ProcessorCount} threads"));

        var world = new SyntheticWorld(1);
        var tokenizer = WordTokenizer.ForWorld();
        var recipe = new PretrainRecipe(new Corpus(world, tokenizer));
        var config = LabModelConfig.ForSize("tiny", tokenizer.VocabSize, 128, WordTokenizer.BosId, WordTokenizer.EosId);
        var model = new TrainableLlama(config);
        model.Initialize(1);
        var optimizer = new AdamW(model.Parameters);
        int Step(int step)
        {
            // Late-curriculum batches: full-size contexts, as in most of a run.
            var batch = recipe.Batch(1, 10_000 + step, 10_000, 64);
            model.Parameters.ZeroGrads();
            model.Forward(batch, out _, out _);
            model.Backward();
            optimizer.ClipGradients(1);
            optimizer.Step(1e-3);
            return batch.Batch * batch.SeqLen;
        }
        // Warm-up by time, not steps: the tiered JIT recompiles a method after 30 calls and a 100 ms pause in
        // new compilations, so a few steps leave much of the step in unoptimised code (--quick measured 30% low).
        int steps = context.Quick ? 10 : 40, warmupSteps = 0;
        for (var warm = Stopwatch.StartNew(); warm.Elapsed.TotalSeconds < 2 || warmupSteps < 3; warmupSteps++) Step(steps + warmupSteps);
        long tokens = 0;
        var clock = Stopwatch.StartNew();
        for (int step = 0; step < steps; step++) tokens += Step(step);
        clock.Stop();
        double tokensPerSecond = tokens / clock.Elapsed.TotalSeconds;
        double flops = 6.0 * config.ParameterCount * tokensPerSecond;
        context.Log.WriteLine(Invariant($"train tiny ({config.ParameterCount:N0} parameters): {tokensPerSecond:N0} tokens/s, {steps / clock.Elapsed.TotalSeconds:0.00} steps/s, {flops / 1e9:0.0} GFLOP/s"));
        context.Ratio("train_vs_fma_peak", flops / peak);

        // The kernel alone, on the largest product of a step: [B·T, d] x [d, hidden].
        int m = 64 * 36, k = config.Dim, n = config.Hidden;
        var a = new float[m * k];
        var b = new float[n * k];
        var c = new float[m * n];
        int reps = context.Quick ? 200 : 1000;
        Gemm.MatMulTransB(a, b, c, m, k, n);
        var sw = Stopwatch.StartNew();
        for (int r = 0; r < reps; r++) Gemm.MatMulTransB(a, b, c, m, k, n);
        double gemmFlops = 2.0 * m * k * n * reps / sw.Elapsed.TotalSeconds;
        context.Log.WriteLine(Invariant($"gemm {m}x{k}x{n}: {gemmFlops / 1e9:0.0} GFLOP/s"));
        context.Ratio("train_gemm_vs_fma_peak", gemmFlops / peak);
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
