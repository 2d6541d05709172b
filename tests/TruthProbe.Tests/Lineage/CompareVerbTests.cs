using System.Globalization;
using System.Text.Json;
using TruthProbe.Formats;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Lineage;

public class CompareVerbTests
{
    private static string Paper(string file) => SharedData.Path("truth_scores", file);

    /// <summary>The (a, b) row of pairs.csv as column name -> text.</summary>
    private static Dictionary<string, string> PairRow(string outDir, string a, string b)
    {
        var lines = File.ReadAllLines(Path.Combine(outDir, "pairs.csv"));
        string[] header = lines[0].Split(',');
        string[] row = lines.Skip(1).Select(l => l.Split(',')).Single(f => f[0] == a && f[1] == b);
        return header.Zip(row).ToDictionary(p => p.First, p => p.Second);
    }

    private static double Num(string s) => double.Parse(s, CultureInfo.InvariantCulture);

    [SkippableFact]
    public void PaperMaps_ReproduceThePublishedCorrelations()
    {
        using var tmp = new TempDir();
        var r = CliRunner.Run("compare",
            Paper("vicuna_halueval_292.npy"), Paper("llava1.5_rlhfv_2726.npy"), Paper("llava_next_rlhfv_2726.npy"),
            Paper("llama2_halueval_292.npy"), Paper("qwen2.5_halueval_292.npy"), Paper("qwen2.5_vl_instruct_rlhfv_2726.npy"),
            Paper("qwen2.5_vl_omni_rlhfv_2726.npy"),
            "--names", "vicuna,llava1.5,llava_next,llama2,qwen2.5,qwen_vl,qwen_omni", "--shared-indices", "--out", tmp.Path);
        Assert.True(r.ExitCode == 0, r.Stderr);
        // numpy on the paper's files (docs/design.md §8); Fig. 1(d) rounds the first two to 0.62, 0.64.
        Assert.Equal(0.6208, Num(PairRow(tmp.Path, "vicuna", "llava1.5")["pearson"]), 4);
        Assert.Equal(0.6387, Num(PairRow(tmp.Path, "vicuna", "llava_next")["pearson"]), 4);
        Assert.Equal(0.8529, Num(PairRow(tmp.Path, "vicuna", "llama2")["pearson"]), 4);
        Assert.Equal(0.3177, Num(PairRow(tmp.Path, "qwen2.5", "qwen_vl")["pearson"]), 4);
        Assert.Equal(0.4251, Num(PairRow(tmp.Path, "qwen2.5", "qwen_omni")["pearson"]), 4);
        Assert.Contains("0.6208", r.Stdout);
    }

    [SkippableFact]
    public void PaperMaps_RankStatisticsAndTopK_MatchScipy()
    {
        // scipy 1.10.1 / numpy 1.24 on the same files: spearmanr, kendalltau (tau-b), and the top-20 sets by
        // a stable descending argsort.
        using var tmp = new TempDir();
        var r = CliRunner.Run("compare", Paper("vicuna_halueval_292.npy"), Paper("llama2_halueval_292.npy"), "--names", "vicuna,llama2", "--out", tmp.Path);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var row = PairRow(tmp.Path, "vicuna", "llama2");
        Assert.Equal(0.8528618906150095, Num(row["pearson"]), 12);
        Assert.Equal(0.8637367207896137, Num(row["spearman"]), 12);
        Assert.Equal(0.6860462795340353, Num(row["kendall_tau_b"]), 12);
        Assert.Equal(0.17647058823529413, Num(row["topk_jaccard"]), 12);
        Assert.Equal("1024", row["n"]);
        // numpy.corrcoef of single layers.
        var perLayer = File.ReadAllLines(Path.Combine(tmp.Path, "per_layer_pearson.csv"));
        Assert.Equal(33, perLayer.Length);
        Assert.Equal(0.844418855699773, Num(perLayer[1].Split(',')[4]), 12);
        Assert.Equal(0.8734178046754845, Num(perLayer[14].Split(',')[4]), 12);
    }

