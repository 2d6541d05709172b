using TruthProbe.Common;

namespace TruthProbe.Statistics;

/// <summary>
/// Percentile bootstrap of the difference B - A of a ratio of sums, sum(num) / sum(den), measured twice on the same
/// items (vanilla and gated captions of the same images): items are resampled with replacement, each resample keeping
/// the pair together, so the interval reflects which items were drawn and not the pairing. CHAIR_S is such a ratio with
/// den = 1 per caption, CHAIR_I with num = hallucinated mentions and den = mentions.
/// </summary>
public static class PairedBootstrap
{
    /// <summary>
    /// The (1 - confidence)/2 and (1 + confidence)/2 quantiles (numpy's linear rule) of the resampled differences;
    /// resamples where either side has a zero denominator are skipped, and no usable resample gives NaN bounds.
    /// </summary>
    public static Interval RatioDifference(ReadOnlySpan<double> numA, ReadOnlySpan<double> denA, ReadOnlySpan<double> numB, ReadOnlySpan<double> denB,
        int resamples, ulong seed, double confidence = 0.95)
    {
        int n = numA.Length;
        if (denA.Length != n || numB.Length != n || denB.Length != n)
            throw new ArgumentException($"paired samples differ in length: {numA.Length}, {denA.Length}, {numB.Length}, {denB.Length}");
        if (resamples < 1) throw new ArgumentOutOfRangeException(nameof(resamples), $"need at least one resample, got {resamples}");
        if (n == 0) return Interval.Undefined;
        var rng = new SeededRandom(seed);
        var differences = new double[resamples];
        int kept = 0;
        for (int s = 0; s < resamples; s++)
        {
            double na = 0, da = 0, nb = 0, db = 0;
            for (int i = 0; i < n; i++)
            {
                int j = rng.NextInt(n);
                na += numA[j];
                da += denA[j];
                nb += numB[j];
                db += denB[j];
            }
            if (da > 0 && db > 0) differences[kept++] = nb / db - na / da;
        }
        if (kept == 0) return Interval.Undefined;
        var sorted = differences.AsSpan(0, kept);
        sorted.Sort();
        double tail = (1 - confidence) / 2;
        return new Interval(Spread.Quantile(sorted, tail), Spread.Quantile(sorted, 1 - tail));
    }
}
