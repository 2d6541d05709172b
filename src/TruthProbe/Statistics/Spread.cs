namespace TruthProbe.Statistics;

/// <summary>Summaries of a small sample, such as one head's accuracy on each cross-validation fold.</summary>
public static class Spread
{
    /// <summary>Mean and sample standard deviation (n - 1 denominator, numpy's ddof=1); SD is NaN below two values.</summary>
    public static (double Mean, double StdDev) MeanStdDev(ReadOnlySpan<double> values)
    {
        int n = values.Length;
        if (n == 0) return (double.NaN, double.NaN);
        double mean = 0;
        foreach (double v in values) mean += v;
        mean /= n;
        if (n < 2) return (mean, double.NaN);
        double squares = 0;
        foreach (double v in values) squares += (v - mean) * (v - mean);
        return (mean, Math.Sqrt(squares / (n - 1)));
    }

    /// <summary>
    /// The q-quantile (0..1) of <paramref name="sorted"/> (ascending) by linear interpolation between the
    /// closest ranks: numpy.percentile's default ("linear", position q (n - 1)).
    /// </summary>
    public static double Quantile(ReadOnlySpan<double> sorted, double q)
    {
        if (sorted.Length == 0) return double.NaN;
        if (!(q >= 0 && q <= 1)) throw new ArgumentOutOfRangeException(nameof(q), $"quantile must be in [0, 1], got {q}");
        double position = q * (sorted.Length - 1);
        int below = (int)Math.Floor(position);
        if (below >= sorted.Length - 1) return sorted[^1];
        double fraction = position - below;
        return sorted[below] + fraction * (sorted[below + 1] - sorted[below]);
    }
}
