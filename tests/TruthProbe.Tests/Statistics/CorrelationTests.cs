using TruthProbe.Lineage;
using TruthProbe.Statistics;

namespace TruthProbe.Tests.Statistics;

/// <summary>
/// Small cases worked out by hand (shown in the comments); scipy 1.10.1 gives the same values
/// (pearsonr, spearmanr, kendalltau).
/// </summary>
public class CorrelationTests
{
    // x = 1..5, y = 2,4,5,4,5: mean x 3, mean y 4; dx = -2,-1,0,1,2; dy = -2,0,1,0,1.
    private static readonly double[] X = [1, 2, 3, 4, 5];
    private static readonly double[] Y = [2, 4, 5, 4, 5];

    [Fact]
    public void Pearson_SmallSample_EqualsHandComputedValue()
    {
        // sxy = 6, sxx = 10, syy = 6 -> r = 6 / sqrt(60).
        Assert.Equal(6 / Math.Sqrt(60), Correlation.Pearson(X, Y), 14);
    }

    [Fact]
    public void Spearman_WithTies_UsesAverageRanks()
    {
        // ranks of y: 2 -> 1, the two 4s -> 2.5, the two 5s -> 4.5; Pearson of (1..5) and (1, 2.5, 4.5, 2.5, 4.5)
        // is 7 / sqrt(10 * 9).
        var ranks = new double[5];
        Correlation.AverageRanks(Y, ranks);
        Assert.Equal([1, 2.5, 4.5, 2.5, 4.5], ranks);
        Assert.Equal(7 / Math.Sqrt(90), Correlation.Spearman(X, Y), 14);
    }

    [Fact]
    public void KendallTauB_WithTiesInY_EqualsHandComputedValue()
    {
        // Of the 10 pairs: 7 concordant, 1 discordant (5 then 4), 2 tied in y (the 4s, the 5s), none in x.
        // tau-b = (7 - 1) / sqrt((10 - 0) * (10 - 2)).
        Assert.Equal(6 / Math.Sqrt(80), Correlation.KendallTauB(X, Y), 14);
    }

    [Fact]
    public void KendallTauB_TiesOnBothSides_EqualsHandComputedValue()
    {
        // x = 1,1,2,2,3,3,3; y = 1,2,1,2,3,3,2. 21 pairs; tied in x: 1 + 1 + 3 = 5; tied in y: 1 + 3 + 1 = 5
        // (1s: 1 pair, 2s: 3 pairs, 3s: 1 pair); concordant 11, discordant 1 -> tau-b = 10 / 16 = 0.625.
        double[] x = [1, 1, 2, 2, 3, 3, 3], y = [1, 2, 1, 2, 3, 3, 2];
        Assert.Equal(0.625, Correlation.KendallTauB(x, y), 14);
    }

    [Fact]
    public void PerfectAndReversedOrder_GivePlusAndMinusOne()
    {
        double[] a = [0.1, 0.5, 0.7, 0.9], reversed = [0.9, 0.7, 0.5, 0.1], squared = a.Select(v => v * v).ToArray();
        Assert.Equal(1.0, Correlation.Spearman(a, squared), 14);
        Assert.Equal(1.0, Correlation.KendallTauB(a, squared), 14);
        Assert.Equal(-1.0, Correlation.Pearson(a, a.Select(v => 2 - 3 * v).ToArray()), 14);
        Assert.Equal(-1.0, Correlation.KendallTauB(a, reversed), 14);
    }

    [Fact]
    public void ConstantSample_IsUndefined_NotAnException()
    {
        double[] constant = [0.5, 0.5, 0.5];
        double[] other = [0.1, 0.2, 0.3];
        Assert.True(double.IsNaN(Correlation.Pearson(constant, other)));
        Assert.True(double.IsNaN(Correlation.Spearman(constant, other)));
        Assert.True(double.IsNaN(Correlation.KendallTauB(constant, other)));
    }

    [Fact]
    public void TopKJaccard_CountsSharedTopHeads_AndBreaksTiesByIndex()
    {
        // top-2 of x = {0, 1}, of y = {4, 1}: one shared of three -> 1/3.
        Assert.Equal(1.0 / 3, Correlation.TopKJaccard([5, 4, 3, 2, 1], [1, 4, 3, 2, 5], 2), 14);
        Assert.Equal([true, true, false, false], Correlation.TopK([1, 1, 1, 0], 2));
        Assert.Equal(1.0, Correlation.TopKJaccard([1, 2, 3], [10, 20, 30], 3));
    }
}
