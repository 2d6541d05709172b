using System.Diagnostics;
using System.Globalization;
using TruthProbe.Lab;
using TruthProbe.Training;

namespace TruthProbe.Bench;

/// <summary>
/// Training speed of the demo's model (lab pretrain --size tiny, batch 64): tokens/s, and achieved model
/// FLOP/s (<see cref="LabTrainingStep"/>) over the fp32 FMA peak measured in the same run. The dense and the
/// attention part are printed. Also the GEMM kernel alone on a training-shaped product.
/// Steps are timed in windows of 8, each right after a short peak measurement, and the median of the
/// windows' ratios is reported (with the range): on a shared virtual machine whose speed drifts by a quarter
/// for seconds at a time, a window is compared with the peak of the same moment, and one slow window moves
/// nothing.
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
        var training = new LabTrainingStep(config, recipe);
        (long Tokens, double AttentionFlops) Step(int step) => training.Run(step);
        const int stepsPerWindow = 8;
        int windows = context.Quick ? 3 : 7;
        SettledWarmUp.Run(s => Step(windows * stepsPerWindow + s));
        var rates = new double[windows];
        var ratios = new double[windows];
        double totalDense = 0, totalAttention = 0;
        for (int w = 0; w < windows; w++)
        {
            double windowPeak = FmaPeak.Measure(TimeSpan.FromSeconds(0.1));
            long tokens = 0;
            double attentionFlops = 0;
            var clock = Stopwatch.StartNew();
            for (int step = 0; step < stepsPerWindow; step++)
            {
                var (stepTokens, stepAttention) = Step(w * stepsPerWindow + step);
                tokens += stepTokens;
                attentionFlops += stepAttention;
            }
            double seconds = clock.Elapsed.TotalSeconds;
            double denseFlops = training.DenseFlops(tokens);
            rates[w] = tokens / seconds;
            ratios[w] = (denseFlops + attentionFlops) / seconds / windowPeak;
            totalDense += denseFlops;
            totalAttention += attentionFlops;
        }
        Array.Sort(rates);
        Array.Sort(ratios);
        double attentionShare = totalAttention / totalDense;
        double tokensPerSecond = rates[windows / 2];
        context.Log.WriteLine(Invariant($"train tiny ({config.ParameterCount():N0} parameters): {tokensPerSecond:N0} tokens/s; model FLOPs = 6 x parameters + causal attention (+{100 * attentionShare:0.0}%): {6.0 * config.ParameterCount() * tokensPerSecond * (1 + attentionShare) / 1e9:0.0} GFLOP/s; medians of {windows} windows of {stepsPerWindow} steps (tokens/s {rates[0]:N0}-{rates[^1]:N0}, ratio {ratios[0]:0.000}-{ratios[^1]:0.000}); dense part alone {ratios[windows / 2] / (1 + attentionShare):0.000} of peak"));
        context.Ratio("train_vs_fma_peak", ratios[windows / 2]);

        // The kernel alone, on the largest product of a step: [B·T, d] x [d, hidden].
        int m = 64 * 36, k = config.DModel, n = config.Ffn;
        var a = new float[m * k];
        var b = new float[n * k];
        var c = new float[m * n];
        int reps = context.Quick ? 200 : 1000;
        TrainingGemm.MatMulTransB(a, b, c, m, k, n);
        var sw = Stopwatch.StartNew();
        for (int r = 0; r < reps; r++) TrainingGemm.MatMulTransB(a, b, c, m, k, n);
        double gemmFlops = 2.0 * m * k * n * reps / sw.Elapsed.TotalSeconds;
        context.Log.WriteLine(Invariant($"gemm {m}x{k}x{n}: {gemmFlops / 1e9:0.0} GFLOP/s"));
        context.Ratio("train_gemm_vs_fma_peak", gemmFlops / peak);
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
