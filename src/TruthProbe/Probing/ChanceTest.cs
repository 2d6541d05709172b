namespace TruthProbe.Probing;

/// <summary>
/// Is a map better than chance? Each head's cross-validated accuracy is read as k = round(accuracy * N)
/// correct predictions out of N rows and tested one-sided against Binomial(N, p0), p0 = the majority-class
/// share (the best a probe that ignores the activations can do), at alpha = <see cref="Alpha"/> divided
/// by the number of heads (Bonferroni). The map differs from chance when at least one head passes.
/// </summary>
public sealed record ChanceTest(int Rows, double MajorityShare, double HeadAlpha, int HeadsAboveChance, double SmallestPValue, double BestAccuracy)
{
    public const double Alpha = 0.01;
    public const string Criterion = "one-sided binomial test per head, k = round(accuracy * N) of N vs p0 = majority-class share, Bonferroni alpha 0.01 over all heads; the map differs from chance if any head passes";

    public bool DiffersFromChance => HeadsAboveChance > 0;

    public static ChanceTest Run(ReadOnlySpan<double> accuracy, ReadOnlySpan<byte> labels)
    {
        int n = labels.Length, gold = 0;
        foreach (byte y in labels) gold += y;
        double p0 = Math.Max(gold, n - gold) / (double)n;
        double threshold = Alpha / accuracy.Length;
        var logFactorial = new double[n + 1];
        for (int i = 1; i <= n; i++) logFactorial[i] = logFactorial[i - 1] + Math.Log(i);
        int passing = 0;
        double smallest = 1, best = double.NaN;
        foreach (double acc in accuracy)
        {
            if (double.IsNaN(acc)) continue;
            best = double.IsNaN(best) ? acc : Math.Max(best, acc);
            double p = UpperTail(n, (int)Math.Round(acc * n), p0, logFactorial);
            smallest = Math.Min(smallest, p);
            if (p < threshold) passing++;
        }
        return new ChanceTest(n, p0, threshold, passing, smallest, best);
    }

    /// <summary>P(X &gt;= k) for X ~ Binomial(n, p), summed in log space.</summary>
    public static double UpperTail(int n, int k, double p, double[] logFactorial)
    {
        if (k <= 0) return 1;
        if (p >= 1) return 1;
        double sum = 0, logP = Math.Log(p), logQ = Math.Log(1 - p);
        for (int j = k; j <= n; j++)
            sum += Math.Exp(logFactorial[n] - logFactorial[j] - logFactorial[n - j] + j * logP + (n - j) * logQ);
        return Math.Min(1, sum);
    }
}
