using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Model;

/// <summary>
/// Whole forward passes long enough and wide enough to take the fast kernels' main paths (GEMM over 40 tokens,
/// transposed-key attention: 16+ queries and a head size that is a multiple of 16), against the naive
/// double-precision reference forward; and decoding through the matrix-vector path against the prefill.
/// </summary>
public class FastForwardTests
{
    private static ModelConfig Config(int? window) => new()
    {
        Architecture = window == null ? "qwen2" : "mistral", Layers = 2, DModel = 64, Heads = 4, KvHeads = 2, HeadDim = 32,
        Ffn = 96, Vocab = 70, MaxContext = 128, RopeTheta = 10000f, RmsEps = 1e-6f, TiedEmbeddings = window == null,
        QkvBias = window == null, SlidingWindow = window, BosId = 1, EosIds = [2],
    };

    [Theory]
    [InlineData(null)]
    [InlineData(23)]
    public void Prefill40Tokens_MatchesNaiveReference_AndDecodeMatchesPrefill(int? window)
    {
        using var tmp = new TempDir();
        string folder = TinyModels.Write(tmp, Config(window), WeightDType.BF16);
        int[] tokens = Enumerable.Range(0, 40).Select(i => (i * 37 + 5) % 70).ToArray();
        using var model = Transformer.Load(folder);
        float[] ours = TinyModels.AllLogits(model, tokens);
        double[] reference = ReferenceForward.Logits(folder, tokens).SelectMany(r => r).ToArray();
        double maxDiff = ours.Select((v, i) => Math.Abs(v - reference[i])).Max();
        Assert.True(maxDiff < 1e-5, $"max |ours - reference| = {maxDiff:g3}");
        Assert.True(reference.Select(Math.Abs).Max() > 0.1, "logits too small for the comparison to mean anything");

        // 20 prefilled (transposed-key path), then one at a time (per-key path, matrix-vector products).
        var state = model.NewState();
        model.Forward(state, tokens[..20]);
        int vocab = model.Config.Vocab;
        for (int t = 20; t < tokens.Length; t++)
        {
            double diff = TinyModels.MaxAbsDiff(model.Forward(state, tokens[t..(t + 1)]), ours.AsSpan(t * vocab, vocab));
            Assert.True(diff < 1e-5, $"position {t}: decode differs from prefill by {diff:g3}");
        }
    }

    [Fact]
    public void Prefill_AfterWarmUp_AllocatesNothing()
    {
        using var tmp = new TempDir();
        using var model = Transformer.Load(TinyModels.Write(tmp, Config(null), WeightDType.BF16));
        int[] tokens = Enumerable.Range(0, 40).Select(i => (i * 11 + 3) % 70).ToArray();
        var state = model.NewState();
        for (int i = 0; i < 3; i++) { state.Reset(); model.Forward(state, tokens); } // JIT, buffers, kernel scratch
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 5; i++) { state.Reset(); model.Forward(state, tokens); }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
