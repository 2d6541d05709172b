using TruthProbe.Lab;
using TruthProbe.Model;
using TruthProbe.Numerics;
using TruthProbe.Training;

namespace TruthProbe.Tests.Training;

/// <summary>Every layer's backward against central finite differences of its forward, on tiny shapes, at every vector width.</summary>
public class OpsGradientTests
{
    [Fact]
    public void Embedding_Backward_MatchesFiniteDifferences()
    {
        const int vocab = 5, dim = 4;
        int[] tokens = [3, 1, 3, 0];
        var table = GradientCheck.Random(vocab * dim, 1);
        var r = GradientCheck.Random(tokens.Length * dim, 2);
        var x = new float[tokens.Length * dim];
        double Loss() { Ops.EmbeddingForward(table, tokens, x, dim); return GradientCheck.Project(x, r); }
        var grad = new float[table.Length];
        Ops.EmbeddingBackward(r, tokens, grad, dim);
        GradientCheck.Assert("dTable", table, grad, Loss);
        Assert.All(grad.AsSpan(2 * dim, dim).ToArray(), g => Assert.Equal(0f, g)); // token 2 unused
    }

    [Theory]
    [MemberData(nameof(Widths.Every), MemberType = typeof(Widths))]
    public void RmsNorm_Backward_MatchesFiniteDifferences(SimdPath path)
    {
        using var width = Widths.Use(path);
        const int rows = 3, dim = 8;
        var x = GradientCheck.Random(rows * dim, 3);
        var w = GradientCheck.Random(dim, 4);
        var r = GradientCheck.Random(rows * dim, 5);
        var y = new float[rows * dim];
        var inv = new float[rows];
        double Loss() { Ops.RmsNormForward(x, w, y, inv, dim, 1e-5f); return GradientCheck.Project(y, r); }
        Loss();
        var dx = new float[x.Length];
        var dw = new float[dim];
        Ops.RmsNormBackward(r, x, w, inv, dx, dw, dim);
        GradientCheck.Assert("dx", x, dx, Loss);
        GradientCheck.Assert("dw", w, dw, Loss);
    }

    [Theory]
    [MemberData(nameof(Widths.Every), MemberType = typeof(Widths))]
    public void RmsNorm_Forward_MatchesClosedForm(SimdPath path)
    {
        using var width = Widths.Use(path);
        float[] x = [3, 4], w = [1, 2], y = new float[2], inv = new float[1];
        Ops.RmsNormForward(x, w, y, inv, 2, 0);
        float rms = MathF.Sqrt((9 + 16) / 2f);
        Assert.Equal(3 / rms, y[0], 5);
        Assert.Equal(2 * 4 / rms, y[1], 5);
    }

    [Fact]
    public void Rope_HalfSplitPairsAndBackward_MatchFiniteDifferences()
    {
        const int seqLen = 5, heads = 2, headDim = 8;
        var (cos, sin) = RopeTables.Create(seqLen, headDim, 10000);
        // Half-split convention: at position 1, pair (0, 4) turns by 1 radian (frequency theta^0 = 1).
        var one = new float[heads * headDim * seqLen];
        one[1 * heads * headDim + 0] = 1;
        Ops.Rope(one, seqLen, heads, headDim, cos, sin);
        Assert.Equal(MathF.Cos(1), one[heads * headDim + 0], 5);
        Assert.Equal(MathF.Sin(1), one[heads * headDim + 4], 5);

        var x = GradientCheck.Random(seqLen * heads * headDim * 2, 6); // two sequences
        var r = GradientCheck.Random(x.Length, 7);
        var y = new float[x.Length];
        double Loss() { x.CopyTo(y, 0); Ops.Rope(y, seqLen, heads, headDim, cos, sin); return GradientCheck.Project(y, r); }
        var dx = (float[])r.Clone();
        Ops.Rope(dx, seqLen, heads, headDim, cos, sin, inverse: true);
        GradientCheck.Assert("dx", x, dx, Loss);
    }

    public static IEnumerable<object[]> AttentionShapes() => Widths.Each(
        [4, 4, 4, 5],   // multi-head
        [4, 2, 4, 5],   // grouped-query: two query heads share each kv head
        [4, 1, 4, 5],   // multi-query
        [4, 2, 16, 5],  // head size of the lab models
        [2, 1, 32, 5],
        [2, 1, 3, 6],   // odd head size: the scalar tail of the per-head sums
        [4, 2, 16, 37]); // keys in several vectors (three of 16 on Vector512), and enough work to split over the cores

