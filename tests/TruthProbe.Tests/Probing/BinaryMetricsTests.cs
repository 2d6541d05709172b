using TruthProbe.Probing;

namespace TruthProbe.Tests.Probing;

public class BinaryMetricsTests
{
    private static BinaryMetrics Compute(byte[] truth, double[] logits) =>
        BinaryMetrics.Compute(truth, logits, new double[truth.Length], new byte[truth.Length]);

    [Fact]
    public void Compute_MatchesHandCountedConfusionMatrix()
    {
        // rows:        TP   TP   FN    FN    FP   TN    TN    TN
        byte[] truth = [1, 1, 1, 1, 0, 0, 0, 0];
        double[] logits = [2.0, 0.1, -0.3, -5, 0.7, -1, -2, -0.5];
        var m = Compute(truth, logits);
        // TP 2, FN 2, FP 1, TN 3
        Assert.Equal(5.0 / 8, m.Accuracy, 12);
        Assert.Equal(2.0 / 3, m.Precision, 12);
        Assert.Equal(2.0 / 4, m.Recall, 12);
        Assert.Equal(2 * (2.0 / 3) * 0.5 / (2.0 / 3 + 0.5), m.F1, 12);
    }

    [Fact]
    public void Threshold_IsStrict_ALogitOfZeroPredictsHallucinated()
    {
        var m = Compute([1, 0], [0.0, 0.0]);
        Assert.Equal(0.5, m.Accuracy);
        Assert.Equal(0, m.Precision);   // nothing predicted gold: zero_division = 0
        Assert.Equal(0, m.Recall);
        Assert.Equal(0, m.F1);
    }

    [Fact]
    public void Auroc_WithTies_EqualsBruteForcePairCount()
    {
        byte[] truth = [1, 1, 1, 0, 0, 1, 0, 0, 1];
        double[] s = [3, 2, 2, 2, 1, 0.5, 0.5, 4, -1];
        double wins = 0, pairs = 0;
        for (int i = 0; i < s.Length; i++)
            for (int j = 0; j < s.Length; j++)
                if (truth[i] == 1 && truth[j] == 0)
                {
                    pairs++;
                    wins += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
                }
        Assert.Equal(wins / pairs, Compute(truth, s).Auroc, 12);
    }

    [Fact]
    public void Auroc_ClosedFormCases_PerfectReversedAllTiedOneClass()
    {
        Assert.Equal(1.0, Compute([0, 0, 1, 1], [-2, -1, 1, 2]).Auroc);
        Assert.Equal(0.0, Compute([1, 1, 0, 0], [-2, -1, 1, 2]).Auroc);
        Assert.Equal(0.5, Compute([1, 0, 1, 0], [3, 3, 3, 3]).Auroc);
        Assert.True(double.IsNaN(Compute([1, 1], [1, 2]).Auroc));
    }
}
