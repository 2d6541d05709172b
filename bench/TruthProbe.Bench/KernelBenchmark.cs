using System.Diagnostics;
using TruthProbe.Model;

namespace TruthProbe.Bench;

/// <summary>
/// Activation collection (300-token rows capturing hook_z at the last token of every layer) against plain
/// prefill of the same rows (the GEMM against the FMA peak is <see cref="GemmBenchmark"/>).
/// </summary>
public sealed unsafe class KernelBenchmark : IBenchmark
{
    public string Name => "kernels";

    public void Run(BenchContext context)
    {
        ScoringVersusPrefill(context);
    }

    private static void ScoringVersusPrefill(BenchContext context)
    {
        var log = context.Log;
        var config = EngineBenchmark.QwenHalfBShape(context.Quick ? 4 : 24);
        const int RowTokens = 300;
        int rows = context.Quick ? 3 : 8;
        string folder = BenchTemp.Create("truthprobe-bench-scoring-");
        try
        {
            RandomModel.WriteHf(folder, config, seed: 2, WeightDType.BF16);
            using var model = Transformer.Load(folder);
            var state = model.NewState();
            var capture = new ActivationCapture(config, ["blocks.*.attn.hook_z"], positions: [-1]);
            int[] ids = new int[RowTokens];
            model.Forward(state, ids.AsSpan(0, 16), capture); // warm-up: JIT, page-in
            double plain = 0, scoring = 0;
            for (int row = 0; row < rows; row++)
            {
                for (int i = 0; i < RowTokens; i++) ids[i] = (row * 7919 + i * 104729) % config.Vocab;
                // Interleaved, so drifting load on the machine hits both alike.
                state.Reset();
                var sw = Stopwatch.StartNew();
                model.Forward(state, ids);
                plain += sw.Elapsed.TotalSeconds;
                state.Reset();
                sw.Restart();
                model.Forward(state, ids, capture);
                scoring += sw.Elapsed.TotalSeconds;
                if (capture[HookNames.Name(HookKind.Z, config.Layers - 1)].Data.Length != config.QDim)
                    throw new InvalidOperationException("hook_z capture has the wrong size");
            }
            log.WriteLine($"{config.Layers}-layer 0.5B shape, {rows} rows of {RowTokens} tokens: prefill {rows * RowTokens / plain:0.0} tok/s; " +
                $"scoring with hook_z at the last token {rows / scoring:0.00} rows/s vs {rows / plain:0.00} rows/s plain");
            context.Ratio("scoring_vs_prefill", plain / scoring);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
