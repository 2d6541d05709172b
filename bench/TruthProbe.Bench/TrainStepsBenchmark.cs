using System.Diagnostics;
using System.Globalization;
using TruthProbe.Lab;
using TruthProbe.Model;
using TruthProbe.Training;

namespace TruthProbe.Bench;

/// <summary>
/// Training steps per second of three lab shapes (the demo's tiny, small, and 8 layers x 8 heads of 16 at d = 128),
/// timed by the process's CPU clock as well as the wall clock: on a machine shared with other work the CPU
/// seconds a step takes are what the code decides, the wall seconds what the load does. Model FLOPs of
/// <see cref="LabTrainingStep"/> over the FMA loop's FLOPs per CPU-second on one core, measured in the same
/// process: <c>train_cpu_vs_fma_peak_SIZE</c>. CPU time
/// includes the caller's spin while the helper thread finishes its share, a real cost of the step.
/// <c>TRAINSTEPS_ONLY=NAME</c> runs one shape (for profiling).
/// </summary>
public sealed class TrainStepsBenchmark : IBenchmark
{
    public string Name => "trainsteps";

    public void Run(BenchContext context)
    {
        double perCore = FmaPeak.PerCoreCpuSecond();
        context.Log.WriteLine(Invariant($"fp32 FMA loop: {perCore / 1e9:0.0} GFLOP per CPU-second on one core; {Environment.ProcessorCount} threads"));
        var tokenizer = WordTokenizer.ForWorld();
        int vocab = tokenizer.VocabSize;
        (string Name, ModelConfig Config)[] shapes =
        [
            ("tiny", LabModelConfig.ForSize("tiny", vocab, 128, WordTokenizer.BosId, WordTokenizer.EosId)),
            ("small", LabModelConfig.ForSize("small", vocab, 128, WordTokenizer.BosId, WordTokenizer.EosId)),
            ("8x8", LabModelConfig.Create(vocab, Dim: 128, Layers: 8, Heads: 8, KvHeads: 4, HeadDim: 16, Hidden: 384, 128, BosId: WordTokenizer.BosId, EosId: WordTokenizer.EosId)),
        ];
        var recipe = new PretrainRecipe(new Corpus(new SyntheticWorld(1), tokenizer));
        foreach (var (name, config) in shapes.Where(s => Environment.GetEnvironmentVariable("TRAINSTEPS_ONLY") is not { } only || only == s.Name))
        {
            var training = new LabTrainingStep(config, recipe);
            double Step(int step)
            {
                var (tokens, attentionFlops) = training.Run(step);
                return training.DenseFlops(tokens) + attentionFlops;
            }
            SettledWarmUp.Run(s => Step(1_000 + s));
            int steps = context.Quick ? 16 : 48;
            double flops = 0;
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            for (int s = 0; s < steps; s++) flops += Step(s);
            double wall = clock.Elapsed.TotalSeconds, cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
            double ratio = flops / cpuSeconds / perCore;
            context.Log.WriteLine(Invariant($"train {name} ({config.ParameterCount():N0} parameters, {config.Layers} layers x {config.Heads} heads): {steps / cpuSeconds * Environment.ProcessorCount:0.00} steps per {Environment.ProcessorCount} CPU-seconds ({1000 * cpuSeconds / steps:0.0} ms CPU a step), {steps / wall:0.00} steps/s wall; {flops / cpuSeconds / 1e9:0.0} GFLOP per CPU-second = {ratio:0.000} of the FMA loop"));
            context.Ratio($"train_cpu_vs_fma_peak_{name}", ratio);
        }
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
