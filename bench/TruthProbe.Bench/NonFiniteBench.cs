using System.Diagnostics;
using TruthProbe.Model;

namespace TruthProbe.Bench;

/// <summary>
/// What the NaN/Inf check of the weights costs: <see cref="FiniteWeights.Require"/> (run once, at a model's first
/// forward) on a random bf16 model with Qwen2.5-0.5B shapes, against one decode step of the same model, which also
/// streams every weight once. Ratio = decode step / scan: above 1 the whole check costs less than one generated token.
/// </summary>
public sealed class NonFiniteBench : IBenchmark
{
    public string Name => "nonfinite";

    public void Run(BenchContext context)
    {
        var log = context.Log;
        var config = EngineBenchmark.QwenHalfBShape(context.Quick ? 4 : 24);
        string folder = BenchTemp.Create("truthprobe-bench-nonfinite-");
        try
        {
            RandomModel.WriteHf(folder, config, seed: 3, WeightDType.BF16);
            using var model = Transformer.Load(folder);
            long bytes = model.Weights.Matrices().Sum(m => m.ByteLength);
            var state = model.NewState();
            int[] prompt = Enumerable.Range(0, 16).Select(i => (i * 7919) % config.Vocab).ToArray();
            var logits = model.Forward(state, prompt); // pages the weights in, JIT; includes the first scan
            var scans = new List<double>();
            var decodes = new List<double>();
            int[] one = [Generator.ArgMax(logits)];
            for (int i = 0; i < 5; i++)
            {
                var sw = Stopwatch.StartNew();
                FiniteWeights.Require(model.Config, model.Weights, folder);
                scans.Add(sw.Elapsed.TotalSeconds);
                sw.Restart();
                one[0] = Generator.ArgMax(model.Forward(state, one));
                decodes.Add(sw.Elapsed.TotalSeconds);
            }
            double scan = scans.Order().ElementAt(2), decode = decodes.Order().ElementAt(2);
            log.WriteLine($"non-finite scan of {bytes / 1e6:0} MB of bf16 weights ({config.Layers} layers): {scan * 1e3:0.0} ms = {bytes / scan / 1e9:0.0} GB/s; one decode step {decode * 1e3:0.0} ms (medians of 5)");
            context.Ratio("nonfinite_scan_vs_decode_step", decode / scan);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
