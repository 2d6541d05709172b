using TruthProbe.Statistics;

namespace TruthProbe.Evaluation;

/// <summary>One judged item: the label (true = "yes" = hallucinated answer shown) and the parsed reply.</summary>
public readonly record struct HaluEvalOutcome(bool LabelYes, HaluEvalParsed Parsed)
{
    public bool Correct => LabelYes == Parsed.SaysYes;
}

/// <summary>
/// The confusion matrix of one run, "yes" (hallucinated) being the positive class, and the reference's
/// metrics from it, in percent. As in the reference, precision (recall) is 0 when nothing was predicted
/// (labelled) positive, and F1 is 0 when precision + recall is 0. Unparseable replies count as "no".
/// </summary>
public sealed record HaluEvalScores(int TruePositives, int FalsePositives, int FalseNegatives, int TrueNegatives, int Unparseable)
{
    public int Count => TruePositives + FalsePositives + FalseNegatives + TrueNegatives;
    public double Accuracy => Percent(TruePositives + TrueNegatives, Count);
    public double Precision => Percent(TruePositives, TruePositives + FalsePositives);
    public double Recall => Percent(TruePositives, TruePositives + FalseNegatives);
    public double F1 => Precision + Recall > 0 ? 2 * Precision * Recall / (Precision + Recall) : 0;
    /// <summary>Share of replies read as "yes" (the reference's own <c>yes_ratio</c> is the share of "yes" labels: <see cref="LabelYesRatio"/>).</summary>
    public double YesRatio => Percent(TruePositives + FalsePositives, Count);
    public double LabelYesRatio => Percent(TruePositives + FalseNegatives, Count);

    public static HaluEvalScores From(IEnumerable<HaluEvalOutcome> outcomes)
    {
        int tp = 0, fp = 0, fn = 0, tn = 0, unparseable = 0;
        foreach (var o in outcomes)
        {
            if (!o.Parsed.Parseable) unparseable++;
            switch (o.LabelYes, o.Parsed.SaysYes)
            {
                case (true, true): tp++; break;
                case (false, true): fp++; break;
                case (true, false): fn++; break;
                default: tn++; break;
            }
        }
        return new HaluEvalScores(tp, fp, fn, tn, unparseable);
    }

    /// <summary>The metrics reported per run, by name, in the order they are printed.</summary>
    public IReadOnlyList<(string Name, double Value)> Metrics =>
    [
        ("accuracy", Accuracy), ("f1", F1), ("precision", Precision), ("recall", Recall),
        ("yes_ratio", YesRatio), ("unparseable", Unparseable),
    ];

    private static double Percent(int part, int whole) => whole > 0 ? 100.0 * part / whole : 0;
}

/// <summary>Mean and sample standard deviation (n - 1 in the denominator; 0 for a single value) of one metric over seeds.</summary>
public readonly record struct MeanStd(double Mean, double Std)
{
    public static MeanStd Of(IReadOnlyList<double> values)
    {
        if (values.Count == 0) return new MeanStd(double.NaN, double.NaN);
        double mean = values.Average();
        if (values.Count == 1) return new MeanStd(mean, 0);
        double squares = values.Sum(v => (v - mean) * (v - mean));
        return new MeanStd(mean, Math.Sqrt(squares / (values.Count - 1)));
    }
}

/// <summary>
/// Exact McNemar test of two paired classifiers: of the discordant pairs, b items only the first got right
/// and c only the second; under the null each discordant pair goes either way with probability 1/2, so
/// p = min(1, 2 * P[Binomial(b + c, 1/2) &lt;= min(b, c)]) (two-sided). Concordant pairs carry no information.
/// </summary>
public static class McNemarTest
{
    public sealed record Result(int OnlyFirstCorrect, int OnlySecondCorrect, double PValue);

    public static Result Exact(IReadOnlyList<bool> firstCorrect, IReadOnlyList<bool> secondCorrect)
    {
        if (firstCorrect.Count != secondCorrect.Count)
            throw new ArgumentException($"paired test needs equal counts, got {firstCorrect.Count} and {secondCorrect.Count}");
        int b = 0, c = 0;
        for (int i = 0; i < firstCorrect.Count; i++)
        {
            if (firstCorrect[i] && !secondCorrect[i]) b++;
            else if (!firstCorrect[i] && secondCorrect[i]) c++;
        }
        return new Result(b, c, ExactPValue(b, c));
    }

    /// <summary>Exact at any count (tens of thousands of discordant pairs do not underflow 0.5^n); equals scipy's binomtest(min(b, c), b + c).</summary>
    public static double ExactPValue(int b, int c) => Binomial.TwoSided(b + c, Math.Min(b, c), 0.5);
}
