using System.Text.Json;
using System.Text.Json.Nodes;
using TruthProbe.Tests.Common;
using TruthProbe.Tests.Evaluation;

namespace TruthProbe.Tests.Cli;

/// <summary>`--batch N` in `eval halueval` and `generate --prompts`: the files written are byte-identical to `--batch 1`
/// (one prompt at a time through the unbatched generator), with gates on, prompts of different lengths and slots refilled.</summary>
public class BatchCliTests
{
    private static string Model() => SharedData.Path("models", "stories260K", "stories260K.bin");

    [SkippableFact]
    public void EvalHaluEval_Batch2_WritesTheFilesOfBatch1_GatedAndVanilla()
    {
        string model = Model();
        using var tmp = new TempDir();
        string data = EvalHaluEvalVerbTests.ShortRows(tmp, 5), scores = EvalHaluEvalVerbTests.Scores(tmp);
        string[] argv = ["eval", "halueval", model, "--data", data, "--skip-first", "0", "--seeds", "1",
            "--scores", scores, "--mode", "contrast", "--lambda", "6"];
        var one = CliRunner.Run([.. argv, "--batch", "1", "--out", tmp.File("one")]);
        var two = CliRunner.Run([.. argv, "--batch", "2", "--out", tmp.File("two")]);
        Assert.True(one.ExitCode == 0, one.Stderr);
        Assert.True(two.ExitCode == 0, two.Stderr);
        string items = File.ReadAllText(tmp.File("one/items.jsonl"));
        Assert.Equal(items, File.ReadAllText(tmp.File("two/items.jsonl")));
        Assert.Equal(WithoutSeconds(tmp.File("one/metrics.json")), WithoutSeconds(tmp.File("two/metrics.json")));
        // Gates changed some reply, so the gated half of the comparison is not the vanilla one again.
        var rows = items.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Contains(rows, r => r.GetProperty("vanilla").GetProperty("reply").GetString() != r.GetProperty("gated").GetProperty("reply").GetString());
    }

    /// <summary>metrics.json without the run's wall-clock time, the one field that may differ between two runs.</summary>
    private static string WithoutSeconds(string path)
    {
        var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        Assert.True(root.Remove("seconds"), "metrics.json has no seconds field: the comparison would not need this");
        return root.ToJsonString();
    }

    [SkippableFact]
    public void GeneratePrompts_Batch4_WritesTheRepliesOfBatch1_EachAsGenerateGivesIt()
    {
        string model = Model();
        using var tmp = new TempDir();
        string[] prompts = ["Once upon a time", "The cat sat", "Lily went to the park and saw a big dog. The dog", "Tom", "One day, a bird", "She said \"hi\""];
        string text = tmp.File("prompts.txt"), jsonl = tmp.File("prompts.jsonl");
        File.WriteAllLines(text, [prompts[0], "", .. prompts[1..]]); // a blank line is skipped
        File.WriteAllLines(jsonl, prompts.Select(p => JsonSerializer.Serialize(new { prompt = p, id = 7 })));
        var one = CliRunner.Run("generate", model, "--prompts", text, "--max-new-tokens", "20", "--batch", "1", "--out", tmp.File("one.jsonl"));
        var four = CliRunner.Run("generate", model, "--prompts", jsonl, "--max-new-tokens", "20", "--batch", "4", "--out", tmp.File("four.jsonl"));
        Assert.True(one.ExitCode == 0, one.Stderr);
        Assert.True(four.ExitCode == 0, four.Stderr);
        Assert.Equal(File.ReadAllBytes(tmp.File("one.jsonl")), File.ReadAllBytes(tmp.File("four.jsonl")));

        var lines = File.ReadAllLines(tmp.File("four.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(prompts, lines.Select(l => l.GetProperty("prompt").GetString()));
        Assert.Equal(Enumerable.Range(0, prompts.Length), lines.Select(l => l.GetProperty("index").GetInt32()));
        foreach (int i in (int[])[1, 2])
        {
            var alone = CliRunner.Run("generate", model, "--prompt", prompts[i], "--max-new-tokens", "20", "--ids");
            string newIds = string.Join(' ', lines[i].GetProperty("new_ids").EnumerateArray().Select(e => e.GetInt32()));
            Assert.Contains($"new ids:    {newIds}\n", alone.Stdout.ReplaceLineEndings("\n"));
        }
    }

    [SkippableFact]
    public void GenerateBatch_WithoutPrompts_OrBadPromptsFile_IsOneLineError()
    {
        string model = Model();
        using var tmp = new TempDir();
        var batchAlone = CliRunner.Run("generate", model, "--batch", "4");
        Assert.Equal(2, batchAlone.ExitCode);
        Assert.Contains("--batch and --out apply to --prompts FILE", batchAlone.Stderr);
        string bad = tmp.File("bad.jsonl");
        File.WriteAllLines(bad, ["{\"prompt\": \"ok\"}", "{\"text\": \"no prompt field\"}"]);
        var r = CliRunner.Run("generate", model, "--prompts", bad);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains($"{bad}:2: expected an object with a string field 'prompt'", r.Stderr);
    }
}
