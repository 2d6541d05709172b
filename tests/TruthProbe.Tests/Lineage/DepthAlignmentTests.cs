using System.Globalization;
using Xunit.Abstractions;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Lineage;
using TruthProbe.Probing;
using TruthProbe.Statistics;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Lineage;

public class DepthAlignmentTests(ITestOutputHelper output)
{
    private static ScoreMap Map(string name, int layers, int heads, Func<int, int, double> value) =>
        new(name, name, Enumerable.Range(0, layers).ToArray(), Enumerable.Range(0, heads).ToArray(),
            Enumerable.Range(0, layers * heads).Select(i => value(i / heads, i % heads)).ToArray());

    private static string Npy(TempDir tmp, ScoreMap m)
    {
        string path = tmp.File(m.Name + ".npy");
        TruthProbe.Formats.Npy.WriteFloat64(path, m.Values, m.Layers, m.Heads);
        return path;
    }

    private static Dictionary<string, string> PairRow(string outDir)
    {
        var lines = File.ReadAllLines(Path.Combine(outDir, "pairs.csv"));
        return lines[0].Split(',').Zip(lines[1].Split(',')).ToDictionary(p => p.First, p => p.Second);
    }

    [Fact]
    public void MatchedLayers_AreTheNearestRelativeDepths()
    {
        // Centres (i + 1/2) / 5 of 5 layers against centres (j + 1/2) / 32: nearest j = 3, 9, 16, 22, 28 (by hand).
        Assert.Equal([3, 9, 16, 22, 28], Enumerable.Range(0, 5).Select(i => DepthAlignment.MatchedLayer(i, 5, 32)));
        Assert.Equal([1, 3, 5, 7], Enumerable.Range(0, 4).Select(i => DepthAlignment.MatchedLayer(i, 4, 8)));
        Assert.Equal(Enumerable.Range(0, 28), Enumerable.Range(0, 28).Select(i => DepthAlignment.MatchedLayer(i, 28, 28)));
    }

    [Fact]
    public void ChildOfEveryOtherLayer_WithEqualHeadCounts_IsPairedHeadByHead_AtRExactlyOne()
    {
        using var tmp = new TempDir();
        var rng = new SeededRandom(4);
        var parent = Map("parent", 8, 4, (_, _) => 0.5 + 0.4 * rng.NextDouble());
        var child = Map("child", 4, 4, (l, h) => parent[2 * l + 1, h]); // layers 1, 3, 5, 7 of the parent
        string outDir = tmp.File("out");
        var refused = CliRunner.Run("compare", Npy(tmp, parent), Npy(tmp, child), "--out", outDir);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("--align depth", refused.Stderr);

        var r = CliRunner.Run("compare", Npy(tmp, parent), Npy(tmp, child), "--align", "depth", "--top-k", "4", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var row = PairRow(outDir);
        Assert.Equal("16", row["n"]);
        Assert.Equal(1.0, double.Parse(row["pearson"], CultureInfo.InvariantCulture), 12);
        Assert.Equal("4", row["top_k"]);
        Assert.Contains("matched by relative depth", r.Stdout);
    }

    [Fact]
    public void DifferentHeadCounts_CompareLayerMeans_AndLeaveHeadStatisticsEmpty()
    {
        using var tmp = new TempDir();
        var rng = new SeededRandom(8);
        var parent = Map("parent", 8, 4, (l, _) => 0.5 + 0.03 * l * l % 7 + 0.05 * rng.NextDouble());
        double LayerMean(int l) => Enumerable.Range(0, 4).Average(h => parent[l, h]);
        // Two heads per layer, +-0.01 around the matched parent layer's mean: the depth profiles agree exactly.
        var child = Map("child", 4, 2, (l, h) => LayerMean(2 * l + 1) + (h == 0 ? 0.01 : -0.01));
        string outDir = tmp.File("out");
        var r = CliRunner.Run("compare", Npy(tmp, parent), Npy(tmp, child), "--align", "depth", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var row = PairRow(outDir);
        Assert.Equal("4", row["n"]);
        Assert.Equal(1.0, double.Parse(row["pearson"], CultureInfo.InvariantCulture), 12);
        foreach (string column in (string[])["topk_jaccard", "p_layer_perm", "pearson_layer_centred", "topk_p", "topk_expected"])
            Assert.Equal("nan", row[column]);
        Assert.Contains("different head counts, so no head of one corresponds to a head of the other", r.Stdout);

        var tooFew = CliRunner.Run("compare", Npy(tmp, parent), Npy(tmp, Map("two", 2, 2, (_, _) => 0.6)), "--align", "depth", "--out", tmp.File("o2"));
        Assert.Equal(2, tooFew.ExitCode);
        Assert.Contains("only 2 layers can be matched", tooFew.Stderr);
        var both = CliRunner.Run("compare", Npy(tmp, parent), Npy(tmp, child), "--align", "depth", "--shared-indices", "--out", tmp.File("o3"));
        Assert.Equal(2, both.ExitCode);
    }

    /// <summary>
    /// A 16-layer and an 8-layer map of 8 heads that share only a rise with relative depth: plain r over the
    /// depth-matched heads is high, but the layer-preserving null does not call them inherited, while a child
    /// that keeps its parent's heads (plus noise) is detected.
    /// </summary>
    [Fact]
    public void SharedDepthTrendAcrossDepths_IsNotCalledInherited_ButAHeadLevelChildIs()
    {
        const int seeds = 40, heads = 8;
        int notSignificant = 0, detected = 0;
        for (int seed = 0; seed < seeds; seed++)
        {
            var rng = new SeededRandom((ulong)seed + 77);
            var deep = Map("deep", 16, heads, (l, _) => 0.55 + 0.3 * (l + 0.5) / 16 + 0.02 * rng.NextGaussian());
            var shallow = Map("shallow", 8, heads, (l, _) => 0.55 + 0.3 * (l + 0.5) / 8 + 0.02 * rng.NextGaussian());
            var child = Map("child", 8, heads, (l, h) => deep[DepthAlignment.MatchedLayer(l, 8, 16), h] + 0.01 * rng.NextGaussian());
            var trend = DepthAlignment.Align(shallow, deep);
            Assert.True(Correlation.Pearson(trend.A, trend.B) > 0.8, $"seed {seed}: plain r {Correlation.Pearson(trend.A, trend.B)}");
            if (MapCorrelation.LayerPermutationPValue(trend.A, trend.B, trend.Layers, 199, (ulong)seed) > 0.05) notSignificant++;
            var inherited = DepthAlignment.Align(child, deep);
            if (MapCorrelation.LayerPermutationPValue(inherited.A, inherited.B, inherited.Layers, 199, (ulong)seed) <= 0.01) detected++;
        }
        output.WriteLine($"depth trend only: p_layer_perm > 0.05 in {notSignificant} of {seeds}; head-level child: p <= 0.01 in {detected} of {seeds}");
        Assert.True(notSignificant >= 0.85 * seeds, $"{notSignificant} of {seeds} seeds not significant");
        Assert.Equal(seeds, detected);
    }
}
