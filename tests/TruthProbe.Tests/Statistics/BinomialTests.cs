using TruthProbe.Statistics;

namespace TruthProbe.Tests.Statistics;

/// <summary>Against scipy 1.10.1 (Debian python3-scipy), with the exact call in each comment.</summary>
public class BinomialTests
{
    // Each row: scipy.stats.binomtest(k, n, p, alternative=A).pvalue for A = "greater", "less", "two-sided".
    [Theory]
    [InlineData(7, 20, 0.5, 0.9423408508300781, 0.13158798217773438, 0.26317596435546875)]
    [InlineData(13, 20, 0.5, 0.13158798217773438, 0.9423408508300781, 0.26317596435546875)]
    [InlineData(150, 292, 0.5, 0.3410694552724089, 0.7007558981085339, 0.6821389105448178)]
    [InlineData(180, 292, 0.5, 4.12059909534719e-05, 0.9999750315554248, 8.24119819069438e-05)]
    [InlineData(250, 292, 0.6, 1.0022585914691846e-21, 1.0, 1.7843932297539456e-21)]
    [InlineData(3, 10, 0.3, 0.6172172136000003, 0.6496107184000002, 1.0)]
    [InlineData(12, 40, 0.2, 0.08750523592200611, 0.9567583776236763, 0.1159673303817507)]
    [InlineData(5000, 10000, 0.5, 0.503989323069691, 0.503989323069691, 1.0)]
    [InlineData(5150, 10000, 0.5, 0.0013939837588564379, 0.9986946310466607, 0.0027879675177128757)]
    [InlineData(502000, 1000000, 0.5, 3.1804668750394006e-05, 0.9999684629880654, 6.360933750078801e-05)]
    [InlineData(0, 10, 0.5, 1.0, 0.0009765625, 0.001953125)]
    [InlineData(10, 10, 0.5, 0.0009765625, 1.0, 0.001953125)]
    [InlineData(0, 1000, 0.01, 1.0, 4.3171247410658195e-05, 8.520045585902545e-05)]
    [InlineData(100, 1000, 0.01, 8.274776878913566e-65, 1.0, 8.274776878913566e-65)]
    public void Tails_MatchScipyBinomtest(int k, int n, double p, double greater, double less, double twoSided)
    {
        AssertRelative(greater, Binomial.UpperTail(n, k, p), 1e-10);
        AssertRelative(twoSided, Binomial.TwoSided(n, k, p), 1e-10);
        if (less < 0.9999) AssertRelative(less, Binomial.LowerTail(n, k, p), 1e-10);
        else Assert.Equal(less, Binomial.LowerTail(n, k, p), 6); // near 1: scipy's value is 1 - a tiny tail
    }

    [Fact]
    public void Pmf_MatchesScipy_AtSmallAndMillionTrials()
    {
        // scipy.stats.binom.pmf(3, 10, 0.3), binom.pmf(17, 40, 0.2), binom.pmf(500000, 1000000, 0.5)
        AssertRelative(0.26682793199999977, Binomial.Pmf(10, 3, 0.3), 1e-13);
        AssertRelative(0.0006865335281097332, Binomial.Pmf(40, 17, 0.2), 1e-13);
        AssertRelative(0.0007978843613317499, Binomial.Pmf(1000000, 500000, 0.5), 1e-12);
    }

    [Fact]
    public void Tail_BeyondDoubleRange_IsZeroNotNaN()
    {
        // scipy.stats.binomtest(520000, 1000000).pvalue is 0.0 (about 1e-348).
        Assert.Equal(0.0, Binomial.UpperTail(1000000, 520000, 0.5));
        Assert.Equal(0.0, Binomial.TwoSided(1000000, 520000, 0.5));
    }

    [Theory]
    // scipy.stats.hypergeom.sf(m - 1, N, K, k) and hypergeom.pmf(m, N, K, k): overlap m of two k-sets drawn from N.
    [InlineData(40, 20, 20, 10, 0.6238144327180455, 0.24762886543609086)]
    [InlineData(40, 20, 20, 13, 0.056416887741548, 0.043594499269887385)]
    [InlineData(1024, 20, 20, 3, 0.0058832853612967575, 0.005462351916303892)]
    [InlineData(1024, 20, 20, 0, 1.0, 0.6715046455541793)]
    [InlineData(16, 4, 4, 2, 0.24450549450549444, 0.21758241758241753)]
    [InlineData(1024, 50, 50, 10, 7.205337052563702e-05, 6.10923962135222e-05)]
    public void Hypergeometric_MatchesScipy(int population, int successes, int draws, int x, double sf, double pmf)
    {
        AssertRelative(sf, Hypergeometric.UpperTail(population, successes, draws, x), 1e-11);
        AssertRelative(pmf, Hypergeometric.Pmf(population, successes, draws, x), 1e-11);
    }

    [Fact]
    public void Hypergeometric_DrawingEverything_IsCertain()
    {
        Assert.Equal(1.0, Hypergeometric.Pmf(10, 4, 10, 4), 14);
        Assert.Equal(0.0, Hypergeometric.Pmf(10, 4, 10, 3));
    }

    internal static void AssertRelative(double expected, double actual, double tolerance)
    {
        if (expected == 0) { Assert.Equal(0.0, actual); return; }
        Assert.True(Math.Abs(actual - expected) <= tolerance * Math.Abs(expected), $"expected {expected:R}, got {actual:R}");
    }
}
