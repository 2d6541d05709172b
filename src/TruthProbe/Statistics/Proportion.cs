namespace TruthProbe.Statistics;

/// <summary>A two-sided interval [Low, High]; NaN bounds when it is undefined.</summary>
public readonly record struct Interval(double Low, double High)
{
    public static readonly Interval Undefined = new(double.NaN, double.NaN);
}

/// <summary>Intervals and tests for a proportion k of n.</summary>
public static class Proportion
{
    /// <summary>The standard normal quantile of 0.975: z for a two-sided 95% interval.</summary>
    public const double Z95 = 1.959963984540054;

    /// <summary>
    /// Wilson's score interval (Newcombe 1998, without continuity correction), as scipy's
    /// <c>binomtest(k, n).proportion_ci(method="wilson")</c>: unlike the Wald interval it stays inside [0, 1]
    /// and keeps its coverage at accuracies near 0 or 1 and at the few hundred rows of a probing set.
    /// </summary>
    public static Interval Wilson(int k, int n, double z = Z95)
    {
        if (n <= 0) return Interval.Undefined;
        if (k < 0 || k > n) throw new ArgumentOutOfRangeException(nameof(k), $"k must be in 0..{n}, got {k}");
        double p = k / (double)n, q = 1 - p, denominator = 2 * (n + z * z);
        double centre = (2 * n * p + z * z) / denominator;
        double delta = z / denominator * Math.Sqrt(4 * n * p * q + z * z);
        return new Interval(k == 0 ? 0 : centre - delta, k == n ? 1 : centre + delta);
    }

    /// <summary>
    /// A cross-validated accuracy as a count: every row is validated exactly once, so accuracy * n rows were
    /// right (up to the fold sizes differing by one row, which rounding absorbs).
    /// </summary>
    public static int Correct(double accuracy, int n) => (int)Math.Round(Math.Clamp(accuracy, 0, 1) * n);

    /// <summary>
    /// Exact McNemar test of "A is right more often than B" on paired per-row outcomes (1 = right): of the
    /// discordant rows, A alone is right on b and B alone on c; under the null each goes either way with
    /// probability 1/2, so p = P[Binomial(b + c, 1/2) &gt;= b]. Rows both get right or both get wrong carry no
    /// information about which is better.
    /// </summary>
    public static (int OnlyA, int OnlyB, double PValue) McNemarGreater(ReadOnlySpan<byte> correctA, ReadOnlySpan<byte> correctB)
    {
        if (correctA.Length != correctB.Length)
            throw new ArgumentException($"paired outcomes differ in length: {correctA.Length} vs {correctB.Length}");
        int b = 0, c = 0;
        for (int i = 0; i < correctA.Length; i++)
        {
            if (correctA[i] != 0 && correctB[i] == 0) b++;
            else if (correctA[i] == 0 && correctB[i] != 0) c++;
        }
        return (b, c, Binomial.UpperTail(b + c, b, 0.5));
    }
}
