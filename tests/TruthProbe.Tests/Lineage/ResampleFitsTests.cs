using Xunit.Abstractions;
using TruthProbe.Lineage;
using TruthProbe.Probing;
using TruthProbe.Statistics;

namespace TruthProbe.Tests.Lineage;

/// <summary>
/// The row bootstrap fits each resample from the original rows and their counts of copies. The reference here is
/// the resample written out, as the bootstrap's definition reads: N drawn copies in draw order, folds grouped by
/// the drawn row, and HeadProber fitting them like any activation set.
/// </summary>
public class ResampleFitsTests(ITestOutputHelper output)
{
    private static double[] Materialised(ActivationSet set, ProbeOptions options, int seed, int resample)
    {
        var drawn = RowBootstrap.Draw(set, seed, resample, new long[set.Rows]);
        int perRow = set.HeadCount * set.HeadDim;
        var values = new float[set.Rows * perRow];
        var labels = new byte[set.Rows];
        for (int i = 0; i < set.Rows; i++)
        {
            set.Values.AsSpan((int)drawn[i] * perRow, perRow).CopyTo(values.AsSpan(i * perRow, perRow));
            labels[i] = set.Labels[drawn[i]];
        }
        var copies = new ActivationSet(set.Rows, set.Layers, set.Heads, set.HeadDim, values, labels, drawn);
        return HeadProber.Fit(copies, labels, Folds.Grouped(drawn, options.Folds, options.Seed), options.Solver, fitAllRows: false).Accuracy;
    }

    private static RowSource Source(ActivationSet set, ProbeOptions options) =>
        new(new ScoreMap("m", "memory", Enumerable.Range(0, set.Layers).ToArray(), Enumerable.Range(0, set.Heads).ToArray(),
            HeadProber.Fit(set, set.Labels, Folds.Shuffled(set.Rows, options.Folds, options.Seed), options.Solver, fitAllRows: false).Accuracy),
            set, options, "memory");

    [Fact]
    public void ExactSolver_CountedRows_GiveTheMapsOfTheResampleWrittenOut()
    {
        const int rows = 300, layers = 2, heads = 3, dim = 8, resamples = 6, seed = 11;
        double[] strength = [0.1, 0.4, 0.7, 1.0, 1.5, 2.5];
        var options = new ProbeOptions(Control: false);
        var parent = SyntheticActivations.Planted(rows, layers, heads, dim, strength, seed: 1);
        var other = SyntheticActivations.Planted(rows, layers, heads, dim, strength.Reverse().ToArray(), seed: 2);
        var boot = RowBootstrap.Run([Source(parent, options), Source(other, options)], resamples, seed);
        int equal = 0, total = 0;
        double worst = 0;
        for (int s = 0; s < 2; s++)
            for (int b = 0; b < resamples; b++)
            {
                var expected = Materialised(s == 0 ? parent : other, options, seed, b);
                var actual = boot.Resampled(s, b).Values;
                for (int h = 0; h < expected.Length; h++, total++)
                {
                    if (expected[h] == actual[h]) equal++;
                    worst = Math.Max(worst, Math.Abs(expected[h] - actual[h]));
                }
            }
        output.WriteLine($"{equal} of {total} resampled Truth Scores bit-identical to the written-out resample's, largest difference {worst:0.0e0}");
        // The counted fit reaches the same optimum by sums in another order, so a validation row's sign can only
        // differ at a margin of rounding size: one such row moves a head's score by 1/(5 * 60) here.
        Assert.True(worst <= 1.0 / (5 * 60) + 1e-12, $"largest difference {worst}");
        Assert.True(equal >= total - 1, $"{total - equal} of {total} scores differ");
    }

    [Fact]
    public void ReferenceSolver_GetsTheCopiesInDrawOrder_BitIdentical()
    {
        const int rows = 100, seed = 4;
        var options = new ProbeOptions(Solver: ProbeSolverKind.Reference, Control: false);
        var set = SyntheticActivations.Planted(rows, 1, 2, 4, [0.3, 1.2], seed: 3);
        var boot = RowBootstrap.Run([Source(set, options)], 2, seed);
        for (int b = 0; b < 2; b++)
            Assert.Equal(Materialised(set, options, seed, b), boot.Resampled(0, b).Values);
    }

    [Fact]
    public void CountedFit_EqualsThePlainFitOfTheCopiesWrittenOut()
    {
        const int n = 60, d = 5;
        var rng = new TruthProbe.Common.SeededRandom(8);
        var x = Enumerable.Range(0, n * d).Select(_ => (float)rng.NextGaussian()).ToArray();
        var y = Enumerable.Range(0, n).Select(i => (byte)((x[i * d] + 0.5 * rng.NextGaussian()) > 0 ? 1 : 0)).ToArray();
        var counts = Enumerable.Range(0, n).Select(_ => 1 + rng.NextInt(3)).ToArray();
        var copies = Enumerable.Range(0, n).SelectMany(i => Enumerable.Repeat(i, counts[i])).ToArray();
        var xCopies = copies.SelectMany(i => x.Skip(i * d).Take(d)).ToArray();
        var yCopies = copies.Select(i => y[i]).ToArray();

        var plain = new float[d];
        new ExactLogistic(copies.Length, d).Fit(xCopies, yCopies, plain, out float plainBias);
        var counted = new float[d];
        new ExactLogistic(n, d).FitCounted(x, y, counts, counted, out float countedBias);
        for (int j = 0; j < d; j++) Assert.Equal(plain[j], counted[j], 5);
        Assert.Equal(plainBias, countedBias, 5);
        Assert.True(Math.Abs(plain[0]) > 0.5, "the planted feature carries weight"); // a fit that learned nothing would agree trivially
    }
}
