using System.Runtime.Intrinsics;
using TruthProbe.Numerics;
using TruthProbe.Training;

namespace TruthProbe.Tests.Training;

/// <summary>
/// The lab's causal grouped-query attention, forward and all three input gradients, against float64 written here
/// from the formulas: per sequence and query head h (kv head h / (H/Hkv)), S = q·kᵀ/√hd over keys u ≤ t,
/// P = softmax(S), z = P·v; dP = dz·vᵀ, dS = P⊙(dP − Σ_u dP⊙P), dq = dS·k/√hd, dk = dSᵀ·q/√hd, dv = Pᵀ·dz.
/// </summary>
public class AttentionReferenceTests
{
    public static IEnumerable<object[]> Cases => Widths.Each(
        // Packed, GQA (two query heads a kv head), lengths 1, 7 and 33 around the vector-wide query blocks.
        [4, 2, 16, new[] { 1, 7, 33 }, true],
        // Unpacked, every query head its own kv head, a head width that is no whole vector.
        [3, 3, 5, new[] { 19, 19 }, false],
        // Unpacked, four query heads on one kv head.
        [4, 1, 8, new[] { 7, 7, 7 }, false]);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Attention_MatchesFloat64Formula(SimdPath path, int heads, int kvHeads, int headDim, int[] lengths, bool packed)
    {
        using var width = Widths.Use(path);
        var starts = new int[lengths.Length + 1];
        for (int b = 0; b < lengths.Length; b++) starts[b + 1] = starts[b] + lengths[b];
        int n = starts[^1], seqLen = lengths.Max(), qw = heads * headDim, kw = kvHeads * headDim;
        var q = GradientCheck.Random(n * qw, 11);
        var k = GradientCheck.Random(n * kw, 12);
        var v = GradientCheck.Random(n * kw, 13);
        var dz = GradientCheck.Random(n * qw, 14);
        ReadOnlySpan<int> packing = packed ? starts : default;
        var probs = new float[Ops.AttentionProbsLength(lengths.Length, seqLen, heads, packing)];
        var z = new float[n * qw];
        float[] dq = new float[n * qw], dk = new float[n * kw], dv = new float[n * kw];
        Ops.AttentionForward(q, k, v, z, probs, lengths.Length, seqLen, heads, kvHeads, headDim, packing);
        Ops.AttentionBackward(dz, q, k, v, probs, dq, dk, dv, lengths.Length, seqLen, heads, kvHeads, headDim, packing);

        var (zRef, dqRef, dkRef, dvRef) = Reference(q, k, v, dz, starts, heads, kvHeads, headDim);
        AssertClose(zRef, z, "z");
        AssertClose(dqRef, dq, "dq");
        AssertClose(dkRef, dk, "dk");
        AssertClose(dvRef, dv, "dv");
    }

