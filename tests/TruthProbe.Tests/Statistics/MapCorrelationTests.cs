using Xunit.Abstractions;
using TruthProbe.Common;
using TruthProbe.Lineage;
using TruthProbe.Statistics;

namespace TruthProbe.Tests.Statistics;

public class MapCorrelationTests(ITestOutputHelper output)
{
    private static readonly int[] TwoByThree = [0, 0, 0, 1, 1, 1];

    /// <summary>All 3! x 3! = 36 within-layer shuffles of b for a 2x3 map, and how many reach |r_obs|.</summary>
    private static (int AtLeast, int Total) Enumerate(double[] a, double[] b)
    {
        int[][] perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
        double observed = Math.Abs(Correlation.Pearson(a, b));
        int atLeast = 0, total = 0;
        foreach (var p0 in perms)
            foreach (var p1 in perms)
            {
                double[] shuffled = [b[p0[0]], b[p0[1]], b[p0[2]], b[3 + p1[0]], b[3 + p1[1]], b[3 + p1[2]]];
                if (Math.Abs(Correlation.Pearson(a, shuffled)) >= observed - 1e-12) atLeast++;
                total++;
            }
        return (atLeast, total);
    }

    [Fact]
    public void LayerPermutation_IdenticalMaps_ConvergesToTheClosedFormOneIn36()
    {
        // a = b: only the identity shuffle of both layers keeps r = 1, so the exact p is 1/36; the Monte-Carlo
        // p = (1 + hits) / (1 + B) must land within 4 binomial SDs of it.
        double[] a = [1, 2, 3, 4, 5, 6];
        Assert.Equal((1, 36), Enumerate(a, a));
        const int b = 20000;
        double p = MapCorrelation.LayerPermutationPValue(a, a, TwoByThree, b, seed: 3);
        Assert.InRange(p, 1.0 / 36 - 4 * Math.Sqrt(1.0 / 36 * 35 / 36 / b), 1.0 / 36 + 4 * Math.Sqrt(1.0 / 36 * 35 / 36 / b));
    }

    [Fact]
    public void LayerPermutation_MatchesExhaustiveEnumeration_OnA2x3Map()
    {
        double[] a = [0.61, 0.74, 0.58, 0.90, 0.83, 0.71], b = [0.66, 0.70, 0.55, 0.88, 0.69, 0.80];
        var (atLeast, total) = Enumerate(a, b);
        Assert.InRange(atLeast, 2, 34); // a case away from the edges, so the comparison can fail both ways
        double exact = atLeast / (double)total;
        const int permutations = 20000;
        double p = MapCorrelation.LayerPermutationPValue(a, b, TwoByThree, permutations, seed: 11);
        double sd = Math.Sqrt(exact * (1 - exact) / permutations);
        Assert.InRange(p, exact - 4 * sd, exact + 4 * sd);
    }

    [Fact]
    public void LayerPermutation_IsNeverZero_OneHeadPerLayerIsNeverSignificant_AndRepeatsWithItsSeed()
    {
        // 4 layers of 8 identical heads: no shuffle but the identity (1 in 8!^4) reaches r = 1, so p = 1 / (1 + B).
        double[] big = Enumerable.Range(0, 32).Select(i => (double)(i * 7 % 11)).ToArray();
        int[] fourLayers = Enumerable.Range(0, 32).Select(i => i / 8).ToArray();
        Assert.Equal(1.0 / 100, MapCorrelation.LayerPermutationPValue(big, big, fourLayers, 99, seed: 1));
        // One head per layer: every shuffle is the identity, the null cannot tell anything apart.
        double[] a = [1, 2, 3, 4, 5, 6];
        Assert.Equal(1.0, MapCorrelation.LayerPermutationPValue(a, a, [0, 1, 2, 3, 4, 5], 99, seed: 1));
        double[] b = [0.66, 0.70, 0.55, 0.88, 0.69, 0.80];
        Assert.Equal(MapCorrelation.LayerPermutationPValue(a, b, TwoByThree, 500, 7), MapCorrelation.LayerPermutationPValue(a, b, TwoByThree, 500, 7));
    }

    [Fact]
    public void LayerCentredPearson_MatchesScipyOnCentredValues()
    {
        // numpy: subtract each layer's mean, then scipy.stats.pearsonr -> 0.4743416490252569; plain pearsonr 0.8844521689146024.
        double[] a = [1, 2, 3, 4, 6, 5], b = [2, 1, 3, 5, 7, 9];
        Assert.Equal(0.4743416490252569, MapCorrelation.LayerCentredPearson(a, b, TwoByThree), 13);
        Assert.Equal(0.8844521689146024, Correlation.Pearson(a, b), 13);
    }

