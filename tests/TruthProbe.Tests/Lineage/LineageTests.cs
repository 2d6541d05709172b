using System.Text.Json;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Lineage;

public class LineageTests
{
    private static string Baby(string vocab) => SharedData.Path("models", $"babyllama-128d-{vocab}", "model5000.bin");
    private static string Stories() => SharedData.Path("models", "stories260K", "stories260K.bin");

    private static JsonElement Json(string outDir) => JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "lineage.json"))).RootElement;

    [SkippableFact]
    public void PicksTheTrueParent_AmongShippedModelsAndAPerturbedSibling()
    {
        using var tmp = new TempDir();
        string parent = Baby("tok105");
        // The candidate: a fine-tune-like descendant (1% noise on every matrix). A sibling with 20% noise is
        // related too but farther; tok361 is independently trained; stories260K has other shapes.
        string candidate = DriftFixtures.WriteEdited(parent, tmp.File("child"), DriftFixtures.Noise(0.01, 100));
        string sibling = DriftFixtures.WriteEdited(parent, tmp.File("sibling"), DriftFixtures.Noise(0.2, 200));
        var r = CliRunner.Run("lineage", candidate, "--against", Stories(), Baby("tok361"), sibling, parent, "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        ProvenanceAssert.In(tmp.File("out/lineage.json"), [], []);

        var json = Json(tmp.File("out"));
        Assert.Equal("babyllama-128d-tok105/model5000.bin", json.GetProperty("parent").GetString());
        var ranking = json.GetProperty("ranking").EnumerateArray().ToList();
        Assert.Equal(["babyllama-128d-tok105/model5000.bin", "sibling", "babyllama-128d-tok361/model5000.bin", "stories260K/stories260K.bin"],
            ranking.Select(x => x.GetProperty("name").GetString()));
        Assert.Equal(["related", "related", "unrelated", "not comparable (shape)"], ranking.Select(x => x.GetProperty("status").GetString()));
        // Noise of 1% of each matrix's RMS gives a relative distance of 0.01; the sibling's independent 20% adds in quadrature.
        Assert.Equal(0.01, ranking[0].GetProperty("attention_mean_rel_frobenius").GetDouble(), 3);
        Assert.InRange(ranking[1].GetProperty("attention_mean_rel_frobenius").GetDouble(), 0.19, 0.21);
        Assert.True(ranking[2].GetProperty("attention_mean_rel_frobenius").GetDouble() > 1.0);
        Assert.Contains("parent: babyllama-128d-tok105/model5000.bin", r.Stdout);
        Assert.Contains("runner-up sibling", r.Stdout);
        Assert.Contains("margin", r.Stdout);
    }

    [SkippableFact]
    public void NoParentFound_WhenNoModelIsRelated()
    {
        using var tmp = new TempDir();
        var r = CliRunner.Run("lineage", Baby("tok361"), "--against", Stories(), Baby("tok105"), "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("no parent found", r.Stdout);
        var json = Json(tmp.File("out"));
        Assert.Equal(JsonValueKind.Null, json.GetProperty("parent").ValueKind);
        var statuses = json.GetProperty("ranking").EnumerateArray().Select(x => x.GetProperty("status").GetString());
        Assert.Equal(["unrelated", "not comparable (shape)"], statuses);
    }

    [Fact]
    public void HeadMaps_ArePairedWithTheModelsInOrder_AndReportedBesideTheDrift()
    {
        using var tmp = new TempDir();
        var config = Model.TinyModels.MistralWindow;
        string parent = tmp.File("parent"), stranger = tmp.File("stranger");
        RandomModel.WriteHf(parent, config, 1, WeightDType.F32);
        RandomModel.WriteHf(stranger, config, 2, WeightDType.F32);
        string candidate = DriftFixtures.WriteEdited(parent, tmp.File("candidate"), DriftFixtures.Noise(0.05, 7));

        // Maps [2 layers, 4 heads]: the candidate's follows the parent's, the stranger's is reversed.
        double[] parentMap = [0.55, 0.9, 0.6, 0.8, 0.7, 0.95, 0.5, 0.85];
        double[] candidateMap = parentMap.Select(v => v + 0.01).ToArray();
        double[] strangerMap = parentMap.Reverse().ToArray();
        Npy.WriteFloat64(tmp.File("p.npy"), parentMap, 2, 4);
        Npy.WriteFloat64(tmp.File("c.npy"), candidateMap, 2, 4);
        Npy.WriteFloat64(tmp.File("s.npy"), strangerMap, 2, 4);
        var r = CliRunner.Run("lineage", candidate, "--against", stranger, parent,
            "--maps", $"{tmp.File("c.npy")},{tmp.File("s.npy")},{tmp.File("p.npy")}", "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        var ranking = Json(tmp.File("out")).GetProperty("ranking").EnumerateArray().ToList();
        Assert.Equal("parent", ranking[0].GetProperty("name").GetString());
        Assert.Equal(1.0, ranking[0].GetProperty("map_pearson").GetDouble(), 12); // a shifted copy correlates perfectly
        Assert.Equal(8, ranking[0].GetProperty("map_heads").GetInt32());
        Assert.Equal("stranger", ranking[1].GetProperty("name").GetString());
        Assert.True(ranking[1].GetProperty("map_pearson").GetDouble() < 0.5);
        Assert.Contains("head-map Pearson r 1.0000", r.Stdout);

        var wrongCount = CliRunner.Run("lineage", candidate, "--against", stranger, parent, "--maps", tmp.File("c.npy"));
        Assert.Equal(2, wrongCount.ExitCode);
        Assert.Contains("1 maps given; 3 are needed", wrongCount.Stderr);
        Assert.Contains("(--maps)", wrongCount.Stderr);
    }

    [Fact]
    public void ModelWithMoreLayers_IsComparedOverTheCommonLayers_AndSaysSo()
    {
        using var tmp = new TempDir();
        var config = Model.TinyModels.Qwen2;
        string candidate = tmp.File("candidate"), deeper = tmp.File("deeper");
        RandomModel.WriteHf(candidate, config, 4, WeightDType.F32);
        RandomModel.WriteHf(deeper, config with { Layers = 3 }, 4, WeightDType.F32); // same seed: layers 0-1 identical
        var r = CliRunner.Run("lineage", candidate, "--against", deeper, "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        var row = Json(tmp.File("out")).GetProperty("ranking")[0];
        Assert.Equal("related", row.GetProperty("status").GetString());
        Assert.Equal(0.0, row.GetProperty("attention_mean_rel_frobenius").GetDouble());
        Assert.Equal(2, row.GetProperty("per_layer_attention_rel_frobenius").GetArrayLength());
        Assert.Contains("deeper has 3 layers, the candidate 2: compared over layers 0..1", r.Stdout);
    }

    [Fact]
    public void MissingModel_OrNoAgainst_AreClearErrors()
    {
        using var tmp = new TempDir();
        string model = Model.TinyModels.Write(tmp, Model.TinyModels.Qwen2);
        var missing = CliRunner.Run("lineage", model, "--against", model, tmp.File("gone"));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains(tmp.File("gone"), missing.Stderr);
        var none = CliRunner.Run("lineage", model);
        Assert.Equal(2, none.ExitCode);
        Assert.Contains("--against", none.Stderr);
    }
}
