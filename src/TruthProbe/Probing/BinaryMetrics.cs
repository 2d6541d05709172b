namespace TruthProbe.Probing;

/// <summary>
/// Validation metrics of one probe on one fold, with the reference's conventions: the positive class is
/// label 1 (gold), a row is predicted positive when sigmoid(logit) &gt; 0.5, i.e. logit &gt; 0, and a ratio
/// with an empty denominator is 0 (scikit-learn's <c>zero_division=0</c>). AUROC is the Mann-Whitney
/// statistic with ties counted as one half; it is NaN when the fold holds only one class.
/// </summary>
public readonly record struct BinaryMetrics(double Accuracy, double Precision, double Recall, double F1, double Auroc)
{
    /// <param name="scratchScores">and <paramref name="scratchLabels"/>: at least as long as the inputs; used for sorting.</param>
    public static BinaryMetrics Compute(ReadOnlySpan<byte> truth, ReadOnlySpan<double> logits,
        Span<double> scratchScores, Span<byte> scratchLabels)
    {
        int n = truth.Length;
        int tp = 0, fp = 0, fn = 0, tn = 0;
        for (int i = 0; i < n; i++)
        {
            bool predicted = logits[i] > 0;
            if (truth[i] == 1) { if (predicted) tp++; else fn++; }
            else { if (predicted) fp++; else tn++; }
        }
        double precision = tp + fp == 0 ? 0 : (double)tp / (tp + fp);
        double recall = tp + fn == 0 ? 0 : (double)tp / (tp + fn);
        double f1 = 2 * tp + fp + fn == 0 ? 0 : 2.0 * tp / (2 * tp + fp + fn);
        double accuracy = n == 0 ? double.NaN : (double)(tp + tn) / n;
        return new BinaryMetrics(accuracy, precision, recall, f1, AreaUnderRoc(truth, logits, scratchScores, scratchLabels));
    }

    /// <summary>
    /// P(score of a random positive &gt; score of a random negative) + P(tie)/2, from the rank sum of the
    /// positives with tied scores given their average rank.
    /// </summary>
    public static double AreaUnderRoc(ReadOnlySpan<byte> truth, ReadOnlySpan<double> scores, Span<double> scratchScores, Span<byte> scratchLabels)
    {
        int n = truth.Length;
        var s = scratchScores[..n];
        var y = scratchLabels[..n];
        scores.CopyTo(s);
        truth.CopyTo(y);
        s.Sort(y);
        long positives = 0;
        double positiveRankSum = 0;
        for (int start = 0; start < n;)
        {
            int end = start + 1;
            while (end < n && s[end] == s[start]) end++;
            double averageRank = (start + 1 + end) / 2.0; // ranks start..end-1 shifted to 1-based
            for (int k = start; k < end; k++)
                if (y[k] == 1) { positives++; positiveRankSum += averageRank; }
            start = end;
        }
        long negatives = n - positives;
        if (positives == 0 || negatives == 0) return double.NaN;
        return (positiveRankSum - positives * (positives + 1) / 2.0) / ((double)positives * negatives);
    }
}