    [Theory]
    [MemberData(nameof(AttentionShapes))]
    public void Attention_Backward_MatchesFiniteDifferences(SimdPath path, int heads, int kvHeads, int headDim, int seqLen)
    {
        using var width = Widths.Use(path);
        const int batch = 2;
        int n = batch * seqLen;
        var q = GradientCheck.Random(n * heads * headDim, 8);
        var k = GradientCheck.Random(n * kvHeads * headDim, 9);
        var v = GradientCheck.Random(n * kvHeads * headDim, 10);
        var r = GradientCheck.Random(n * heads * headDim, 11);
        var z = new float[q.Length];
        var probs = new float[Ops.AttentionProbsLength(batch, seqLen, heads)];
        double Loss() { Ops.AttentionForward(q, k, v, z, probs, batch, seqLen, heads, kvHeads, headDim); return GradientCheck.Project(z, r); }
        Loss();
        var dq = new float[q.Length];
        var dk = new float[k.Length];
        var dv = new float[v.Length];
        Ops.AttentionBackward(r, q, k, v, probs, dq, dk, dv, batch, seqLen, heads, kvHeads, headDim);
        GradientCheck.Assert("dq", q, dq, Loss);
        GradientCheck.Assert("dk", k, dk, Loss);
        GradientCheck.Assert("dv", v, dv, Loss);
    }

    [Theory]
    [MemberData(nameof(Widths.Every), MemberType = typeof(Widths))]
    public void Attention_IsCausal_FirstPositionCopiesItsOwnValue(SimdPath path)
    {
        using var width = Widths.Use(path);
        const int seqLen = 3, headDim = 2;
        var q = GradientCheck.Random(seqLen * headDim, 12);
        var k = GradientCheck.Random(seqLen * headDim, 13);
        float[] v = [1, 2, 30, 40, 500, 600];
        var z = new float[v.Length];
        Ops.AttentionForward(q, k, v, z, new float[Ops.AttentionProbsLength(1, seqLen, 1)], 1, seqLen, 1, 1, headDim);
        Assert.Equal(1f, z[0], 5);
        Assert.Equal(2f, z[1], 5);
        Assert.InRange(z[2], 1f, 30f); // position 1 mixes values 0 and 1 only
    }

    [Theory]
    [MemberData(nameof(Widths.Every), MemberType = typeof(Widths))]
    public void SwiGlu_Backward_MatchesFiniteDifferences(SimdPath path)
    {
        using var width = Widths.Use(path);
        var gate = GradientCheck.Random(24, 14, 2);
        var up = GradientCheck.Random(24, 15);
        var r = GradientCheck.Random(24, 16);
        var h = new float[24];
        double Loss() { Ops.SwiGluForward(gate, up, h); return GradientCheck.Project(h, r); }
        var dGate = new float[24];
        var dUp = new float[24];
        Ops.SwiGluBackward(r, gate, up, dGate, dUp);
        GradientCheck.Assert("dGate", gate, dGate, Loss);
        GradientCheck.Assert("dUp", up, dUp, Loss);
    }

    [Fact]
    public void CrossEntropy_WithMask_MatchesFiniteDifferencesAndIgnoresMaskedRows()
    {
        const int rows = 4, vocab = 6;
        var logits = GradientCheck.Random(rows * vocab, 17, 2);
        int[] targets = [1, 5, 0, 2];
        float[] weights = [1, 0, 1, 0.5f];
        var d = new float[logits.Length];
        double Loss() => Ops.CrossEntropy(logits, targets, weights, new float[logits.Length], vocab, out _);
        Ops.CrossEntropy(logits, targets, weights, d, vocab, out _);
        GradientCheck.Assert("dLogits", logits, d, Loss);
        Assert.All(d.AsSpan(vocab, vocab).ToArray(), g => Assert.Equal(0f, g));

        // Closed form for one row: uniform logits give log(vocab).
        double uniform = Ops.CrossEntropy(new float[vocab], [3], [1f], new float[vocab], vocab, out _);
        Assert.Equal(Math.Log(vocab), uniform, 5);
    }
}