    [SkippableFact]
    public void DifferentShapes_AreComparedOverTheSharedLayersAndHeads()
    {
        // numpy: corrcoef(vicuna[:28, :28].ravel(), qwen2.5.ravel()); scipy spearmanr / kendalltau likewise.
        using var tmp = new TempDir();
        var r = CliRunner.Run("compare", Paper("vicuna_halueval_292.npy"), Paper("qwen2.5_halueval_292.npy"), "--names", "vicuna,qwen", "--shared-indices", "--out", tmp.Path);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var row = PairRow(tmp.Path, "vicuna", "qwen");
        Assert.Equal("784", row["n"]);
        Assert.Equal(0.05801589253920419, Num(row["pearson"]), 12);
        Assert.Equal(0.03404718988678797, Num(row["spearman"]), 12);
        Assert.Equal(0.02285234228781477, Num(row["kendall_tau_b"]), 12);
        Assert.Contains("differ in shape", r.Stdout);
    }

    [SkippableFact]
    public void CsvMaps_AgreeWithTheMatchingNpyAsPublished()
    {
        // README: Pearson of csv/ against the matching .npy is 0.904 (vicuna) and 0.933 (qwen2.5). numpy's
        // corrcoef on the same files gives 0.903463908785171 and 0.9329360247551434: the README's 0.904 is
        // 0.9035 rounded twice, so the exact numpy values are checked.
        using var tmp = new TempDir();
        var r = CliRunner.Run("compare", Paper("vicuna_halueval_292.npy"), Paper("csv/vicuna.csv"), Paper("qwen2.5_halueval_292.npy"), Paper("csv/qwen2.5.csv"),
            "--names", "vicuna_npy,vicuna_csv,qwen_npy,qwen_csv", "--shared-indices", "--out", tmp.Path);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(0.903463908785171, Num(PairRow(tmp.Path, "vicuna_npy", "vicuna_csv")["pearson"]), 12);
        Assert.Equal(0.9329360247551434, Num(PairRow(tmp.Path, "qwen_npy", "qwen_csv")["pearson"]), 12);
    }

    [Fact]
    public void WritesEveryOutput_WithSquareMatricesNamedInFirstRowAndColumn()
    {
        using var tmp = new TempDir();
        string a = WriteMap(tmp, "a.npy", 2, 3, [0.9, 0.8, 0.7, 0.6, 0.5, 0.95]);
        string b = WriteMap(tmp, "b.npy", 2, 3, [0.85, 0.8, 0.75, 0.6, 0.55, 0.9]);
        string c = WriteMap(tmp, "c.npy", 2, 3, [0.6, 0.7, 0.8, 0.9, 0.95, 0.5]);
        string outDir = Path.Combine(tmp.Path, "out");
        var r = CliRunner.Run("compare", a, b, c, "--top-k", "2", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.Stderr);
        ProvenanceAssert.In(Path.Combine(outDir, "manifest.json"), [("uncertainty", 42)], [("a", a), ("b", b), ("c", c)]);
        foreach (string f in new[] { "pearson.csv", "spearman.csv", "kendall.csv", "topk_jaccard.csv", "pairs.csv", "per_layer_pearson.csv", "pearson_matrix.png", "pearson_vs_reference.png", "manifest.json" })
            Assert.True(File.Exists(Path.Combine(outDir, f)), f);
        var pearson = File.ReadAllLines(Path.Combine(outDir, "pearson.csv"));
        Assert.Equal("name,a,b,c", pearson[0]);
        Assert.StartsWith("a,1,", pearson[1]);
        Assert.Equal(4, pearson.Length);
        // Top-2 of a = heads 5 and 0, of b = 5 and 0, of c = 3 and 4.
        var jaccard = File.ReadAllLines(Path.Combine(outDir, "topk_jaccard.csv"));
        Assert.Equal("a,1,1,0", jaccard[1]);

        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")));
        var inputs = manifest.RootElement.GetProperty("inputs");
        Assert.Equal(3, inputs.GetArrayLength());
        Assert.Equal(TruthProbe.Common.Hashing.Sha256File(a), inputs[0].GetProperty("sha256").GetString());
        Assert.Equal(2, manifest.RootElement.GetProperty("top_k").GetInt32());
        Assert.Equal("a", manifest.RootElement.GetProperty("reference").GetString());
    }