    /// <summary>
    /// Two maps whose only common structure is depth: each layer's mean is the same rising function, each head
    /// independent noise. Plain Pearson is high; the layer-preserving null must not call it inherited.
    /// </summary>
    [Fact]
    public void SharedDepthTrendOnly_IsNotCalledInherited_ByTheLayerPreservingNull()
    {
        const int layers = 8, heads = 16, seeds = 60;
        int[] layerOf = Enumerable.Range(0, layers * heads).Select(i => i / heads).ToArray();
        int notSignificant = 0;
        for (int seed = 0; seed < seeds; seed++)
        {
            var rng = new SeededRandom((ulong)seed);
            double[] a = layerOf.Select(l => 0.55 + 0.04 * l + 0.02 * rng.NextGaussian()).ToArray();
            double[] b = layerOf.Select(l => 0.55 + 0.04 * l + 0.02 * rng.NextGaussian()).ToArray();
            Assert.True(Correlation.Pearson(a, b) > 0.9, $"seed {seed}: plain r {Correlation.Pearson(a, b)}");
            Assert.InRange(MapCorrelation.LayerCentredPearson(a, b, layerOf), -0.45, 0.45);
            if (MapCorrelation.LayerPermutationPValue(a, b, layerOf, 199, (ulong)seed) > 0.05) notSignificant++;
        }
        output.WriteLine($"shared depth trend only: p_layer_perm > 0.05 in {notSignificant} of {seeds} seeds");
        // Under the null p is uniform: p > 0.05 in 95% of seeds; 0.85 leaves room for 60 draws.
        Assert.True(notSignificant >= 0.85 * seeds, $"{notSignificant} of {seeds} seeds not significant");
    }

    [Fact]
    public void PlantedInheritance_IsDetected_AndTheBootstrapCoversTheTrueCorrelation()
    {
        // child = parent + sigma * noise with parent heads iid N(0, 1): the true correlation is
        // 1 / sqrt(1 + sigma^2), and the 95% percentile interval over heads should cover it about 95% of the time.
        const int layers = 8, heads = 16, seeds = 200;
        int[] layerOf = Enumerable.Range(0, layers * heads).Select(i => i / heads).ToArray();
        foreach (double sigma in (double[])[0.5, 1.0, 2.0])
        {
            double truth = 1 / Math.Sqrt(1 + sigma * sigma);
            int covered = 0;
            for (int seed = 0; seed < seeds; seed++)
            {
                var rng = new SeededRandom((ulong)(1000 * sigma) + (ulong)seed);
                double[] parent = layerOf.Select(_ => rng.NextGaussian()).ToArray();
                double[] child = parent.Select(v => v + sigma * rng.NextGaussian()).ToArray();
                var interval = MapCorrelation.BootstrapPearson(parent, child, 400, (ulong)seed);
                Assert.True(interval.Low <= Correlation.Pearson(parent, child) && Correlation.Pearson(parent, child) <= interval.High);
                if (interval.Low <= truth && truth <= interval.High) covered++;
                if (seed < 20)
                    Assert.True(MapCorrelation.LayerPermutationPValue(parent, child, layerOf, 99, (ulong)seed) <= 0.01 + (sigma >= 2 ? 0.04 : 0),
                        $"sigma {sigma}, seed {seed}: inheritance not detected");
            }
            output.WriteLine($"sigma {sigma}: true r {truth:0.000}, 95% bootstrap interval covers it in {covered} of {seeds} seeds");
            Assert.InRange(covered / (double)seeds, 0.90, 0.99);
        }
    }

    [Fact]
    public void Bootstrap_OfIdenticalMaps_IsThePoint_AndRepeatsWithItsSeed()
    {
        double[] a = [0.1, 0.5, 0.2, 0.9, 0.7];
        Assert.Equal(new Interval(1, 1), MapCorrelation.BootstrapPearson(a, a, 200, 5));
        double[] b = [0.2, 0.4, 0.1, 0.8, 0.9];
        Assert.Equal(MapCorrelation.BootstrapPearson(a, b, 300, 9), MapCorrelation.BootstrapPearson(a, b, 300, 9));
        Assert.NotEqual(MapCorrelation.BootstrapPearson(a, b, 300, 9), MapCorrelation.BootstrapPearson(a, b, 300, 10));
    }
}