    private static (double[] Z, double[] Dq, double[] Dk, double[] Dv) Reference(float[] q, float[] k, float[] v, float[] dz, int[] starts,
        int heads, int kvHeads, int hd)
    {
        int qw = heads * hd, kw = kvHeads * hd, n = starts[^1];
        double scale = 1 / Math.Sqrt(hd);
        double[] z = new double[n * qw], dq = new double[n * qw], dk = new double[n * kw], dv = new double[n * kw];
        for (int b = 0; b + 1 < starts.Length; b++)
        {
            int s0 = starts[b], T = starts[b + 1] - s0;
            for (int h = 0; h < heads; h++)
            {
                int g = h / (heads / kvHeads);
                double Q(int t, int c) => q[(s0 + t) * qw + h * hd + c];
                double K(int u, int c) => k[(s0 + u) * kw + g * hd + c];
                double V(int u, int c) => v[(s0 + u) * kw + g * hd + c];
                double Dz(int t, int c) => dz[(s0 + t) * qw + h * hd + c];
                for (int t = 0; t < T; t++)
                {
                    var p = new double[t + 1];
                    for (int u = 0; u <= t; u++)
                    {
                        double dot = 0;
                        for (int c = 0; c < hd; c++) dot += Q(t, c) * K(u, c);
                        p[u] = dot * scale;
                    }
                    double max = p.Max(), sum = 0;
                    for (int u = 0; u <= t; u++) sum += p[u] = Math.Exp(p[u] - max);
                    for (int u = 0; u <= t; u++) p[u] /= sum;
                    var dP = new double[t + 1];
                    double rowDot = 0;
                    for (int u = 0; u <= t; u++)
                    {
                        for (int c = 0; c < hd; c++)
                        {
                            z[(s0 + t) * qw + h * hd + c] += p[u] * V(u, c);
                            dP[u] += Dz(t, c) * V(u, c);
                        }
                        rowDot += dP[u] * p[u];
                    }
                    for (int u = 0; u <= t; u++)
                    {
                        double dS = p[u] * (dP[u] - rowDot);
                        for (int c = 0; c < hd; c++)
                        {
                            dq[(s0 + t) * qw + h * hd + c] += scale * dS * K(u, c);
                            dk[(s0 + u) * kw + g * hd + c] += scale * dS * Q(t, c);
                            dv[(s0 + u) * kw + g * hd + c] += p[u] * Dz(t, c);
                        }
                    }
                }
            }
        }
        return (z, dq, dk, dv);
    }

    /// <summary>Every element within 1e-5 of the tensor's largest (float32 sums of up to 33 terms, a 2-ulp exp).</summary>
    private static void AssertClose(double[] expected, float[] actual, string name)
    {
        double tolerance = 1e-5 * expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"{name}[{i}] = {actual[i]}, float64 reference {expected[i]} (tolerance {tolerance:g3})");
    }

    public static IEnumerable<object[]> ExpWidths => [[16], [8], [4]];

    /// <summary>FastExp against Math.Exp over the whole clamped range, at each vector width.</summary>
    [Theory]
    [MemberData(nameof(ExpWidths))]
    public unsafe void FastExp_IsWithinFourUlpOfMathExp(int lanes)
    {
        const int count = 1 << 16;
        var x = new float[count];
        for (int i = 0; i < count; i++) x[i] = -87.3f + 175.6f * i / (count - 1);
        x[0] = 0; x[1] = -0.34657359f; x[2] = 0.34657359f; x[3] = 1e-8f; x[4] = -1e-8f;
        var y = new float[count];
        fixed (float* px = x, py = y)
        {
            for (int i = 0; i < count; i += lanes)
            {
                if (lanes == 16) Vec<Vector512<float>>.Store(FastExp.Exp(Vec<Vector512<float>>.Load(px + i)), py + i);
                else if (lanes == 8) Vec<Vector256<float>>.Store(FastExp.Exp(Vec<Vector256<float>>.Load(px + i)), py + i);
                else Vec<Vector128<float>>.Store(FastExp.Exp(Vec<Vector128<float>>.Load(px + i)), py + i);
            }
        }
        for (int i = 0; i < count; i++)
        {
            double exact = Math.Exp(x[i]);
            Assert.True(Math.Abs(y[i] - exact) <= 4 * exact * Math.Pow(2, -24), $"exp({x[i]:R}) = {y[i]:R}, Math.Exp {exact:R}");
        }
    }

    /// <summary>Outside [−87.3, 88.3] the input is clamped: a tiny positive number far below, a large finite one far above.</summary>
    [Fact]
    public unsafe void FastExp_ClampsToFiniteResults()
    {
        float* x = stackalloc float[8] { -1000, -88, float.NegativeInfinity, 88.3f, 89, 1000, float.PositiveInfinity, 0 };
        float* y = stackalloc float[8];
        Vec<Vector256<float>>.Store(FastExp.Exp(Vec<Vector256<float>>.Load(x)), y);
        for (int i = 0; i < 3; i++) Assert.InRange(y[i], 1e-38f, 1.3e-38f);
        for (int i = 3; i < 7; i++) Assert.InRange(y[i], 2.2e38f, 2.24e38f);
        Assert.Equal(1f, y[7]);
    }
}
