using System.Globalization;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Probing;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Statistics;

/// <summary>The uncertainty columns as the verbs write them, and the misleading outputs of issue 15 they fix.</summary>
public class UncertaintyOutputTests
{
    private static List<Dictionary<string, string>> ReadCsv(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string[] header = lines[0].Split(',');
        return lines.Skip(1).Select(l => header.Zip(l.Split(',')).ToDictionary(p => p.First, p => p.Second)).ToList();
    }

    private static double Num(string s) => double.Parse(s, CultureInfo.InvariantCulture);

    private static string WriteMap(TempDir tmp, string name, int layers, int heads, double[] values)
    {
        Npy.WriteFloat64(tmp.File(name), values, layers, heads);
        return tmp.File(name);
    }

    /// <summary>200 balanced rows, three heads of planted strength 0, 1 and 2, with the given answer text per label.</summary>
    private static ProbeRun Probe(Func<byte, int, string> answer)
    {
        var planted = SyntheticActivations.Planted(200, 1, 3, 8, [0, 1, 2], seed: 5);
        string[] answers = planted.Labels.Select((y, i) => answer(y, i)).ToArray();
        var set = new ActivationSet(planted.Rows, 1, 3, 8, planted.Values, planted.Labels, planted.RowIds, planted.Metadata, answers);
        return ProbeRun.Execute(set, new ProbeOptions(Control: false, Threads: 1));
    }

    [Fact]
    public void ScoresCsv_HeadsNoBetterThanAPerfectSurfaceBaseline_AreNotCalledAboveIt()
    {
        // The answer's wording gives the label away: the surface baseline is perfect, so no head beats it,
        // though two are far above chance. Before: "2 heads above chance" and nothing about the surface.
        var run = Probe((y, _) => y == 1 ? "yes" : "no, that is not so");
        Assert.Equal(1.0, run.Surface!.Accuracy[0]);
        var rows = ReadCsv(run.ScoresCsv());
        Assert.All(rows, r => Assert.True(Num(r["p_surface"]) > 0.5, $"head {r["head"]}: p_surface {r["p_surface"]}"));
        Assert.Contains("; 2 heads above chance, 0 above the surface baseline (length + words, accuracy 1.000;", run.Caption());
        Assert.NotNull(run.SurfaceWarning);
        Assert.True(Num(rows[2]["q_chance"]) < 1e-10);
    }

    [Fact]
    public void ScoresCsv_HeadAboveAnUninformativeSurface_IsSignificant_WithWilsonAndBhColumns()
    {
        var run = Probe((_, i) => i % 3 == 0 ? "a b" : "c");
        var rows = ReadCsv(run.ScoresCsv());
        var strong = rows[2];
        Assert.True(Num(strong["p_surface"]) < 1e-6, strong["p_surface"]);
        Assert.True(Num(rows[0]["p_surface"]) > 0.01, rows[0]["p_surface"]);
        Assert.Contains($"; {run.Chance.HeadsAboveChance} heads above chance, 2 above the surface baseline", run.Caption());
        Assert.Null(run.SurfaceWarning);

        double[] p = rows.Select(r => Num(r["p_chance"])).ToArray();
        foreach (var r in rows)
        {
            double acc = Num(r["accuracy"]), low = Num(r["accuracy_low"]), high = Num(r["accuracy_high"]);
            Assert.True(low < acc && acc < high, $"{low} < {acc} < {high}");
            // Wilson's width is close to the Wald width 2 * 1.96 sqrt(p (1 - p) / n) away from 0 and 1.
            if (acc < 0.9) Assert.InRange((high - low) / (2 * 1.96 * Math.Sqrt(acc * (1 - acc) / 200)), 0.95, 1.02);
            Assert.True(Num(r["q_chance"]) >= Num(r["p_chance"]));
            Assert.InRange(Num(r["accuracy_fold_sd"]), 1e-6, 0.2);
        }
        // Three p-values: the largest keeps its value under BH, the smallest is multiplied by at most 3.
        Assert.Equal(p.Max(), rows.Select(r => Num(r["q_chance"])).Max(), 15);
        Assert.True(Num(rows[0]["p_chance"]) > 0.01 && Num(rows[2]["p_chance"]) < 1e-20);
    }

