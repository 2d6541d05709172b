using TruthProbe.Numerics;
using TruthProbe.Probing;

namespace TruthProbe.Tests.Probing;

public class SolverTests
{
    /// <summary>n rows of d features with a planted direction, as a head's training rows (not standardised, offset and scaled).</summary>
    private static (float[] X, byte[] Y) Data(int n, int d, double strength, int seed)
    {
        var set = SyntheticActivations.Planted(n, 1, 1, d, [strength], seed);
        var x = set.Values.Select((v, i) => v * (1 + i % d) + 3f).ToArray(); // uneven scales and a mean shift
        return (x, set.Labels);
    }

    /// <summary>
    /// The gradient of the documented objective, computed here from scratch in float64: standardise with the
    /// rows' mean and population sd, map the raw weights into that space, sum the logistic residuals.
    /// </summary>
    private static double GradientNorm(float[] x, byte[] y, int d, float[] w, float b)
    {
        int n = y.Length;
        var mean = new double[d];
        var sd = new double[d];
        for (int j = 0; j < d; j++)
        {
            for (int i = 0; i < n; i++) mean[j] += x[i * d + j];
            mean[j] /= n;
            for (int i = 0; i < n; i++) sd[j] += Math.Pow(x[i * d + j] - mean[j], 2);
            sd[j] = Math.Sqrt(sd[j] / n);
        }
        var theta = new double[d + 1];
        theta[d] = b;
        for (int j = 0; j < d; j++) { theta[j] = w[j] * sd[j]; theta[d] += w[j] * mean[j]; }
        var g = new double[d + 1];
        for (int i = 0; i < n; i++)
        {
            double m = theta[d];
            for (int j = 0; j < d; j++) m += theta[j] * (x[i * d + j] - mean[j]) / sd[j];
            double r = (1 / (1 + Math.Exp(-m)) - y[i]) / n;
            for (int j = 0; j < d; j++) g[j] += r * (x[i * d + j] - mean[j]) / sd[j];
            g[d] += r;
        }
        for (int j = 0; j < d; j++) g[j] += ExactLogistic.L2 * theta[j];
        return Math.Sqrt(g.Sum(v => v * v));
    }

    [Theory]
    [InlineData(0.0)]   // no signal
    [InlineData(1.0)]
    [InlineData(4.0)]   // nearly separable: only the L2 term keeps the optimum finite
    public void Exact_WeightsSatisfyTheOptimalityCondition_GradientNormBelow1e6(double strength)
    {
        const int n = 300, d = 24;
        var (x, y) = Data(n, d, strength, seed: 5);
        var solver = new ExactLogistic(n, d);
        var w = new float[d];
        var report = solver.Fit(x, y, w, out float b);
        Assert.True(report.GradientNorm < 1e-9, $"solver's own gradient norm {report.GradientNorm}");
        // Independent check; float32 weights limit it to ~1e-7 relative.
        double g = GradientNorm(x, y, d, w, b);
        Assert.True(g < 1e-6, $"gradient norm {g:0.0e0} at the returned weights");
        Assert.InRange(report.Iterations, 1, 30);
    }

