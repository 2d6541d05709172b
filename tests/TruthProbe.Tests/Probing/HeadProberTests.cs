using TruthProbe.Probing;

namespace TruthProbe.Tests.Probing;

public class HeadProberTests
{
    private static double NormalCdf(double z) => 0.5 * (1 + Erf(z / Math.Sqrt(2)));

    /// <summary>Abramowitz-Stegun 7.1.26 (|error| &lt; 1.5e-7).</summary>
    private static double Erf(double x)
    {
        double t = 1 / (1 + 0.3275911 * Math.Abs(x));
        double y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.Exp(-x * x);
        return x >= 0 ? y : -y;
    }

    private static readonly double[] Planted = [0, 0.3, 0.6, 0.9, 1.2, 1.6, 2.0, 3.0];

    [Fact]
    public void PlantedSignal_ExactProbes_RankHeadsAsPlanted_NearTheBayesAccuracy()
    {
        var set = SyntheticActivations.Planted(600, 2, 4, 16, Planted, seed: 11);
        var scores = HeadProber.Fit(set, set.Labels, Folds.Shuffled(600, 5, 42), ProbeSolverKind.Exact, fitAllRows: true);
        for (int h = 0; h < Planted.Length; h++)
        {
            // Bayes accuracy Phi(s); 16 estimated weights from 480 rows cost a little, sampling ~0.02.
            Assert.InRange(scores.Accuracy[h], NormalCdf(Planted[h]) - 0.07, NormalCdf(Planted[h]) + 0.04);
            if (h > 0) Assert.True(scores.Accuracy[h] > scores.Accuracy[h - 1], $"head {h} ({scores.Accuracy[h]}) should beat head {h - 1} ({scores.Accuracy[h - 1]})");
        }
        Assert.True(scores.MaxGradientNorm < 1e-6);
        Assert.NotNull(scores.Weights);
    }

    [Fact]
    public void PlantedSignal_ReferenceAndExact_AgreeWithinAFewPoints()
    {
        var set = SyntheticActivations.Planted(400, 2, 4, 16, Planted, seed: 3);
        var folds = Folds.Shuffled(400, 5, 42);
        var exact = HeadProber.Fit(set, set.Labels, folds, ProbeSolverKind.Exact, fitAllRows: false);
        var reference = HeadProber.Fit(set, set.Labels, folds, ProbeSolverKind.Reference, fitAllRows: false);
        for (int h = 0; h < Planted.Length; h++)
            Assert.InRange(reference.Accuracy[h] - exact.Accuracy[h], -0.05, 0.05);
    }

    [Fact]
    public void ThreadCount_DoesNotChangeAnyNumber()
    {
        var set = SyntheticActivations.Planted(120, 2, 4, 8, Planted, seed: 9);
        var folds = Folds.Shuffled(120, 5, 1);
        var one = HeadProber.Fit(set, set.Labels, folds, ProbeSolverKind.Exact, fitAllRows: true, maxThreads: 1);
        var many = HeadProber.Fit(set, set.Labels, folds, ProbeSolverKind.Exact, fitAllRows: true, maxThreads: 4);
        Assert.Equal(one.Accuracy, many.Accuracy);
        Assert.Equal(one.Auroc, many.Auroc);
        Assert.Equal(one.Weights, many.Weights);
    }
}
