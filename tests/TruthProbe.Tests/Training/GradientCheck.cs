namespace TruthProbe.Tests.Training;

/// <summary>
/// Central finite differences of a scalar function of one float array, compared with an analytic
/// gradient. fp32 forwards limit the precision, so the loss is summed in double and the step is 1e-2
/// (a wrong sign or a missing term gives errors of order 1, far beyond the tolerance).
/// </summary>
internal static class GradientCheck
{
    /// <param name="offset">first entry checked (with <paramref name="length"/>: one tensor of a flat parameter array).</param>
    public static void Assert(string what, float[] input, float[] analytic, Func<double> loss, int maxChecks = 60, double eps = 1e-2, double tolerance = 2e-2, int offset = 0, int length = -1)
    {
        var rng = new Random(7);
        if (length < 0) length = input.Length - offset;
        int checks = Math.Min(maxChecks, length);
        double scale = Math.Max(1e-3, analytic.AsSpan(offset, length).ToArray().Max(Math.Abs));
        for (int c = 0; c < checks; c++)
        {
            int i = offset + (length <= maxChecks ? c : rng.Next(length));
            float saved = input[i];
            input[i] = saved + (float)eps;
            double up = loss();
            input[i] = saved - (float)eps;
            double down = loss();
            input[i] = saved;
            double numeric = (up - down) / (2 * eps);
            double error = Math.Abs(numeric - analytic[i]);
            if (!(error <= tolerance * Math.Max(scale, Math.Abs(numeric)))) // also fails on NaN
                Xunit.Assert.Fail($"{what}[{i}]: analytic {analytic[i]:G6} vs finite difference {numeric:G6} (largest gradient {scale:G4})");
        }
    }

    public static float[] Random(int length, int seed, double std = 1)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => (float)(std * (rng.NextDouble() * 2 - 1) * 1.7)).ToArray();
    }

    /// <summary>Σ y⊙r in double: a scalar whose gradient with respect to y is r.</summary>
    public static double Project(ReadOnlySpan<float> y, float[] r)
    {
        double s = 0;
        for (int i = 0; i < y.Length; i++) s += (double)y[i] * r[i];
        return s;
    }
}
