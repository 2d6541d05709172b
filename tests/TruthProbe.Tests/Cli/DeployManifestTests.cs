using System.Text.RegularExpressions;
using TruthProbe.Cli;
using TruthProbe.Sharding;

namespace TruthProbe.Tests.Cli;

/// <summary>
/// The scheduler recipes in deploy/ against the CLI: the index variable they rely on is the one the CLI reads, the
/// shard count agrees with the job's size, and the arguments parse.
/// </summary>
public partial class DeployManifestTests
{
    private static string Deploy(params string[] parts) => Path.Combine([RepoPaths.RepoRoot()!, "deploy", .. parts]);

    [GeneratedRegex(@"^\s*-\s+(.+?)\s*$")]
    private static partial Regex ListItem();

    /// <summary>The container's args list of a Job manifest, in order.</summary>
    private static List<string> Args(string yaml)
    {
        var lines = File.ReadAllLines(yaml);
        int start = Array.FindIndex(lines, l => l.Trim() == "args:");
        Assert.True(start >= 0, $"{yaml} has no args list");
        return lines.Skip(start + 1).TakeWhile(l => ListItem().IsMatch(l)).Select(l => ListItem().Match(l).Groups[1].Value).ToList();
    }

    private static int Field(string yaml, string name) =>
        int.Parse(Regex.Match(File.ReadAllText(yaml), $@"^\s*{name}:\s*(\d+)\s*$", RegexOptions.Multiline).Groups[1].Value);

    [Fact]
    public void IndexedJob_ShardsByTheCompletionIndex_OverAsManyShardsAsCompletions_WithArgumentsTheCliParses()
    {
        string yaml = Deploy("k8s", "indexed-job.yaml");
        string text = File.ReadAllText(yaml);
        Assert.Contains("completionMode: Indexed", text);
        Assert.Contains($"name: {Shard.KubernetesVariable}", text);
        var args = Args(yaml);
        int completions = Field(yaml, "completions");
        int shardAt = args.IndexOf("--shard");
        Assert.True(shardAt >= 0, "the shard job gives no --shard");
        Assert.Equal($"auto/{completions}", args[shardAt + 1]);
        Assert.Contains($"$({Shard.KubernetesVariable})", args[args.IndexOf("--out") + 1]);

        var parsed = CliMain.Parse(Verbs.Create(), args.Select(a => a.Replace($"$({Shard.KubernetesVariable})", "0")).ToList());
        Assert.Empty(parsed.Errors);
        var shard = Shard.Parse(args[shardAt + 1], name => name == Shard.KubernetesVariable ? "3" : null);
        Assert.Equal(new Shard(3, completions), shard);
    }

    [Fact]
    public void MergeJob_MergesEveryPartTheIndexedJobWrites()
    {
        var shardArgs = Args(Deploy("k8s", "indexed-job.yaml"));
        string partPattern = shardArgs[shardArgs.IndexOf("--out") + 1];
        var mergeArgs = Args(Deploy("k8s", "merge-job.yaml"));
        Assert.Equal("merge", mergeArgs[0]);
        var parts = mergeArgs.Skip(1).TakeWhile(a => a != "--out").ToList();
        int completions = Field(Deploy("k8s", "indexed-job.yaml"), "completions");
        Assert.Equal(Enumerable.Range(0, completions).Select(i => partPattern.Replace($"$({Shard.KubernetesVariable})", i.ToString())), parts);
        Assert.Empty(CliMain.Parse(Verbs.Create(), mergeArgs).Errors);
    }

    [Fact]
    public void SlurmScripts_ShardByTheArrayIndex_OverTheArraysSize_AndChainTheMergeAfterOk()
    {
        string shard = File.ReadAllText(Deploy("slurm", "shard.sbatch"));
        Assert.Contains("--shard \"auto/${SLURM_ARRAY_TASK_COUNT}\"", shard);
        Assert.Contains("part-${" + Shard.SlurmVariable + "}", shard);
        string submit = File.ReadAllText(Deploy("slurm", "submit.sh"));
        Assert.Contains("--array=\"0-$((n - 1))\"", submit);
        Assert.Contains("--dependency=\"afterok:", submit);
        Assert.Contains("merge \"$1\"/part-*", File.ReadAllText(Deploy("slurm", "merge.sbatch")));
    }
}
