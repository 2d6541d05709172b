using System.Text.Json;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Gating;

public class PatchVerbTests
{
    private static string Scores(TempDir tmp, int layers, int heads)
    {
        var values = Enumerable.Range(0, layers * heads).Select(i => 0.5 + 0.45 * Math.Cos(i * 2.3)).ToArray();
        string path = tmp.File("scores.npy");
        Npy.WriteFloat64(path, values, layers, heads);
        return path;
    }

    private static List<string> Replies(string itemsFile, string condition) =>
        File.ReadAllLines(itemsFile).Select(l => JsonDocument.Parse(l).RootElement.GetProperty(condition).GetProperty("reply").GetString()!).ToList();

    [SkippableFact]
    public void Stories260K_PatchedModelUngated_RepliesAsTheOriginalGated_OnHaluEvalPrompts()
    {
        string model = SharedData.Path("models", "stories260K", "stories260K.bin");
        using var tmp = new TempDir();
        string scores = Scores(tmp, 5, 8);
        string data = tmp.File("rows.jsonl");
        File.WriteAllLines(data, [
            "{\"knowledge\": \"Lily had a red ball.\", \"question\": \"What color was the ball?\", \"right_answer\": \"red\", \"hallucinated_answer\": \"The ball was blue.\"}",
            "{\"knowledge\": \"Tom saw a big dog in the park.\", \"question\": \"What did Tom see?\", \"right_answer\": \"a dog\", \"hallucinated_answer\": \"Tom saw a cat.\"}",
        ]);
        string[] gating = ["--scores", scores, "--mode", "contrast", "--lambda", "4.5", "--site", "o-proj-out"];
        var patch = CliRunner.Run(["patch", model, .. gating, "--out", tmp.File("patched")]);
        Assert.True(patch.ExitCode == 0, patch.Stderr);
        Assert.Contains("site o-proj-out", patch.Stdout);

        string[] eval = ["eval", "halueval", "--data", data, "--skip-first", "0", "--seeds", "1,2"];
        var original = CliRunner.Run([.. eval.Take(2), model, .. eval.Skip(2), .. gating, "--out", tmp.File("orig")]);
        var folded = CliRunner.Run([.. eval.Take(2), tmp.File("patched/stories260K.bin"), .. eval.Skip(2), "--out", tmp.File("fold")]);
        Assert.True(original.ExitCode == 0 && folded.ExitCode == 0, original.Stderr + folded.Stderr);
        var gatedReplies = Replies(tmp.File("orig/items.jsonl"), "gated");
        Assert.Equal(gatedReplies, Replies(tmp.File("fold/items.jsonl"), "vanilla"));
        Assert.NotEqual(gatedReplies, Replies(tmp.File("orig/items.jsonl"), "vanilla"));

        using var manifest = JsonDocument.Parse(File.ReadAllText(tmp.File("patched/truthprobe_patch.json")));
        Assert.Equal("contrast", manifest.RootElement.GetProperty("mode").GetString());
        Assert.Equal("4.5", manifest.RootElement.GetProperty("lambda").GetString());
        Assert.EndsWith("stories260K.bin", manifest.RootElement.GetProperty("source_model").GetString());
        ProvenanceAssert.In(tmp.File("patched/truthprobe_patch.json"), [], [("scores", scores)]);
    }

    [Fact]
    public void HfBf16Model_PatchedWithGatesFromTheGatesVerb_KeepsDtypeAndRecordsSource()
    {
        using var tmp = new TempDir();
        var config = RandomCheckpoint.Config("qwen2");
        RandomModel.WriteHf(tmp.File("m"), config, 3, WeightDType.BF16);
        var gates = CliRunner.Run("gates", "--scores", Scores(tmp, config.Layers, config.Heads), "--mode", "contrast", "--lambda", "6", "--out", tmp.File("g.npy"));
        Assert.True(gates.ExitCode == 0, gates.Stderr);
        var run = CliRunner.Run("patch", tmp.File("m"), "--gates", tmp.File("g.npy"), "--out", tmp.File("p"));
        Assert.True(run.ExitCode == 0, run.Stderr);
        using var patched = SafetensorsFile.Open(tmp.File("p/model.safetensors"));
        Assert.All(patched.Tensors.Values, t => Assert.Equal(TensorDType.BF16, t.DType));
        Assert.Equal("head", patched.Metadata["truthprobe.gate_site"]);
        Assert.EndsWith("g.npy", patched.Metadata["truthprobe.gates_file"]);
        Assert.Equal("contrast", patched.Metadata["truthprobe.mode"]); // from the gates verb's sidecar
        Assert.True(File.Exists(tmp.File("p/config.json")));
        using var loaded = Transformer.Load(tmp.File("p"));
        Assert.Equal(config.Layers, loaded.Config.Layers);
    }

    [Theory]
    [InlineData("shape", "are 2 layers x 4 heads, but")]
    [InlineData("none", "give the gates to fold")]
    [InlineData("both", "not both")]
    [InlineData("site", "gate site must be 'head' or 'o-proj-out', got 'mlp' (--site)")]
    [InlineData("format", "--format must be safetensors or gguf, got 'onnx'")]
    public void BadInput_IsOneClearErrorAndNoOutput(string kind, string expected)
    {
        using var tmp = new TempDir();
        var config = RandomCheckpoint.Config("qwen2");
        RandomModel.WriteHf(tmp.File("m"), config, 3, WeightDType.F32);
        string good = Scores(tmp, config.Layers, config.Heads);
        string[] extra = kind switch
        {
            "shape" => ["--scores", MakeWrongShape(tmp), "--mode", "contrast", "--lambda", "1"],
            "none" => [],
            "both" => ["--scores", good, "--mode", "contrast", "--lambda", "1", "--gates", good],
            "site" => ["--scores", good, "--mode", "contrast", "--lambda", "1", "--site", "mlp"],
            _ => ["--scores", good, "--mode", "contrast", "--lambda", "1", "--format", "onnx"],
        };
        var run = CliRunner.Run(["patch", tmp.File("m"), .. extra, "--out", tmp.File("p")]);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains(expected, run.Stderr);
        Assert.False(Directory.Exists(tmp.File("p")));
    }

    private static string MakeWrongShape(TempDir tmp)
    {
        string path = tmp.File("wrong.npy");
        Npy.WriteFloat64(path, Enumerable.Repeat(0.7, 8).ToArray(), 2, 4);
        return path;
    }
}
