using System.Text.Json.Nodes;
using TruthProbe.Cli;
using TruthProbe.Common;
using TruthProbe.Sharding;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Cli;

/// <summary>
/// Sharded runs on the real stories260K: parts merged equal one process byte for byte, and a merge refuses any set
/// of parts that is not exactly one run's.
/// </summary>
public class ShardCliTests
{
    private static string Shipped => Path.Combine(RepoPaths.RepoRoot()!, "data", "tinystories_context_qa.jsonl");

    private static string[] ScoreArgs(string model, params string[] extra) =>
        ["score", model, "--data", Shipped, "--samples", "40", .. extra];

    private static void Ok(CliRunner.Result r) => Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);

    private static string Refused(CliRunner.Result r)
    {
        Assert.Equal(UserError.ExitCode, r.ExitCode);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        return r.Stderr;
    }

    /// <summary>The manifest without what names the output folder or measures time.</summary>
    private static string ManifestWithoutPathsAndTimings(string dir)
    {
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "manifest.json")))!.AsObject();
        manifest.Remove("timings_s");
        manifest["activations"]!.AsObject().Remove("path");
        return manifest.ToJsonString();
    }

    [SkippableFact]
    public void Score_ThreeShardsMerged_EqualOneProcess_ByteForByte()
    {
        string model = SharedData.Path("models", "stories260K", "stories260K.bin");
        using var tmp = new TempDir();
        Ok(CliRunner.Run([.. ScoreArgs(model), "--out", tmp.File("single")]));
        for (int k = 1; k <= 3; k++) Ok(CliRunner.Run([.. ScoreArgs(model), "--shard", $"{k}/3", "--out", tmp.File($"part-{k}")]));
        // The parts in any order: the merge orders them by shard.
        Ok(CliRunner.Run("merge", tmp.File("part-3"), tmp.File("part-1"), tmp.File("part-2"), "--out", tmp.File("merged")));

        foreach (string file in new[] { "activations.safetensors", "scores.csv", "scores.npy", "probe_weights.safetensors" })
            Assert.True(File.ReadAllBytes(tmp.File("single/" + file)).SequenceEqual(File.ReadAllBytes(tmp.File("merged/" + file))), file + " differs");
        Assert.Equal(ManifestWithoutPathsAndTimings(tmp.File("single")), ManifestWithoutPathsAndTimings(tmp.File("merged")));

        // A part holds its block only: 40 rows in 3 shards are 13, 13 and 14.
        var manifests = Enumerable.Range(1, 3).Select(k => ShardManifest.Read(tmp.File($"part-{k}"))).ToList();
        Assert.Equal([(0, 13), (13, 26), (26, 40)], manifests.Select(m => (m.Start, m.End)));
        Assert.All(manifests, m => Assert.Equal(40, m.Total));
        Assert.False(File.Exists(tmp.File("part-1/scores.csv")), "a part is not a result: it has no scores of its own");
    }

    [SkippableFact]
    public void HaluEval_FourShardsWithGatesMerged_EqualOneProcess_EvenWithAShardOfOnlyTooLongRows()
    {
        string model = SharedData.Path("models", "stories260K", "stories260K.bin");
        string data = SharedData.Path("data", "halueval", "qa_data_first1000.jsonl");
        using var tmp = new TempDir();
        // A contrast map for stories260K's 5 x 8 heads, written here: the gates only have to change some replies' inputs.
        string map = tmp.File("map.csv");
        File.WriteAllLines(map, ["layer,head,accuracy", .. Enumerable.Range(0, 40).Select(i => $"{i / 8},{i % 8},{0.5 + 0.01 * ((i * 7) % 13)}")]);
        string[] args = ["eval", "halueval", model, "--data", data, "--limit", "12", "--seeds", "1,2", "--skip-long",
                         "--scores", map, "--mode", "contrast", "--lambda", "2"];
        Ok(CliRunner.Run([.. args, "--out", tmp.File("single")]));
        // Rows 3-5 of these 12 are all longer than stories260K's context: shard 2/4 is an empty part, and still merges.
        for (int k = 1; k <= 4; k++) Ok(CliRunner.Run([.. args, "--shard", $"{k}/4", "--out", tmp.File($"part-{k}")]));
        Assert.Empty(File.ReadAllLines(tmp.File("part-2/items.jsonl")));
        Ok(CliRunner.Run("merge", tmp.File("part-1"), tmp.File("part-2"), tmp.File("part-3"), tmp.File("part-4"), "--out", tmp.File("merged")));

        Assert.Equal(File.ReadAllBytes(tmp.File("single/items.jsonl")), File.ReadAllBytes(tmp.File("merged/items.jsonl")));
        static string WithoutSeconds(string path) => string.Join('\n', File.ReadAllLines(path).Where(l => !l.Contains("\"seconds\"")));
        Assert.Equal(WithoutSeconds(tmp.File("single/metrics.json")), WithoutSeconds(tmp.File("merged/metrics.json")));
    }

    [SkippableFact]
    public void Merge_RefusesMissingRepeatedForeignAndUnfinishedParts_NamingThem()
    {
        string model = SharedData.Path("models", "stories260K", "stories260K.bin");
        using var tmp = new TempDir();
        for (int k = 1; k <= 3; k++) Ok(CliRunner.Run([.. ScoreArgs(model), "--shard", $"{k}/3", "--out", tmp.File($"part-{k}")]));
        Ok(CliRunner.Run([.. ScoreArgs(model, "--template", "Q: {question}\nA: {answer}"), "--shard", "2/3", "--out", tmp.File("other-2")]));
        Ok(CliRunner.Run([.. ScoreArgs(model), "--shard", "2/4", "--out", tmp.File("four-2")]));

        Assert.Contains("shard(s) 2/3 missing", Refused(CliRunner.Run("merge", tmp.File("part-1"), tmp.File("part-3"), "--out", tmp.File("m"))));
        Assert.Contains("shard 2/3 is given twice", Refused(CliRunner.Run("merge", tmp.File("part-1"), tmp.File("part-2"), tmp.File("part-2") + "/", tmp.File("part-3"), "--out", tmp.File("m"))));
        string foreign = Refused(CliRunner.Run("merge", tmp.File("part-1"), tmp.File("other-2"), tmp.File("part-3"), "--out", tmp.File("m")));
        Assert.Contains("other-2 is not a part of the same run", foreign);
        Assert.Contains("arguments", foreign);
        Assert.Contains("shard count 4 vs 3", Refused(CliRunner.Run("merge", tmp.File("part-1"), tmp.File("four-2"), tmp.File("part-3"), "--out", tmp.File("m"))));

        File.Delete(tmp.File("part-2/" + ShardManifest.FileName));
        Assert.Contains("did not finish", Refused(CliRunner.Run("merge", tmp.File("part-1"), tmp.File("part-2"), tmp.File("part-3"), "--out", tmp.File("m"))));
        Assert.False(Directory.Exists(tmp.File("m")) && Directory.EnumerateFileSystemEntries(tmp.File("m")).Any(), "a refused merge wrote outputs");

        // The failed shard rerun alone: it finds its finished activations and only writes shard.json again.
        var rerun = CliRunner.Run([.. ScoreArgs(model), "--shard", "2/3", "--out", tmp.File("part-2")]);
        Ok(rerun);
        Assert.Contains("without running the model", rerun.Stderr);
        Ok(CliRunner.Run("merge", tmp.File("part-1"), tmp.File("part-2"), tmp.File("part-3"), "--out", tmp.File("m")));
    }

    [Fact]
    public void ABadShard_IsRefusedBeforeAnyInputIsRead()
    {
        using var tmp = new TempDir();
        Assert.Contains("K must be a whole number from 1 to 4",
            Refused(CliRunner.Run("score", "no-model.bin", "--data", Shipped, "--shard", "5/4", "--out", tmp.File("p"))));
    }

    [Fact]
    public void HaluEval_RefusesALambdaSweepInAShard_BeforeLoading_SayingHowToRunIt()
    {
        using var tmp = new TempDir();
        string map = tmp.File("map.csv");
        File.WriteAllLines(map, ["layer,head,accuracy", .. Enumerable.Range(0, 40).Select(i => $"{i / 8},{i % 8},0.6")]);
        string error = Refused(CliRunner.Run("eval", "halueval", tmp.File("not-loaded.bin"), "--data", Shipped, "--scores", map, "--mode", "contrast",
            "--lambda-sweep", "0,1", "--shard", "1/2", "--out", tmp.File("p")));
        Assert.Contains("give the shards its --lambda", error);
    }
}