    [Fact]
    public void Compare_MapsOfDifferentShapes_AreRefused_UnlessSharedIndicesIsGiven()
    {
        // Before, a 2x3 and a 3x4 map were correlated over their first 2x3 indices without a word of doubt
        // in pairs.csv; layer 1 of a 2-layer model is not layer 1 of a 3-layer one.
        using var tmp = new TempDir();
        string small = WriteMap(tmp, "small.npy", 2, 3, [0.9, 0.8, 0.7, 0.6, 0.5, 0.95]);
        string big = WriteMap(tmp, "big.npy", 3, 4, Enumerable.Range(0, 12).Select(i => 0.5 + 0.03 * i).ToArray());
        var refused = CliRunner.Run("compare", small, big, "--out", tmp.File("out"));
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("maps differ in shape (small 2x3, big 3x4)", refused.Stderr);
        Assert.Contains("--shared-indices", refused.Stderr);
        Assert.False(Directory.Exists(tmp.File("out")));

        var r = CliRunner.Run("compare", small, big, "--shared-indices", "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("6", ReadCsv(File.ReadAllText(tmp.File("out/pairs.csv")))[0]["n"]);
    }

    [Fact]
    public void Compare_TopKOverlapAtChance_IsFlagged_WithItsExpectationAndPValue()
    {
        // Issue 15: "top-k Jaccard 0.33 at k = 20 of 40 heads, what chance gives, is not flagged". Maps built
        // so the top 20 share exactly 10 heads, the expectation 20^2 / 40.
        using var tmp = new TempDir();
        double[] a = Enumerable.Range(0, 40).Select(i => i < 20 ? 0.9 - 0.001 * i : 0.6 - 0.001 * i).ToArray();
        double[] b = Enumerable.Range(0, 40).Select(i => i < 10 || (i >= 20 && i < 30) ? 0.9 - 0.001 * i : 0.6 - 0.001 * i).ToArray();
        var r = CliRunner.Run("compare", WriteMap(tmp, "a.npy", 5, 8, a), WriteMap(tmp, "b.npy", 5, 8, b), "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        var row = ReadCsv(File.ReadAllText(tmp.File("out/pairs.csv")))[0];
        Assert.Equal(1.0 / 3, Num(row["topk_jaccard"]), 14);
        Assert.Equal(10.0, Num(row["topk_expected"]), 14);
        // scipy.stats.hypergeom.sf(9, 40, 20, 20)
        Assert.Equal(0.6238144327180455, Num(row["topk_p"]), 12);
        Assert.Contains("top-k overlap no larger than two random sets of heads share", r.Stdout);
        Assert.Contains("a vs b 10 vs 10.0 of top-20", r.Stdout);
    }

    [Fact]
    public void Compare_SharedDepthTrendOnly_HighPearson_ButNotInheritedByTheLayerNull()
    {
        // Both maps rise with depth by the same amount per layer; their heads are independent noise.
        using var tmp = new TempDir();
        var rng = new SeededRandom(17);
        double[] a = Enumerable.Range(0, 128).Select(i => 0.55 + 0.04 * (i / 16) + 0.02 * rng.NextGaussian()).ToArray();
        double[] b = Enumerable.Range(0, 128).Select(i => 0.55 + 0.04 * (i / 16) + 0.02 * rng.NextGaussian()).ToArray();
        var r = CliRunner.Run("compare", WriteMap(tmp, "a.npy", 8, 16, a), WriteMap(tmp, "b.npy", 8, 16, b),
            "--permutations", "999", "--bootstrap", "500", "--seed", "3", "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        var row = ReadCsv(File.ReadAllText(tmp.File("out/pairs.csv")))[0];
        double pearson = Num(row["pearson"]);
        Assert.True(pearson > 0.9, $"plain r {pearson}");
        Assert.True(Num(row["pearson_low"]) < pearson && pearson < Num(row["pearson_high"]));
        Assert.True(Num(row["p_layer_perm"]) > 0.05, $"p_layer_perm {row["p_layer_perm"]}");
        Assert.InRange(Num(row["pearson_layer_centred"]), -0.3, 0.3);
        Assert.Contains("\"seed\": 3", File.ReadAllText(tmp.File("out/manifest.json")));
    }

    [SkippableFact]
    public void Compare_PaperMaps_LayerCentredAndTopKMatchNumpyAndScipy()
    {
        using var tmp = new TempDir();
        var r = CliRunner.Run("compare", SharedData.Path("truth_scores", "vicuna_halueval_292.npy"), SharedData.Path("truth_scores", "llama2_halueval_292.npy"),
            "--names", "vicuna,llama2", "--out", tmp.Path);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var row = ReadCsv(File.ReadAllText(tmp.File("pairs.csv")))[0];
        // numpy: pearsonr of (m - m.mean(axis=1, keepdims=True)).ravel() for both maps.
        Assert.Equal(0.8349509867772757, Num(row["pearson_layer_centred"]), 12);
        // 6 heads shared by the top-20 sets (stable descending argsort): scipy.stats.hypergeom.sf(5, 1024, 20, 20).
        Assert.Equal(400.0 / 1024, Num(row["topk_expected"]), 14);
        Assert.Equal(8.05914652783449e-07, Num(row["topk_p"]), 15);
        Assert.InRange(Num(row["pearson_low"]), 0.80, 0.85);
        Assert.InRange(Num(row["pearson_high"]), 0.855, 0.90);
        Assert.Equal(1.0 / 10000, Num(row["p_layer_perm"]));
        Assert.Contains("p = 0.0001", r.Stdout);
        Assert.DoesNotContain("0.0000 ", r.Stdout.Split('\n').Single(l => l.StartsWith("vicuna vs llama2")));
    }
}
