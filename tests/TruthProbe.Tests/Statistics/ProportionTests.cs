using TruthProbe.Statistics;

namespace TruthProbe.Tests.Statistics;

public class ProportionTests
{
    [Theory]
    // scipy.stats.binomtest(k, n).proportion_ci(method="wilson") (scipy 1.10.1); statsmodels 0.13.5
    // proportion_confint(7, 20, method="wilson") gives (0.18119182410108203, 0.5671457233147638) as well.
    [InlineData(7, 20, 0.1811918241010821, 0.5671457233147637)]
    [InlineData(0, 20, 0.0, 0.16112515805281935)]
    [InlineData(20, 20, 0.8388748419471808, 1.0)]
    [InlineData(150, 292, 0.4565663081051897, 0.5704752026820078)]
    [InlineData(280, 292, 0.929552960543615, 0.9763376508274961)]
    [InlineData(1, 1000, 0.00017654637062607809, 0.0056425585979579355)]
    public void Wilson95_MatchesScipy(int k, int n, double low, double high)
    {
        var ci = Proportion.Wilson(k, n);
        Assert.Equal(low, ci.Low, 13);
        Assert.Equal(high, ci.High, 13);
    }

    [Fact]
    public void Wilson_GeneralZ_MatchesScipyAt99Percent()
    {
        // z = scipy.special.ndtri(0.995); binomtest(150, 292).proportion_ci(confidence_level=0.99, method="wilson").
        var ci = Proportion.Wilson(150, 292, 2.5758293035489004);
        Assert.Equal(0.4388940926470021, ci.Low, 13);
        Assert.Equal(0.5878944712182858, ci.High, 13);
        Assert.True(double.IsNaN(Proportion.Wilson(0, 0).Low));
    }

    [Fact]
    public void McNemarGreater_CountsDiscordantRows_AndTestsOneSided()
    {
        //                 A right only: rows 0, 1, 2, 5; B right only: row 3; both right: row 4; both wrong: row 6.
        byte[] a = [1, 1, 1, 0, 1, 1, 0];
        byte[] b = [0, 0, 0, 1, 1, 0, 0];
        var (onlyA, onlyB, p) = Proportion.McNemarGreater(a, b);
        Assert.Equal((4, 1), (onlyA, onlyB));
        // scipy.stats.binomtest(4, 5, 0.5, alternative="greater").pvalue = 0.1875 (6 of 32 outcomes).
        Assert.Equal(0.1875, p, 14);
        Assert.Equal(1.0, Proportion.McNemarGreater(b, b).PValue);
    }

    [Fact]
    public void MultipleTesting_BenjaminiHochberg_MatchesStatsmodels()
    {
        // statsmodels 0.13.5 multipletests(p, method="fdr_bh")[1] (the same values as R's p.adjust(p, "BH")).
        double[] p = [0.01, 0.04, 0.03, 0.005, 0.5, 0.04, 0.2, 0.0001];
        double[] expected = [0.02666666666666667, 0.05333333333333334, 0.05333333333333334, 0.02, 0.5, 0.05333333333333334, 0.2285714285714286, 0.0008];
        var q = new double[p.Length];
        MultipleTesting.BenjaminiHochberg(p, q);
        for (int i = 0; i < p.Length; i++) Assert.Equal(expected[i], q[i], 15);

        // multipletests([0.9, 0.02, 0.02, 0.3], method="fdr_bh")[1]; a NaN is left out of m, as R leaves out NA.
        double[] withNaN = [0.9, 0.02, double.NaN, 0.02, 0.3];
        var q2 = new double[withNaN.Length];
        MultipleTesting.BenjaminiHochberg(withNaN, q2);
        Assert.Equal([0.9, 0.04, double.NaN, 0.04, 0.39999999999999997], q2);
    }

    [Fact]
    public void Spread_AndQuantile_MatchNumpy()
    {
        // numpy: v.mean(), v.std(ddof=1), np.percentile(v, [2.5, 50, 97.5, 0, 100]).
        double[] v = [0.3, 0.1, 0.7, 0.2, 0.9, 0.4];
        var (mean, sd) = Spread.MeanStdDev(v);
        Assert.Equal(0.43333333333333335, mean, 15);
        Assert.Equal(0.30767948691238206, sd, 15);
        double[] sorted = v.Order().ToArray();
        Assert.Equal(0.1125, Spread.Quantile(sorted, 0.025), 15);
        Assert.Equal(0.35, Spread.Quantile(sorted, 0.5), 15);
        Assert.Equal(0.875, Spread.Quantile(sorted, 0.975), 15);
        Assert.Equal(0.1, Spread.Quantile(sorted, 0));
        Assert.Equal(0.9, Spread.Quantile(sorted, 1));
        Assert.True(double.IsNaN(Spread.MeanStdDev([0.5]).StdDev));
    }

    [Theory]
    [InlineData(0.0, "p < 1e-4")]
    [InlineData(3e-5, "p < 1e-4")]
    [InlineData(1e-4, "p = 0.0001")]
    [InlineData(0.0023456, "p = 0.0023")]
    [InlineData(0.04999, "p = 0.05")]
    [InlineData(0.5, "p = 0.5")]
    [InlineData(1.0, "p = 1")]
    [InlineData(double.NaN, "p = nan")]
    public void PValueText_NeverPrintsZero(double p, string text) => Assert.Equal(text, PValueText.Format(p));
}
