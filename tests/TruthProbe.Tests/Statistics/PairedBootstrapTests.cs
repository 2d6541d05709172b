using TruthProbe.Statistics;

namespace TruthProbe.Tests.Statistics;

/// <summary>The paired bootstrap against cases whose resampling distribution is known in closed form.</summary>
public sealed class PairedBootstrapTests
{
    [Fact]
    public void ConstantPerItemDifference_GivesThatDifference()
    {
        // B's per-item rate is A's plus 0.25 on every item (denominators 1): every resample's difference is exactly 0.25.
        double[] a = [0, 0.25, 0.5, 0.75, 0.5, 0.25], ones = [1, 1, 1, 1, 1, 1];
        double[] b = a.Select(x => x + 0.25).ToArray();
        var interval = PairedBootstrap.RatioDifference(a, ones, b, ones, 500, 9);
        Assert.Equal(0.25, interval.Low, 12);
        Assert.Equal(0.25, interval.High, 12);
    }

    [Fact]
    public void TwoItems_IntervalIsTheSingleItemExtremes()
    {
        // Two items: a resample is {1,1}, {2,2} (1/4 each) or one of each (1/2). With 4,000 resamples the 2.5% and 97.5%
        // quantiles fall inside the {1,1} and {2,2} masses, whose differences of ratios are item 1's and item 2's own:
        // (3/4 - 1/4) = 0.5 and (1/5 - 2/5) = -0.2; the mixed draw, (3+1)/(4+5) - (1+2)/(4+5) = 1/9, lies between.
        double[] numA = [1, 2], denA = [4, 5], numB = [3, 1], denB = [4, 5];
        var interval = PairedBootstrap.RatioDifference(numA, denA, numB, denB, 4000, 1);
        Assert.Equal(-0.2, interval.Low, 12);
        Assert.Equal(0.5, interval.High, 12);
    }

    [Fact]
    public void NoUsableResample_IsUndefined_AndTheSeedFixesTheInterval()
    {
        double[] zero = [0, 0], one = [1, 1];
        Assert.True(double.IsNaN(PairedBootstrap.RatioDifference(zero, zero, zero, zero, 10, 1).Low));
        double[] a = [0, 1, 0, 1, 1], b = [1, 1, 0, 0, 1], ones = [1, 1, 1, 1, 1];
        Assert.Equal(PairedBootstrap.RatioDifference(a, ones, b, ones, 200, 5), PairedBootstrap.RatioDifference(a, ones, b, ones, 200, 5));
        Assert.Throws<ArgumentException>(() => PairedBootstrap.RatioDifference(a, ones, one, one, 10, 1));
    }
}
