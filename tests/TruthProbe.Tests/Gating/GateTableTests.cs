using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Gating;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Gating;

public class GateTableTests
{
    // Two layers of three heads. Layer 0: mean 0.8, min 0.6, max 1.0. Layer 1: mean 0.6, min 0.5, max 0.8.
    private static readonly double[] Scores = [0.6, 0.8, 1.0, 0.5, 0.5, 0.8];

    private static double[] Gates(GateMode mode, double? lambda, ulong seed = 0) =>
        GateTable.FromScores(Scores, 2, 3, mode, lambda, seed).Values;

    private static void AssertClose(double[] expected, double[] actual, int digits = 12)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], digits);
    }

    [Fact]
    public void Contrast_CentresEachLayerOnItsOwnMean()
    {
        // 1 + 2 (S - 0.8) for layer 0, 1 + 2 (S - 0.6) for layer 1.
        AssertClose([0.6, 1.0, 1.4, 0.8, 0.8, 1.4], Gates(GateMode.Contrast, 2));
    }

    [Fact]
    public void Contrast_LargeLambda_GivesNegativeGates_NeverClamped()
    {
        // 1 + 10 (0.6 - 0.8) = -1 and 1 + 10 (0.5 - 0.6) = 0.
        AssertClose([-1, 1, 3, 0, 0, 3], Gates(GateMode.Contrast, 10));
    }

    [Fact]
    public void MinMax_ScalesEachLayerToZeroOne_ThenAmplifies()
    {
        // Layer 0: (S - 0.6) / (0.4 + 1e-6); layer 1: (S - 0.5) / (0.3 + 1e-6); gate = 1 + 0.5 * that.
        AssertClose([1, 1 + 0.5 * 0.2 / 0.400001, 1 + 0.5 * 0.4 / 0.400001, 1, 1, 1 + 0.5 * 0.3 / 0.300001],
            Gates(GateMode.MinMax, 0.5));
    }

    [Fact]
    public void PlainAndRaw_UseTheScoresDirectly()
    {
        AssertClose([2.2, 2.6, 3.0, 2.0, 2.0, 2.6], Gates(GateMode.Plain, 2));
        AssertClose(Scores, Gates(GateMode.Raw, null));
    }

    [Fact]
    public void Inverse_IsTheMinMaxOfReciprocals_WithoutLambda()
    {
        // Layer 0: 1/S = 5/3, 5/4, 1 -> (1/S - 1) / (2/3) = 1, 3/8, 0. Layer 1: 2, 2, 5/4 -> 1, 1, 0.
        // The 1e-6 terms move these by about 1e-6.
        AssertClose([1, 0.375, 0, 1, 1, 0], Gates(GateMode.Inverse, null), digits: 5);
        Assert.Equal(Gates(GateMode.Inverse, null), Gates(GateMode.Inverse, 7.5)); // lambda ignored, as in the reference
        Assert.Null(GateTable.FromScores(Scores, 2, 3, GateMode.Inverse, 7.5).Lambda);
    }

    [Fact]
    public void Random_Seed0_FollowsTheSplitMix64TestVector()
    {
        // SplitMix64 from seed 0 yields 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4 (published reference values);
        // u = (x >> 11) / 2^53, gate = 1 + (2u - 1).
        double[] g = Gates(GateMode.Random, null, seed: 0);
        Assert.Equal(2.0 * ((0xE220A8397B1DCDAFUL >> 11) / 9007199254740992.0), g[0], 15);
        Assert.Equal(2.0 * ((0x6E789E6AA1B965F4UL >> 11) / 9007199254740992.0), g[1], 15);
    }

    [Fact]
    public void Random_IsReproducibleBySeed_DifferentAcrossSeeds_AndWithinZeroToTwo()
    {
        var a = GateTable.FromScores(new double[4096], 64, 64, GateMode.Random, null, seed: 11);
        var b = GateTable.FromScores(new double[4096], 64, 64, GateMode.Random, null, seed: 11);
        var c = GateTable.FromScores(new double[4096], 64, 64, GateMode.Random, null, seed: 12);
        Assert.Equal(a.Values, b.Values);
        Assert.NotEqual(a.Values, c.Values);
        Assert.Equal(11UL, a.Seed);
        Assert.All(a.Values, v => Assert.InRange(v, 0.0, 2.0));
        Assert.InRange(a.Values.Average(), 0.97, 1.03); // 1 + U(-1,1) has mean 1, sd of the mean 0.009
    }

    [Fact]
    public void NaNScore_IsAUserErrorNamingTheHead()
    {
        double[] scores = [0.6, double.NaN, 1.0, 0.5];
        var e = Assert.Throws<UserError>(() => GateTable.FromScores(scores, 2, 2, GateMode.Contrast, 1, source: "s.npy"));
        Assert.Contains("s.npy: layer 0, head 1 has score NaN", e.Message);
    }

    [Fact]
    public void MissingLambda_ForAModeThatNeedsIt_IsAUserError()
    {
        var e = Assert.Throws<UserError>(() => GateTable.FromScores(Scores, 2, 3, GateMode.MinMax, null));
        Assert.Contains("gate mode minmax needs lambda", e.Message);
    }

    [Fact]
    public void SaveThenLoad_KeepsGatesAndProvenance()
    {
        using var tmp = new TempDir();
        Npy.WriteFloat64(tmp.File("scores.npy"), Scores, 2, 3);
        var table = GateTable.FromScoreFile(tmp.File("scores.npy"), GateMode.Contrast, 4.5);
        table.Save(tmp.File("gates.npy"));

        var loaded = GateTable.Load(tmp.File("gates.npy"));
        Assert.Equal(table.Values, loaded.Values);
        Assert.Equal((2, 3), (loaded.Layers, loaded.Heads));
        Assert.Equal(GateMode.Contrast, loaded.Mode);
        Assert.Equal(4.5, loaded.Lambda);
        Assert.Equal(Hashing.Sha256File(tmp.File("scores.npy")), loaded.SourceSha256);
        Assert.Equal("<f8", Npy.Read(tmp.File("gates.npy")).DType);
    }

    [Fact]
    public void EnsureMatches_NamesBothShapes()
    {
        var table = GateTable.FromScores(Scores, 2, 3, GateMode.Raw, null, source: "s.npy");
        table.EnsureMatches(2, 3, "tiny");
        var e = Assert.Throws<UserError>(() => table.EnsureMatches(4, 3, "tiny"));
        Assert.Contains("2 layers x 3 heads", e.Message);
        Assert.Contains("tiny has 4 layers x 3 query heads", e.Message);
    }
}
