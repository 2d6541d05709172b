using TruthProbe.Statistics;

namespace TruthProbe.Probing;

/// <summary>
/// Is a map better than chance? Each head's cross-validated accuracy is read as k = round(accuracy * N)
/// correct predictions out of N rows and tested one-sided against Binomial(N, p0), p0 = the majority-class
/// share (the best a probe that ignores the activations can do), at alpha = <see cref="Alpha"/> divided
/// by the number of heads (Bonferroni). The map differs from chance when at least one head passes.
/// </summary>
/// <param name="PValues">each head's one-sided p-value (NaN for a head without a score).</param>
public sealed record ChanceTest(int Rows, double MajorityShare, double HeadAlpha, int HeadsAboveChance, double SmallestPValue, double BestAccuracy, double[] PValues)
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
        var pValues = new double[accuracy.Length];
        int passing = 0;
        double smallest = 1, best = double.NaN;
        for (int head = 0; head < accuracy.Length; head++)
        {
            double acc = accuracy[head];
            pValues[head] = double.NaN;
            if (double.IsNaN(acc)) continue;
            best = double.IsNaN(best) ? acc : Math.Max(best, acc);
            double p = pValues[head] = Binomial.UpperTail(n, Proportion.Correct(acc, n), p0);
            smallest = Math.Min(smallest, p);
            if (p < threshold) passing++;
        }
        return new ChanceTest(n, p0, threshold, passing, smallest, best, pValues);
    }
}