    [Fact]
    public void NaNHeads_AreDropped_AndSharedAcrossAllUsesOnlyHeadsScoredEverywhere()
    {
        using var tmp = new TempDir();
        string a = WriteMap(tmp, "a.npy", 2, 2, [1, 2, 3, 4]);
        string b = WriteMap(tmp, "b.npy", 2, 2, [1, 2, 3, 5]);
        string c = WriteMap(tmp, "c.npy", 2, 2, [1, double.NaN, 3, 4]);
        string outDir = Path.Combine(tmp.Path, "out");
        Assert.Equal(0, CliRunner.Run("compare", a, b, c, "--out", outDir).ExitCode);
        Assert.Equal("4", PairRow(outDir, "a", "b")["n"]);
        Assert.Equal("3", PairRow(outDir, "a", "c")["n"]);
        Assert.Equal(1.0, Num(PairRow(outDir, "a", "c")["pearson"]), 14);

        Assert.Equal(0, CliRunner.Run("compare", a, b, c, "--shared-across-all", "--out", outDir).ExitCode);
        // a, b over heads 0, 2, 3 only: (1,3,4) vs (1,3,5); dx = -5/3, 1/3, 4/3; dy = -2, 0, 2;
        // sxy = 6, sxx = 14/3, syy = 8 -> r = 6 / sqrt(112/3).
        Assert.Equal("3", PairRow(outDir, "a", "b")["n"]);
        Assert.Equal(6 / Math.Sqrt(112.0 / 3), Num(PairRow(outDir, "a", "b")["pearson"]), 14);
    }

    [Fact]
    public void CsvMap_OneBasedIndices_AreShiftedLikeTheReference_AndMatchTheNpy()
    {
        using var tmp = new TempDir();
        string npy = WriteMap(tmp, "m.npy", 2, 2, [0.9, 0.6, 0.7, 0.8]);
        string csv = tmp.File("m.csv");
        File.WriteAllText(csv, "layer,head,accuracy,f1\n1,1,0.9,0\n1,2,0.6,0\n2,1,0.7,0\n2,2,0.8,0\n");
        var r = CliRunner.Run("compare", npy, csv, "--names", "npy,csv", "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("4", PairRow(tmp.File("out"), "npy", "csv")["n"]);
        Assert.Equal(1.0, Num(PairRow(tmp.File("out"), "npy", "csv")["pearson"]), 14);
        Assert.Contains("numbered from 1", r.Stdout);
    }

    [Fact]
    public void ScoreFolder_IsReadThroughItsScoresFile_AndNamedAfterTheFolder()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp.File("vicuna"));
        Directory.CreateDirectory(tmp.File("llava"));
        WriteMap(tmp, "vicuna/scores.npy", 2, 2, [0.9, 0.6, 0.7, 0.8]);
        File.WriteAllText(tmp.File("llava/scores.csv"), "layer,head,accuracy\n0,0,0.8\n0,1,0.65\n1,0,0.7\n1,1,0.9\n");
        File.WriteAllText(tmp.File("vicuna/manifest.json"), "{}");
        File.WriteAllText(tmp.File("llava/manifest.json"), "{}");
        var r = CliRunner.Run("compare", tmp.File("vicuna"), tmp.File("llava"), "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("4", PairRow(tmp.File("out"), "vicuna", "llava")["n"]);
    }

