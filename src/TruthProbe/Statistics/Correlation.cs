namespace TruthProbe.Statistics;

/// <summary>
/// Statistics that compare two head maps flattened into paired samples x[i], y[i]. Each returns NaN
/// where it is undefined (fewer than two samples, or a constant sample), never throws on data.
/// </summary>
public static class Correlation
{
    /// <summary>Pearson's r, as numpy.corrcoef computes it (the paper's statistic). Two-pass for accuracy.</summary>
    public static double Pearson(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        CheckPaired(x, y);
        int n = x.Length;
        if (n < 2) return double.NaN;
        double meanX = 0, meanY = 0;
        for (int i = 0; i < n; i++) { meanX += x[i]; meanY += y[i]; }
        meanX /= n;
        meanY /= n;
        double sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < n; i++)
        {
            double dx = x[i] - meanX, dy = y[i] - meanY;
            sxy += dx * dy;
            sxx += dx * dx;
            syy += dy * dy;
        }
        if (sxx == 0 || syy == 0) return double.NaN;
        // Rounding can push |r| a hair past 1 for (anti-)identical samples; the statistic is bounded.
        return Math.Clamp(sxy / Math.Sqrt(sxx * syy), -1.0, 1.0);
    }

    /// <summary>Spearman's rho: Pearson's r of the ranks, tied values sharing their average rank.</summary>
    public static double Spearman(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        CheckPaired(x, y);
        var rankX = new double[x.Length];
        var rankY = new double[y.Length];
        AverageRanks(x, rankX);
        AverageRanks(y, rankY);
        return Pearson(rankX, rankY);
    }

    /// <summary>Ranks 1..n in ascending order; a run of tied values gets the mean of the ranks it spans.</summary>
    public static void AverageRanks(ReadOnlySpan<double> values, Span<double> ranks)
    {
        if (ranks.Length != values.Length) throw new ArgumentException("ranks must have one slot per value", nameof(ranks));
        int n = values.Length;
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        var keys = values.ToArray();
        Array.Sort(keys, order);
        for (int start = 0; start < n;)
        {
            int end = start + 1;
            while (end < n && keys[end] == keys[start]) end++;
            double rank = (start + 1 + end) / 2.0; // mean of ranks start+1 .. end
            for (int k = start; k < end; k++) ranks[order[k]] = rank;
            start = end;
        }
    }

    /// <summary>
    /// Kendall's tau-b: (concordant - discordant) / sqrt((n0 - tiesX) (n0 - tiesY)) over all n0 = n(n-1)/2
    /// pairs, where tiesX counts pairs tied in x (whatever y does) and tiesY likewise. Equals scipy's
    /// kendalltau default. O(n^2), which is a few milliseconds for the 1,024 heads of a 7B model.
    /// </summary>
    public static double KendallTauB(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        CheckPaired(x, y);
        int n = x.Length;
        if (n < 2) return double.NaN;
        long concordant = 0, discordant = 0, tiedX = 0, tiedY = 0;
        for (int i = 0; i < n - 1; i++)
        {
            double xi = x[i], yi = y[i];
            for (int j = i + 1; j < n; j++)
            {
                int sx = Math.Sign(x[j] - xi), sy = Math.Sign(y[j] - yi);
                if (sx == 0) tiedX++;
                if (sy == 0) tiedY++;
                int product = sx * sy;
                if (product > 0) concordant++;
                else if (product < 0) discordant++;
            }
        }
        long pairs = (long)n * (n - 1) / 2;
        double denominator = Math.Sqrt((double)(pairs - tiedX) * (pairs - tiedY));
        return denominator == 0 ? double.NaN : (concordant - discordant) / denominator;
    }

    /// <summary>
    /// |top-k of x ∩ top-k of y| / |union|, where top-k are the indices of the k largest values. Ties at
    /// the k-th place go to the lower index (layer-major order), so the result is deterministic.
    /// </summary>
    public static double TopKJaccard(ReadOnlySpan<double> x, ReadOnlySpan<double> y, int k)
    {
        int common = TopKOverlap(x, y, k);
        return common / (double)(2 * k - common);
    }

    /// <summary>|top-k of x ∩ top-k of y|, with <see cref="TopK"/>'s tie rule.</summary>
    public static int TopKOverlap(ReadOnlySpan<double> x, ReadOnlySpan<double> y, int k)
    {
        CheckPaired(x, y);
        if (k < 1 || k > x.Length) throw new ArgumentOutOfRangeException(nameof(k), $"k must be in 1..{x.Length}, got {k}");
        var inX = TopK(x, k);
        var inY = TopK(y, k);
        int common = 0;
        for (int i = 0; i < inX.Length; i++)
            if (inX[i] && inY[i]) common++;
        return common;
    }

    /// <summary>Marks the k largest values; ties broken towards the lower index.</summary>
    public static bool[] TopK(ReadOnlySpan<double> values, int k)
    {
        var order = new int[values.Length];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        var copy = values.ToArray();
        Array.Sort(order, (a, b) =>
        {
            int byValue = copy[b].CompareTo(copy[a]);
            return byValue != 0 ? byValue : a.CompareTo(b);
        });
        var chosen = new bool[values.Length];
        for (int i = 0; i < k; i++) chosen[order[i]] = true;
        return chosen;
    }

    private static void CheckPaired(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        if (x.Length != y.Length) throw new ArgumentException($"paired samples differ in length: {x.Length} vs {y.Length}");
    }
}
