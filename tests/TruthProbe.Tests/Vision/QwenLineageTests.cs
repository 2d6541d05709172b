using System.Text.Json;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Vision;
using static TruthProbe.Tests.Vision.QwenVisionTests;

namespace TruthProbe.Tests.Vision;

/// <summary><c>lineage</c> over Qwen2.5-VL / Omni folders: their LMs are compared with Qwen2 folders and with each other name for name, whatever the layout.</summary>
public sealed class QwenLineageTests
{
    [Fact]
    public void Lineage_FindsTheQwen2ParentOfAnOmniThinker_AndMatchesNamesAcrossLayouts()
    {
        // The random writers give the LM the same values in every layout (and as a plain Qwen2 folder) for one seed.
        using var tmp = new TempDir();
        string parent = tmp.File("qwen2-17"), stranger = tmp.File("qwen2-18"), omni = tmp.File("omni-17"), nested = tmp.File("vl-nested-17");
        RandomModel.WriteHf(parent, Tiny().Text, 17, WeightDType.F32);
        RandomModel.WriteHf(stranger, Tiny().Text, 18, WeightDType.F32);
        QwenCheckpoint.WriteRandom(omni, Tiny(omni: true), QwenLayout.Thinker, 17, WeightDType.F32);
        QwenCheckpoint.WriteRandom(nested, Tiny(), QwenLayout.Nested, 17, WeightDType.F32);

        var r = CliRunner.Run("lineage", omni, "--against", stranger, parent, nested, "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        var ranking = JsonDocument.Parse(File.ReadAllText(tmp.File("out/lineage.json"))).RootElement.GetProperty("ranking").EnumerateArray().ToList();
        Assert.Equal(["qwen2-17", "vl-nested-17", "qwen2-18"], ranking.Take(2).Select(x => x.GetProperty("name").GetString()).Order().Append(ranking[2].GetProperty("name").GetString()));
        Assert.Equal(0.0, ranking[0].GetProperty("attention_mean_rel_frobenius").GetDouble());
        Assert.Equal(0.0, ranking[1].GetProperty("attention_mean_rel_frobenius").GetDouble());
        Assert.Equal("unrelated", ranking[2].GetProperty("status").GetString());
        Assert.Contains("exactly the candidate's attention weights", r.Stdout);
    }
}
