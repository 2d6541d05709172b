using TruthProbe.Numerics;
using TruthProbe.Probing;

namespace TruthProbe.Tests.Probing;

public class CholeskyTests
{
    /// <summary>
    /// A = B'B + n I at a size spanning several 16-row blocks and a ragged last vector: U'U rebuilds A in
    /// float64 (computed here from U), U x = the triangular solve recovers a chosen x at every width, and U is bit-identical at
    /// every vector width (each element is one FMA chain in the same order). Non-positive-definite is refused.
    /// </summary>
    [Fact]
    public void Factor_RebuildsTheMatrix_SolvesAndIsBitIdenticalAtEveryWidth()
    {
        const int n = 53;
        int stride = Cholesky.Stride(n);
        var rng = new Random(11);
        var b = new double[n * n];
        for (int i = 0; i < b.Length; i++) b[i] = rng.NextDouble() * 2 - 1;
        var a = new double[n * stride];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = i == j ? n : 0;
                for (int k = 0; k < n; k++) s += b[k * n + i] * b[k * n + j];
                a[i * stride + j] = s;
            }
        double[] Factor(SimdPath path)
        {
            SimdWidth.Forced = path;
            try
            {
                var u = (double[])a.Clone();
                Assert.True(Cholesky.Factor(u, n, stride));
                return u;
            }
            finally { SimdWidth.Forced = SimdPath.Auto; }
        }
        var wide = Factor(SimdPath.Vector512);
        for (int i = 0; i < n; i++)
            for (int j = i; j < n; j++)
            {
                double s = 0;
                for (int k = 0; k <= i; k++) s += wide[k * stride + i] * wide[k * stride + j];
                Assert.True(Math.Abs(s - a[i * stride + j]) < 1e-10 * n, $"(U'U)[{i}, {j}] = {s}, A {a[i * stride + j]}");
            }
        var x = Enumerable.Range(0, n).Select(i => Math.Sin(i + 1)).ToArray();
        var rhs = Enumerable.Range(0, n).Select(i => Enumerable.Range(0, n).Sum(j => a[Math.Min(i, j) * stride + Math.Max(i, j)] * x[j])).ToArray();
        foreach (var path in Widths)
        {
            var solved = SolvedAt(path, wide, n, stride, rhs);
            for (int i = 0; i < n; i++) Assert.True(Math.Abs(solved[i] - x[i]) < 1e-10, $"{path}: x[{i}] = {solved[i]}, expected {x[i]}");
        }
        long[] Upper(double[] u) => Enumerable.Range(0, n).SelectMany(i => Enumerable.Range(i, n - i).Select(j => BitConverter.DoubleToInt64Bits(u[i * stride + j]))).ToArray();
        Assert.Equal(Upper(wide), Upper(Factor(SimdPath.Vector256)));
        Assert.Equal(Upper(wide), Upper(Factor(SimdPath.Generic)));
        var indefinite = (double[])a.Clone();
        indefinite[40 * stride + 40] = -1;
        Assert.False(Cholesky.Factor(indefinite, n, stride));
    }
    /// <summary>
    /// The solve's blocks of four rows at sizes that leave a partial last block, a lone row, and columns past the
    /// last whole vector at every width: x is recovered from A x to float64 rounding at each width; a right-hand
    /// side shorter than n is refused.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(6)]
    [InlineData(13)]
    [InlineData(130)]
    public void Solve_RecoversX_AtAwkwardSizes_AtEveryWidth(int n)
    {
        int stride = Cholesky.Stride(n);
        var rng = new Random(n);
        var a = new double[n * stride];
        for (int i = 0; i < n; i++)
            for (int j = i; j < n; j++) a[i * stride + j] = i == j ? n + rng.NextDouble() : rng.NextDouble() * 2 - 1;
        var sym = (double[])a.Clone();
        Assert.True(Cholesky.Factor(a, n, stride));
        var x = Enumerable.Range(0, n).Select(i => Math.Cos(3 * i + 1)).ToArray();
        var rhs = Enumerable.Range(0, n).Select(i => Enumerable.Range(0, n).Sum(j => sym[Math.Min(i, j) * stride + Math.Max(i, j)] * x[j])).ToArray();
        foreach (var path in Widths)
        {
            var solved = SolvedAt(path, a, n, stride, rhs);
            for (int i = 0; i < n; i++) Assert.True(Math.Abs(solved[i] - x[i]) < 1e-12 * n, $"{path} n {n}: x[{i}] = {solved[i]}, expected {x[i]}");
        }
        Assert.Throws<ArgumentException>(() => Cholesky.Solve(a, n, stride, new double[n - 1]));
    }

    private static readonly SimdPath[] Widths = [SimdPath.Vector512, SimdPath.Vector256, SimdPath.Generic];

    private static double[] SolvedAt(SimdPath path, double[] u, int n, int stride, double[] rhs)
    {
        var solved = (double[])rhs.Clone();
        SimdWidth.Forced = path;
        try { Cholesky.Solve(u, n, stride, solved); }
        finally { SimdWidth.Forced = SimdPath.Auto; }
        return solved;
    }
}