    /// <summary>
    /// The Hessian's weighted Gram runs at the CPU's vector width: at each width it must equal the float64 sum over rows
    /// (to float accuracy) and, since every element sums the same products in the same order, the other widths bit for
    /// bit. 71 columns end inside a vector at every width and leave 1 or 2 vectors after the 3-vector tiles; 37 rows a
    /// partial row block.
    /// </summary>
    [Fact]
    public void WeightedGram_MatchesFloat64_AndIsBitIdenticalAtEveryWidth()
    {
        const int n = 37, rows = 71, stride = 96;
        var rng = new Random(5);
        var z = new float[n * stride];
        var scaled = new float[n * stride];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < rows; c++)
            {
                z[i * stride + c] = (float)(rng.NextDouble() * 2 - 1);
                scaled[i * stride + c] = (float)(rng.NextDouble() * 2 - 1);
            }
        float[] Gram(SimdPath path)
        {
            SimdWidth.Forced = path;
            try
            {
                var gram = new float[stride * stride];
                ExactLogistic.WeightedGram(z, scaled, n, stride, rows, gram);
                return gram;
            }
            finally { SimdWidth.Forced = SimdPath.Auto; }
        }
        var wide = Gram(SimdPath.Vector512);
        for (int j = 0; j < rows; j++)
            for (int k = j; k < rows; k++)
            {
                double expected = 0;
                for (int i = 0; i < n; i++) expected += (double)scaled[i * stride + j] * z[i * stride + k];
                Assert.True(Math.Abs(wide[j * stride + k] - expected) < 1e-5, $"gram[{j}, {k}] = {wide[j * stride + k]}, float64 {expected}");
            }
        // Only the upper triangle is defined: how far a tile reaches below it depends on the width.
        int[] Bits(float[] v) => Enumerable.Range(0, rows).SelectMany(j => Enumerable.Range(j, rows - j).Select(k => BitConverter.SingleToInt32Bits(v[j * stride + k]))).ToArray();
        Assert.Equal(Bits(wide), Bits(Gram(SimdPath.Vector256)));
        Assert.Equal(Bits(wide), Bits(Gram(SimdPath.Generic)));
    }

    /// <summary>
    /// The float64 row products of the Newton steps at every width, against sums written out here: 7 columns (less than
    /// one vector at every width) and 37 (a partial vector after whole ones), 1, 6 and 11 rows (partial blocks of four).
    /// </summary>
    [Theory]
    [InlineData(SimdPath.Vector512)]
    [InlineData(SimdPath.Vector256)]
    [InlineData(SimdPath.Generic)]
    public void RowProducts_MatchSumsWrittenOut_AtAwkwardSizes(SimdPath path)
    {
        var rng = new Random(3);
        double Next() => rng.NextDouble() * 2 - 1;
        foreach (int d in new[] { 7, 37 })
            foreach (int n in new[] { 1, 6, 11 })
            {
                double[] z = [.. Enumerable.Range(0, n * d).Select(_ => Next())];
                double[] v = [.. Enumerable.Range(0, d).Select(_ => Next())], u = [.. Enumerable.Range(0, n).Select(_ => Next())];
                double[] start = [.. Enumerable.Range(0, d).Select(_ => Next())];
                double bias = Next();
                double Dot(int i) => Enumerable.Range(0, d).Sum(k => z[i * d + k] * v[k]) + bias;
                var margins = new double[n];
                double[] weighted = [.. start];
                double weightSum;
                SimdWidth.Forced = path;
                try
                {
                    RowProducts.Margins(z, n, d, v, bias, margins);
                    weightSum = RowProducts.AddWeightedRows(z, n, d, u, weighted);
                }
                finally { SimdWidth.Forced = SimdPath.Auto; }
                for (int i = 0; i < n; i++) Assert.Equal(Dot(i), margins[i], 1e-13);
                Assert.Equal(u.Sum(), weightSum, 1e-13);
                for (int k = 0; k < d; k++)
                    Assert.Equal(start[k] + Enumerable.Range(0, n).Sum(i => u[i] * z[i * d + k]), weighted[k], 1e-13);
            }
    }

    /// <summary>
    /// The float32 Hessian-times-vector at every width against float64 sums written out: rows of 7 and 37 features plus
    /// the constant 1, padded with zeros to 16 and 48 (one and three vectors on AVX-512), 1, 6 and 11 rows (partial
    /// blocks of four). Products of numbers in [-1, 1] over at most 11 rows: within 1e-5 of the float64 sums.
    /// </summary>
    [Theory]
    [InlineData(SimdPath.Vector512)]
    [InlineData(SimdPath.Vector256)]
    [InlineData(SimdPath.Generic)]
    public void HessianTimes_InFloat32_MatchesFloat64SumsWrittenOut_AtAwkwardSizes(SimdPath path)
    {
        var rng = new Random(5);
        float Next() => (float)(rng.NextDouble() * 2 - 1);
        foreach (int d in new[] { 7, 37 })
            foreach (int n in new[] { 1, 6, 11 })
            {
                int stride = (d + 1 + 15) / 16 * 16;
                var z = new float[n * stride];
                for (int i = 0; i < n; i++)
                {
                    for (int k = 0; k < d; k++) z[i * stride + k] = Next();
                    z[i * stride + d] = 1;
                }
                var v = new float[stride];
                for (int k = 0; k <= d; k++) v[k] = Next();
                float[] w = [.. Enumerable.Range(0, n).Select(_ => Next())];
                var product = Enumerable.Repeat(float.NaN, stride).ToArray(); // overwritten, not added to
                SimdWidth.Forced = path;
                try { RowProducts.HessianTimes(z, n, stride, w, v, product); }
                finally { SimdWidth.Forced = SimdPath.Auto; }
                double Dot(int i) => Enumerable.Range(0, stride).Sum(k => (double)z[i * stride + k] * v[k]);
                for (int k = 0; k < stride; k++)
                    Assert.Equal(Enumerable.Range(0, n).Sum(i => w[i] * Dot(i) * z[i * stride + k]), product[k], 1e-5);
            }
    }

    /// <summary>
    /// A head's folds in a row on one solver, as the prober runs them: after the first fit each starts from the last
    /// optimum (or, after an all-rows fit and <see cref="ExactLogistic.HoldWarmStart"/>, from the all-rows optimum) and
    /// preconditions its Newton steps with the last fit's factor. Every fit must still reach the documented optimum
    /// (the gradient written out above), at every width and at an awkward size (d 37, 131 rows).
    /// </summary>
    [Theory]
    [InlineData(SimdPath.Vector512, false)]
    [InlineData(SimdPath.Vector256, false)]
    [InlineData(SimdPath.Generic, false)]
    [InlineData(SimdPath.Vector512, true)]
    [InlineData(SimdPath.Vector256, true)]
    [InlineData(SimdPath.Generic, true)]
    public void Exact_FoldsWithTheLastFactor_ReachTheOptimum_AtEveryWidth(SimdPath path, bool fromAllRows)
    {
        const int rows = 131, d = 37;
        var (x, y) = Data(rows, d, 1.2, seed: 9);
        var folds = Folds.Shuffled(rows, 5, 4);
        var solver = new ExactLogistic(rows, d);
        SimdWidth.Forced = path;
        try
        {
            if (fromAllRows)
            {
                var all = new float[d];
                Assert.True(solver.Fit(x, y, all, out float allBias).GradientNorm < 1e-9);
                Assert.True(GradientNorm(x, y, d, all, allBias) < 1e-6);
                solver.HoldWarmStart();
            }
            for (int f = 0; f < folds.Count; f++)
            {
                int[] train = folds.Train[f];
                float[] xs = [.. train.SelectMany(i => x.Skip(i * d).Take(d))];
                byte[] ys = [.. train.Select(i => y[i])];
                var w = new float[d];
                var report = solver.Fit(xs, ys, w, out float b);
                Assert.True(report.GradientNorm < 1e-9, $"fold {f}: solver's own gradient norm {report.GradientNorm}");
                double g = GradientNorm(xs, ys, d, w, b);
                Assert.True(g < 1e-6, $"fold {f}: gradient norm {g:0.0e0} at the returned weights");
            }
        }
        finally { SimdWidth.Forced = SimdPath.Auto; }
    }

    [Fact]
    public void Exact_WarmStartAndColdStart_ReachTheSameOptimum()
    {
        const int n = 200, d = 16;
        var (x1, y1) = Data(n, d, 1.5, seed: 1);
        var (x2, y2) = Data(n, d, 1.5, seed: 2);
        var solver = new ExactLogistic(n, d);
        var warm = new float[d];
        solver.Fit(x1, y1, warm, out _);
        solver.Fit(x2, y2, warm, out float bWarm);
        var cold = new float[d];
        solver.ResetWarmStart();
        solver.Fit(x2, y2, cold, out float bCold);
        for (int j = 0; j < d; j++) Assert.Equal(cold[j], warm[j], 1e-5 * (1 + Math.Abs(cold[j])));
        Assert.Equal(bCold, bWarm, 1e-4);
    }

    [Fact]
    public void Reference_FirstTwoSteps_MatchAdamWWrittenOutByHand()
    {
        // n = 3 rows, d = 2, one batch per epoch, loss averaged over 4 heads as in an L*H = 4 model.
        float[] x = [1f, 2f, -1f, 0.5f, 3f, -2f];
        byte[] y = [1, 0, 1];
        const int heads = 4;
        double lr = 1e-2, wd = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
        var p = new double[3];          // w0, w1, b
        var m = new double[3];
        var v = new double[3];
        for (int t = 1; t <= 2; t++)
        {
            var g = new double[3];
            for (int i = 0; i < 3; i++)
            {
                double logit = p[0] * x[2 * i] + p[1] * x[2 * i + 1] + p[2];
                double r = (1 / (1 + Math.Exp(-logit)) - y[i]) / (3.0 * heads);
                g[0] += r * x[2 * i]; g[1] += r * x[2 * i + 1]; g[2] += r;
            }
            for (int k = 0; k < 3; k++)
            {
                p[k] *= 1 - lr * wd;
                m[k] = b1 * m[k] + (1 - b1) * g[k];
                v[k] = b2 * v[k] + (1 - b2) * g[k] * g[k];
                double mHat = m[k] / (1 - Math.Pow(b1, t));
                double vHat = v[k] / (1 - Math.Pow(b2, t));
                p[k] -= lr * mHat / (Math.Sqrt(vHat) + eps);
            }
            var solver = new ReferenceLogistic(2, heads, epochs: t);
            var w = new float[2];
            solver.Fit(x, y, w, out float bias);
            Assert.Equal(p[0], w[0], 1e-6);
            Assert.Equal(p[1], w[1], 1e-6);
            Assert.Equal(p[2], bias, 1e-6);
        }
    }
}
