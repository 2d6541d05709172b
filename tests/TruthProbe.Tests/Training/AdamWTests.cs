using TruthProbe.Lab;
using TruthProbe.Model;
using TruthProbe.Numerics;
using TruthProbe.Training;

namespace TruthProbe.Tests.Training;

public class AdamWTests
{
    /// <summary>
    /// Gradient clipping and three AdamW steps against the paper's formulas evaluated in double, at every vector
    /// width, on tensors whose lengths are not multiples of a vector (35, 3): decay on the matrix only, the
    /// frozen tensor untouched and left out of the norm, the clipping applied by the step.
    /// </summary>
    [Theory]
    [MemberData(nameof(Widths.Every), MemberType = typeof(Widths))]
    public void ClipAndSteps_MatchTheFormulasInDouble(SimdPath path)
    {
        using var width = Widths.Use(path);
        var p = new ParameterSet();
        p.Add("matrix", [5, 7]);
        p.Add("frozen", [4], trainable: false);
        p.Add("gain", [3]);
        GradientCheck.Random(p.Values.Length, 1).CopyTo(p.Values, 0);
        var frozen = p.Value("frozen").ToArray();
        const double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, decay = 0.1, lr = 0.01, maxNorm = 1;
        var optimizer = new AdamW(p, beta1, beta2, eps, decay);
        int n = p.Values.Length;
        double[] w = p.Values.Select(x => (double)x).ToArray(), m = new double[n], v = new double[n];
        bool Trainable(int i) => i < 35 || i >= 39;
        for (int t = 1; t <= 3; t++)
        {
            var raw = GradientCheck.Random(n, 10 + t, 3); // norm above maxNorm: clipping scales
            raw.CopyTo(p.Grads, 0);
            double norm = Math.Sqrt(Enumerable.Range(0, n).Where(Trainable).Sum(i => (double)raw[i] * raw[i]));
            Assert.Equal(norm, optimizer.ClipGradients(maxNorm), 1e-9 * norm);
            Assert.Equal(raw, p.Grads); // the step scales them, in its own pass
            var g = raw.Select(x => x * maxNorm / norm).ToArray();
            optimizer.Step(lr);
            for (int i = 0; i < n; i++)
            {
                if (!Trainable(i)) continue;
                m[i] = beta1 * m[i] + (1 - beta1) * g[i];
                v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
                double mHat = m[i] / (1 - Math.Pow(beta1, t)), vHat = v[i] / (1 - Math.Pow(beta2, t));
                w[i] = w[i] * (i < 35 ? 1 - lr * decay : 1) - lr * mHat / (Math.Sqrt(vHat) + eps);
            }
        }
        for (int i = 0; i < n; i++)
            if (Trainable(i)) Assert.True(Math.Abs(p.Values[i] - w[i]) < 1e-5, $"value {i}: {p.Values[i]} vs {w[i]}");
        Assert.Equal(frozen, p.Value("frozen").ToArray());
    }
}