    [Fact]
    public void ChanceLevelMap_IsFlaggedInOutputCsvAndManifest()
    {
        using var tmp = new TempDir();
        // A probe that learned nothing: accuracies scattered around 0.5.
        var rng = new Random(7);
        double[] noise = Enumerable.Range(0, 64).Select(_ => 0.5 + (rng.NextDouble() - 0.5) * 0.08).ToArray();
        double[] real = Enumerable.Range(0, 64).Select(i => 0.6 + 0.3 * (i % 7) / 6.0).ToArray();
        string chance = WriteMap(tmp, "chance.npy", 8, 8, noise);
        string good = WriteMap(tmp, "good.npy", 8, 8, real);
        var r = CliRunner.Run("compare", good, chance, "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("chance is at chance level", r.Stdout);
        Assert.Contains("not evidence of inheritance", r.Stdout);
        Assert.Equal("yes", PairRow(tmp.File("out"), "good", "chance")["chance_level"]);
        using var manifest = JsonDocument.Parse(File.ReadAllText(tmp.File("out/manifest.json")));
        var inputs = manifest.RootElement.GetProperty("inputs");
        Assert.False(inputs[0].GetProperty("chance_level").GetBoolean());
        Assert.True(inputs[1].GetProperty("chance_level").GetBoolean());
        Assert.Contains(manifest.RootElement.GetProperty("warnings").EnumerateArray(), w => w.GetString()!.Contains("chance level"));
    }

    private static string WriteMap(TempDir tmp, string name, int layers, int heads, double[] values)
    {
        string path = tmp.File(name);
        Npy.WriteFloat64(path, values, layers, heads);
        return path;
    }

    /// <summary>Runs compare expecting a user error; checks the message and that no output folder appeared.</summary>
    private static string Fails(TempDir tmp, params string[] argv)
    {
        string outDir = tmp.File("out-" + Guid.NewGuid().ToString("N"));
        var r = CliRunner.Run(["compare", .. argv, "--out", outDir]);
        Assert.Equal(2, r.ExitCode);
        Assert.False(Directory.Exists(outDir), "nothing may be written on bad input");
        Assert.Single(r.Stderr.TrimEnd().Split('\n'));
        return r.Stderr;
    }

    [Fact]
    public void BadInput_IsOneClearErrorNamingTheFile()
    {
        using var tmp = new TempDir();
        string good = WriteMap(tmp, "good.npy", 2, 2, [0.9, 0.6, 0.7, 0.8]);

        Assert.Contains("missing.npy: no such file", Fails(tmp, good, tmp.File("missing.npy")));

        File.WriteAllText(tmp.File("garbage.npy"), "not numpy");
        Assert.Contains("garbage.npy: not a numpy .npy file", Fails(tmp, good, tmp.File("garbage.npy")));

        string nan = WriteMap(tmp, "nan.npy", 2, 2, [double.NaN, double.NaN, double.NaN, double.NaN]);
        Assert.Contains("nan.npy: every score is NaN", Fails(tmp, good, nan));

        Npy.WriteFloat64(tmp.File("flat.npy"), [0.5, 0.6, 0.7], 3);
        Assert.Contains("flat.npy: expected a 2-D [layers, heads] array, got shape (3)", Fails(tmp, good, tmp.File("flat.npy")));

        File.WriteAllText(tmp.File("nocol.csv"), "layer,head,f1\n0,0,0.5\n");
        Assert.Contains("nocol.csv: line 1: missing column accuracy", Fails(tmp, good, tmp.File("nocol.csv")));

        File.WriteAllText(tmp.File("badrow.csv"), "layer,head,accuracy\n0,0,0.5\n0,1,high\n");
        Assert.Contains("badrow.csv: line 3: accuracy must be a number", Fails(tmp, good, tmp.File("badrow.csv")));

        File.WriteAllText(tmp.File("dup.csv"), "layer,head,accuracy\n0,0,0.5\n0,1,0.6\n0,0,0.7\n");
        Assert.Contains("dup.csv: line 4: layer 0, head 0 already appeared on line 2", Fails(tmp, good, tmp.File("dup.csv")));

        Directory.CreateDirectory(tmp.File("empty"));
        Assert.Contains("folder has no scores.npy or scores.csv", Fails(tmp, good, tmp.File("empty")));

        Assert.Contains("at least two maps", Fails(tmp, good));
        Assert.Contains("--names gives 1 names for 2 maps", Fails(tmp, good, good, "--names", "x"));
        Assert.Contains("reference map 'nope' is not one of the maps (a, b) (--reference)", Fails(tmp, good, good, "--names", "a,b", "--reference", "nope"));
        Assert.Contains("both named 'good'", Fails(tmp, good, good));
    }
}
