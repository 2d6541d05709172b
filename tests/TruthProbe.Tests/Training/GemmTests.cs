using TruthProbe.Numerics;
using TruthProbe.Training;

namespace TruthProbe.Tests.Training;

public class GemmTests
{
    private static double[] Naive(float[] a, float[] b, int m, int k, int n, bool transA, bool transB)
    {
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (double)(transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
                c[i * n + j] = s;
            }
        return c;
    }

    public static IEnumerable<object[]> Shapes() => Widths.Each(
        [1, 1, 1],
        [7, 5, 70],    // row and column tails around the 6-row, 2-vector tile
        [64, 33, 128],
        [130, 64, 200], // large enough to run on several threads
        [9, 600, 37],   // k in three depth slices of 256 (weight-gradient shape), odd width
        [13, 40, 23]);  // no count a multiple of a tile or a vector

    [Theory]
    [MemberData(nameof(Shapes))]
    public void AllThreeProducts_MatchNaiveDoubleSums_WithAndWithoutAccumulate(SimdPath path, int m, int k, int n)
    {
        using var width = Widths.Use(path);
        var a = GradientCheck.Random(m * k, 1);
        var b = GradientCheck.Random(k * n, 2);
        var start = GradientCheck.Random(m * n, 3);
        foreach (var (transA, transB) in new[] { (false, false), (true, false), (false, true) })
            foreach (bool accumulate in new[] { false, true })
            {
                var c = (float[])start.Clone();
                if (transA) TrainingGemm.MatMulTransA(a, b, c, m, k, n, accumulate);
                else if (transB) TrainingGemm.MatMulTransB(a, b, c, m, k, n, accumulate);
                else TrainingGemm.MatMul(a, b, c, m, k, n, accumulate);
                var expected = Naive(a, b, m, k, n, transA, transB);
                for (int i = 0; i < c.Length; i++)
                    Assert.True(Math.Abs(expected[i] + (accumulate ? start[i] : 0) - c[i]) < 1e-4 * k,
                        $"transA={transA} transB={transB} accumulate={accumulate} at {i}: {c[i]} vs {expected[i]}");
            }
    }

    /// <summary>
    /// The same bits at every width: Vector512 runs 12-row tiles (a last block of up to 6 rows on the 6-row tile),
    /// Vector256 and Vector128 6-row tiles, and each element is one FMA chain in k order on all of them. m = 7, 9 and 13
    /// leave a 12-row tile partly empty; m = 130 ends its 48-row chunks on 12 + 12 + 10.
    /// </summary>
    [Theory]
    [MemberData(nameof(WidthFreeShapes))]
    public void AllThreeProducts_AreTheSameBitsAtEveryWidth(int m, int k, int n)
    {
        var a = GradientCheck.Random(m * k, 7);
        var b = GradientCheck.Random(k * n, 8);
        var start = GradientCheck.Random(m * n, 9);
        float[] Product(SimdPath path, int kind)
        {
            using var width = Widths.Use(path);
            var c = (float[])start.Clone();
            if (kind == 0) TrainingGemm.MatMul(a, b, c, m, k, n, accumulate: true);
            else if (kind == 1) TrainingGemm.MatMulTransA(a, b, c, m, k, n, accumulate: true);
            else TrainingGemm.MatMulTransB(a, b, c, m, k, n, addend: start);
            return c;
        }
        for (int kind = 0; kind < 3; kind++)
        {
            var reference = Product(SimdPath.Vector256, kind);
            foreach (var path in new[] { SimdPath.Vector512, SimdPath.Generic })
                Assert.Equal(Array.ConvertAll(reference, BitConverter.SingleToInt32Bits), Array.ConvertAll(Product(path, kind), BitConverter.SingleToInt32Bits));
        }
    }

    public static IEnumerable<object[]> WidthFreeShapes() => Shapes().Where(row => (SimdPath)row[0] == SimdPath.Vector512).Select(row => row[1..]);

    /// <summary>
    /// C = A·Bᵀ + D (the residual add folded into the projection) within the float64 reference, and bit-equal to
    /// the product followed by a separate add: the trainer's bytes do not depend on which it does. k = 600 takes
    /// three depth slices, where D must come after the slices' sums.
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void TransB_WithAddend_IsTheProductPlusTheAddend(SimdPath path, int m, int k, int n)
    {
        using var width = Widths.Use(path);
        var a = GradientCheck.Random(m * k, 4);
        var b = GradientCheck.Random(k * n, 5);
        var d = GradientCheck.Random(m * n, 6);
        var fused = new float[m * n];
        TrainingGemm.MatMulTransB(a, b, fused, m, k, n, addend: d);
        var separate = new float[m * n];
        TrainingGemm.MatMulTransB(a, b, separate, m, k, n);
        for (int i = 0; i < separate.Length; i++) separate[i] += d[i];
        var expected = Naive(a, b, m, k, n, transA: false, transB: true);
        for (int i = 0; i < fused.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] + d[i] - fused[i]) < 1e-4 * k, $"at {i}: {fused[i]} vs {expected[i] + d[i]}");
            Assert.Equal(BitConverter.SingleToInt32Bits(separate[i]), BitConverter.SingleToInt32Bits(fused[i]));
        }
    }
}
