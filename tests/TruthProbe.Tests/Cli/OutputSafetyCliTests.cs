using System.Text;
using TruthProbe.Cli;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Tests.Gating;

namespace TruthProbe.Tests.Cli;

/// <summary>What the CLI does with --out before any work: one run per output, never onto an input, checked up front.</summary>
public class OutputSafetyCliTests
{
    private static string Shipped => Path.Combine(RepoPaths.RepoRoot()!, "data", "tinystories_context_qa.jsonl");

    /// <summary>Every file under a folder with its bytes' hash, to show that a refused run left it as it was.</summary>
    private static Dictionary<string, string> Snapshot(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(dir, f), Hashing.Sha256File);

    /// <summary>
    /// A writer that, at the first thing the verb prints, tells the test and waits for its go-ahead: the run
    /// is then stopped part-way with its output claimed, for as long as the test needs.
    /// </summary>
    private sealed class PausingWriter(ManualResetEventSlim reached, ManualResetEventSlim resume) : TextWriter
    {
        private readonly StringBuilder _text = new();
        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char value)
        {
            if (!reached.IsSet)
            {
                reached.Set();
                resume.Wait(TimeSpan.FromMinutes(2));
            }
            _text.Append(value);
        }

        public override string ToString() => _text.ToString();
    }

    [SkippableFact]
    public void TwoScoreRunsIntoOneFolder_TheSecondFailsNamingFolderAndPid_TheSurvivorEqualsASingleRun()
    {
        string model = SharedData.Path("models", "stories260K", "stories260K.bin");
        using var tmp = new TempDir();
        string[] Args(string dir) => ["score", model, "--data", Shipped, "--out", dir, "--samples", "40", "--no-control"];

        using var reached = new ManualResetEventSlim();
        using var resume = new ManualResetEventSlim();
        var firstOut = new PausingWriter(reached, resume);
        var firstErr = new StringWriter();
        var first = Task.Run(() => CliMain.Run(Args(tmp.File("shared")), firstOut, firstErr));
        Assert.True(reached.Wait(TimeSpan.FromMinutes(2)), "the first run never printed: " + firstErr);

        var second = CliRunner.Run(Args(tmp.File("shared")));
        resume.Set();
        Assert.True(first.Wait(TimeSpan.FromMinutes(2)));
        Assert.True(first.Result == 0, firstErr.ToString());

        Assert.Equal(UserError.ExitCode, second.ExitCode);
        Assert.Single(second.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(tmp.File("shared"), second.Stderr);
        Assert.Contains($"another truthprobe run is writing here (pid {Environment.ProcessId}", second.Stderr);

        var single = CliRunner.Run(Args(tmp.File("single")));
        Assert.True(single.ExitCode == 0, single.Stderr);
        foreach (string f in new[] { "activations.safetensors", "scores.csv", "scores.npy", "probe_weights.safetensors", "heatmap.png" })
            Assert.True(File.ReadAllBytes(Path.Combine(tmp.File("shared"), f)).SequenceEqual(File.ReadAllBytes(Path.Combine(tmp.File("single"), f))), $"{f} differs from a single run's");
        Assert.Equal(Snapshot(tmp.File("single")).Keys.Order(), Snapshot(tmp.File("shared")).Keys.Order());
        Assert.False(File.Exists(tmp.File(".shared.lock")));
    }

    [Fact]
    public void Score_MoreFoldsThanRows_FailsBeforeTheModelIsRead_LeavingNoActivations()
    {
        using var tmp = new TempDir();
        // Not a model: an error about it would mean the folds were checked only after loading.
        File.WriteAllText(tmp.File("model.bin"), "not a checkpoint");
        var r = CliRunner.Run("score", tmp.File("model.bin"), "--data", Shipped, "--samples", "16", "--folds", "19", "--out", tmp.File("o"));
        Assert.Equal(UserError.ExitCode, r.ExitCode);
        Assert.Equal("error: 16 rows cannot fill 19 folds; give fewer folds or more rows (--folds)", r.Stderr.Trim());
        Assert.Empty(Directory.Exists(tmp.File("o")) ? Directory.GetFileSystemEntries(tmp.File("o")) : []);
        Assert.False(File.Exists(tmp.File(".o.lock")));
    }

    [Fact]
    public void Score_OutNamingAnExistingFileOrBelowOne_IsRefusedUpFront_AndTheFileKept()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.File("model.bin"), "not a checkpoint");
        File.WriteAllText(tmp.File("results"), "keep");
        var r = CliRunner.Run("score", tmp.File("model.bin"), "--data", Shipped, "--out", tmp.File("results"));
        Assert.Equal(UserError.ExitCode, r.ExitCode);
        Assert.Equal($"error: {tmp.File("results")}: is an existing file, and a folder is written here; choose a folder path (--out)", r.Stderr.Trim());
        Assert.Equal("keep", File.ReadAllText(tmp.File("results")));

        var under = CliRunner.Run("score", tmp.File("model.bin"), "--data", Shipped, "--out", tmp.File("results/run"));
        Assert.Equal(UserError.ExitCode, under.ExitCode);
        Assert.StartsWith($"error: {tmp.File("results/run")}: cannot write here (", under.Stderr);
        Assert.EndsWith("; choose a writable output path (--out)", under.Stderr.Trim());
        Assert.Equal("keep", File.ReadAllText(tmp.File("results")));
    }

    [Fact]
    public void TraceOntoItsModel_AndGatesOntoItsMap_AreRefused_InputsUntouched()
    {
        using var tmp = new TempDir();
        byte[] model = Encoding.ASCII.GetBytes("a llama2.c checkpoint would be here");
        File.WriteAllBytes(tmp.File("model.bin"), model);
        var trace = CliRunner.Run("trace", tmp.File("model.bin"), "--prompt", "Once", "--hooks", "blocks.0.attn.hook_z", "--out", tmp.File("model.bin"));
        Assert.Equal(UserError.ExitCode, trace.ExitCode);
        Assert.Contains($"{tmp.File("model.bin")}: is also an input of this run", trace.Stderr);
        Assert.Equal(model, File.ReadAllBytes(tmp.File("model.bin")));

        Npy.WriteFloat64(tmp.File("m.npy"), [0.6, 0.8, 1.0, 0.5], 2, 2);
        var before = Snapshot(tmp.Path);
        var gates = CliRunner.Run("gates", "--scores", tmp.File("m.npy"), "--mode", "contrast", "--lambda", "4.5", "--out", tmp.File("m.npy"));
        Assert.Equal(UserError.ExitCode, gates.ExitCode);
        Assert.Contains($"{tmp.File("m.npy")}: is also an input of this run", gates.Stderr);
        Assert.Equal(before, Snapshot(tmp.Path));
    }

    [Fact]
    public void PatchAndConvertOntoTheInputFolder_AreRefused_TheCheckpointUntouched()
    {
        using var tmp = new TempDir();
        var config = RandomCheckpoint.Config("llama");
        string folder = RandomCheckpoint.Write(tmp.File("m"), config, 4);
        Npy.WriteFloat64(tmp.File("s.npy"), Enumerable.Range(0, config.Layers * config.Heads).Select(i => 0.5 + i * 0.01).ToArray(), config.Layers, config.Heads);
        var before = Snapshot(folder);

        var patch = CliRunner.Run("patch", folder, "--scores", tmp.File("s.npy"), "--mode", "contrast", "--lambda", "4.5", "--out", folder + "/");
        Assert.Equal(UserError.ExitCode, patch.ExitCode);
        Assert.Contains("is also an input of this run", patch.Stderr);
        var convert = CliRunner.Run("convert", folder, "--out", tmp.File("x/../m"));
        Assert.Equal(UserError.ExitCode, convert.ExitCode);
        Assert.Contains("is also an input of this run", convert.Stderr);
        Assert.Equal(before, Snapshot(folder));
    }

    [Fact]
    public void ARerunThatFails_LeavesTheFolderWithoutItsManifest_WhichReadersThenRefuse()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp.File("run"));
        Npy.WriteFloat64(tmp.File("run/scores.npy"), [0.9, 0.6, 0.7, 0.8], 2, 2);
        File.WriteAllText(tmp.File("run/manifest.json"), "{}");
        Npy.WriteFloat64(tmp.File("other.npy"), [0.8, 0.65, 0.7, 0.9], 2, 2);
        var before = CliRunner.Run("compare", tmp.File("run"), tmp.File("other.npy"), "--out", tmp.File("c1"));
        Assert.True(before.ExitCode == 0, before.Stderr);

        // The rerun stops at the model, after it has claimed the folder: its old results no longer count as finished.
        File.WriteAllText(tmp.File("model.bin"), "not a checkpoint");
        Assert.Equal(UserError.ExitCode, CliRunner.Run("score", tmp.File("model.bin"), "--data", Shipped, "--samples", "20", "--out", tmp.File("run")).ExitCode);
        var after = CliRunner.Run("compare", tmp.File("run"), tmp.File("other.npy"), "--out", tmp.File("c2"));
        Assert.Equal(UserError.ExitCode, after.ExitCode);
        Assert.Equal($"error: {tmp.File("run")}: has scores.npy but no manifest.json, so the run that wrote it did not finish; rerun it into this folder, or give the score file itself", after.Stderr.Trim());
    }
}
