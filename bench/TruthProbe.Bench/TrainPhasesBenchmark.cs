using System.Diagnostics;
using System.Globalization;
using TruthProbe.Lab;
using TruthProbe.Model;
using TruthProbe.Training;

namespace TruthProbe.Bench;

/// <summary>
/// Where a lab training step's CPU goes: each kernel of a <c>tiny</c> step (or <c>TRAINPHASES_SIZE</c>) alone on the
/// shapes of a late-curriculum batch, CPU milliseconds per call by the process's clock (best of rounds, so a shared
/// machine's bursts drop out), times its calls per step, and GFLOP per CPU-second over the FMA loop's on one core
/// where the kernel's FLOPs are known. Run it with <c>DOTNET_PROCESSOR_COUNT=1</c> for one core's cost, without for
/// the split over the cores (then CPU time includes the caller's spin while a helper finishes). The parts run on warm
/// buffers, so their sum comes out below the whole step, whose activations outgrow the caches.
/// <c>train_phase_gemms_cpu_vs_fma_peak</c>: the step's products together, FLOPs per CPU-second over the FMA loop's.
/// </summary>
public sealed class TrainPhasesBenchmark : IBenchmark
{
    public string Name => "trainphases";

    public void Run(BenchContext context)
    {
        double perCore = FmaPeak.PerCoreCpuSecond();
        var tokenizer = WordTokenizer.ForWorld();
        string size = Environment.GetEnvironmentVariable("TRAINPHASES_SIZE") ?? "tiny";
        var c = LabModelConfig.ForSize(size, tokenizer.VocabSize, 128, WordTokenizer.BosId, WordTokenizer.EosId);
        var batch = new PretrainRecipe(new Corpus(new SyntheticWorld(1), tokenizer)).Batch(1, 10_000, 10_000, 64);
        int n = batch.Rows, d = c.DModel, L = c.Layers;
        context.Log.WriteLine(Invariant($"{size}: {n} positions, d {d}, q {c.QDim}, kv {c.KvDim}, ffn {c.Ffn}, vocab {c.Vocab}, {L} layers; {Environment.ProcessorCount} threads; FMA loop {perCore / 1e9:0.0} GFLOP per CPU-second"));

        var rng = new Random(1);
        float[] Random(long length) { var a = new float[length]; for (long i = 0; i < length; i++) a[i] = (float)(rng.NextDouble() - 0.5); return a; }
        int widest = Math.Max(Math.Max(c.Ffn, c.Vocab), Math.Max(c.QDim, d));
        float[] x = Random((long)n * widest), y = Random((long)n * widest), z = Random((long)n * widest), w = Random(widest * widest), g = new float[widest * widest];
        float[] q = Random((long)n * c.QDim), k = Random((long)n * c.KvDim), v = Random((long)n * c.KvDim), attn = new float[(long)n * c.QDim];
        float[] dq = new float[(long)n * c.QDim], dk = new float[(long)n * c.KvDim], dv = new float[(long)n * c.KvDim];
        var probs = new float[Ops.AttentionProbsLength(batch.Batch, batch.SeqLen, c.Heads, batch.Starts)];
        float[] norm = Random(d), invRms = new float[n], dNormW = new float[d];
        var (cos, sin) = RopeTables.Create(c.MaxContext, c.HeadDim, c.RopeTheta);
        var model = new TrainableLlama(c);
        model.Initialize(1);
        var optimizer = new AdamW(model.Parameters);

        var rows = new List<(string Name, double Ms, double Gflop, bool Product)>();
        void Phase(string name, int perStep, double flops, Action run, bool product = false)
        {
            for (int i = 0; i < 5; i++) run();
            double best = double.MaxValue;
            for (int round = 0; round < 7; round++)
            {
                int reps = 0;
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                var clock = Stopwatch.StartNew();
                do { run(); reps++; } while (clock.ElapsedMilliseconds < 40);
                best = Math.Min(best, (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds / reps);
            }
            rows.Add((name, best * perStep, flops * perStep / 1e9, product));
        }
        void Gemm(string name, int perStep, int m, int kk, int nn, char kind, bool addend = false) =>
            Phase(Invariant($"{name} {kind} {m}x{kk}x{nn}"), perStep, 2.0 * m * kk * nn, kind switch
            {
                'T' => () => TrainingGemm.MatMulTransB(x.AsSpan(0, m * kk), w.AsSpan(0, nn * kk), y.AsSpan(0, m * nn), m, kk, nn, addend: addend ? z.AsSpan(0, m * nn) : default),
                'A' => () => TrainingGemm.MatMulTransA(x.AsSpan(0, kk * m), y.AsSpan(0, kk * nn), g.AsSpan(0, m * nn), m, kk, nn, accumulate: true),
                _ => () => TrainingGemm.MatMul(x.AsSpan(0, m * kk), w.AsSpan(0, kk * nn), y.AsSpan(0, m * nn), m, kk, nn),
            }, product: true);

        // Forward ('T': x·Wᵀ), backward dW ('A': dYᵀ·X) and dX ('M': dY·W) of every projection.
        foreach (var (name, inputs, outputs, perStep, addend) in new[] { ("q", d, c.QDim, L, false), ("k+v", d, c.KvDim, 2 * L, false), ("o", c.QDim, d, L, true),
                     ("gate+up", d, c.Ffn, 2 * L, false), ("down", c.Ffn, d, L, true), ("head", d, c.Vocab, 1, false) })
        {
            Gemm(name, perStep, n, inputs, outputs, 'T', addend);
            Gemm(name, perStep, outputs, n, inputs, 'A');
            Gemm(name, perStep, n, outputs, inputs, 'M');
        }
        double attentionFlops = 0;
        for (int b = 0; b < batch.Batch; b++) { long t = batch.Length(b); attentionFlops += 4.0 * c.QDim * (t * (t + 1) / 2); }
        Phase("attention forward", L, attentionFlops, () => Ops.AttentionForward(q, k, v, attn, probs, batch.Batch, batch.SeqLen, c.Heads, c.KvHeads, c.HeadDim, batch.Starts));
        Phase("attention backward", L, 2 * attentionFlops, () => Ops.AttentionBackward(attn, q, k, v, probs, dq, dk, dv, batch.Batch, batch.SeqLen, c.Heads, c.KvHeads, c.HeadDim, batch.Starts));
        Phase("RoPE q+k (forward or backward)", 2 * L, 0, () =>
        {
            Ops.Rope(q.AsSpan(0, n * c.QDim), batch.SeqLen, c.Heads, c.HeadDim, cos, sin, starts: batch.Starts);
            Ops.Rope(k.AsSpan(0, n * c.KvDim), batch.SeqLen, c.KvHeads, c.HeadDim, cos, sin, starts: batch.Starts);
        });
        Phase("RMSNorm forward", 2 * L + 1, 0, () => Ops.RmsNormForward(x.AsSpan(0, n * d), norm, y.AsSpan(0, n * d), invRms, d, 1e-5f));
        Phase("RMSNorm backward", 2 * L + 1, 0, () => Ops.RmsNormBackward(z.AsSpan(0, n * d), x.AsSpan(0, n * d), norm, invRms, y.AsSpan(0, n * d), dNormW, d));
        Phase("SwiGLU forward", L, 0, () => Ops.SwiGluForward(x.AsSpan(0, n * c.Ffn), y.AsSpan(0, n * c.Ffn), z.AsSpan(0, n * c.Ffn)));
        float[] dGate = new float[(long)n * c.Ffn], dUp = new float[(long)n * c.Ffn];
        Phase("SwiGLU backward", L, 0, () => Ops.SwiGluBackward(z.AsSpan(0, n * c.Ffn), x.AsSpan(0, n * c.Ffn), y.AsSpan(0, n * c.Ffn), dGate, dUp));
        var targets = batch.Targets;
        Phase("cross-entropy", 1, 0, () => Ops.CrossEntropy(y.AsSpan(0, n * c.Vocab), targets, batch.Weights, z.AsSpan(0, n * c.Vocab), c.Vocab, out _));
        Phase("clip + AdamW", 1, 0, () => { optimizer.ClipGradients(1); optimizer.Step(1e-3); });
        Phase("whole step", 1, 0, () =>
        {
            model.Parameters.ZeroGrads();
            model.Forward(batch, out _, out _);
            model.Backward();
            optimizer.ClipGradients(1);
            optimizer.Step(1e-3);
        });

        double OfPeak(double gflop, double ms) => gflop / (ms / 1e3) / (perCore / 1e9);
        foreach (var (name, ms, gflop, _) in rows)
            context.Log.WriteLine(Invariant($"{name,-36} {ms,8:0.00} ms CPU a step{(gflop > 0 ? $"  {OfPeak(gflop, ms),6:0.000} of the FMA loop" : "")}"));
        var products = rows.Where(r => r.Product).ToList();
        double productMs = products.Sum(r => r.Ms);
        context.Log.WriteLine(Invariant($"sum of the parts {rows.Take(rows.Count - 1).Sum(r => r.Ms):0.0} ms, of which the products {productMs:0.0} ms"));
        context.Ratio("train_phase_gemms_cpu_vs_fma_peak", OfPeak(products.Sum(r => r.Gflop), productMs));
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
