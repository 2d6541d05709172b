using TruthProbe.Demo;
using TruthProbe.Gating;

namespace TruthProbe.Tests.Demo;

public class GatePlaceboTests
{
    // 3 layers x 4 heads, distinct values so that a shuffle is visible.
    private static readonly double[] Scores = [0.50, 0.61, 0.72, 0.83, 0.55, 0.66, 0.77, 0.88, 0.52, 0.63, 0.74, 0.95];

    [Fact]
    public void Shuffled_KeepsEveryLayersScores_MovesHeads_AndDependsOnlyOnTheSeed()
    {
        var a = GatePlacebo.Shuffled(Scores, 3, 4, seed: 7);
        Assert.Equal(a, GatePlacebo.Shuffled(Scores, 3, 4, seed: 7));
        Assert.NotEqual(a, GatePlacebo.Shuffled(Scores, 3, 4, seed: 8));
        Assert.NotEqual(Scores, a);
        for (int l = 0; l < 3; l++)
            Assert.Equal(Scores.Skip(4 * l).Take(4).Order(), a.Skip(4 * l).Take(4).Order());
    }

    [Fact]
    public void Shuffled_GivesEachLayerTheBasesContrastGates_OnOtherHeads()
    {
        // Contrast gates are 1 + lambda (S - layer mean): layer 0's mean is 0.665, so at lambda 2 its gates are
        // 0.67, 0.89, 1.11, 1.33 in some order, whichever head holds which score.
        var placebo = GateTable.FromScores(GatePlacebo.Shuffled(Scores, 3, 4, seed: 7), 3, 4, GateMode.Contrast, 2.0);
        double[] expected = [0.67, 0.89, 1.11, 1.33];
        Assert.Equal(expected, placebo.Layer(0).ToArray().Order().Select(g => Math.Round(g, 10)));
    }

    [Theory]
    [InlineData(90, 90.5, 0.3, 89, 0.01, "Inconclusive")] // no significant change against vanilla
    [InlineData(90, 88, 0.01, 91, 0.01, "Fail")]          // significantly lower than vanilla
    [InlineData(90, 93, 0.01, 89, 0.01, "Pass")]          // above vanilla and above the placebo
    [InlineData(90, 93, 0.01, 92.5, 0.40, "Inconclusive")] // the placebo does as well
    [InlineData(90, 93, 0.01, 94, 0.01, "Inconclusive")]  // the placebo does significantly better
    [InlineData(90, 93, double.NaN, 89, 0.01, "Inconclusive")] // undefined p is not significance
    public void Outcome_CreditsTheMapOnlyWhenItBeatsVanillaAndThePlacebo(double vanilla, double gated, double p, double placebo, double pPlacebo, string expected) =>
        Assert.Equal(Enum.Parse<DemoCheck.Result>(expected), GatePlacebo.Outcome(vanilla, gated, p, placebo, pPlacebo, 0.05));
}
