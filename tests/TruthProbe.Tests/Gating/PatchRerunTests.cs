using System.Diagnostics;
using TruthProbe.Formats;
using TruthProbe.Gating;
using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Gating;

/// <summary>
/// What fault injection found in <c>patch</c>: a run killed after its rename left a folder the rerun refused, and a run
/// killed before it left its staging folder (as large as the model) beside the output for good.
/// </summary>
public sealed class PatchRerunTests
{
    private static (string Model, string[] Gating) Inputs(TempDir tmp)
    {
        var config = RandomCheckpoint.Config("qwen2");
        RandomModel.WriteHf(tmp.File("m"), config, 3, WeightDType.F32);
        Npy.WriteFloat64(tmp.File("s.npy"), Enumerable.Range(0, config.Layers * config.Heads).Select(i => 0.5 + 0.45 * Math.Cos(i * 2.3)).ToArray(), config.Layers, config.Heads);
        return (tmp.File("m"), ["--scores", tmp.File("s.npy"), "--mode", "contrast", "--lambda", "4.5"]);
    }

    /// <summary>The pid of a process that has exited (so no longer runs).</summary>
    private static int GonePid()
    {
        using var p = Process.Start(new ProcessStartInfo("true"))!;
        p.WaitForExit();
        return p.Id;
    }

    [Fact]
    public void Rerun_ReplacesAFinishedPatch_AndRemovesAKilledRunsStaging()
    {
        using var tmp = new TempDir();
        var (model, gating) = Inputs(tmp);
        string[] patch = ["patch", model, .. gating, "--out", tmp.File("p")];
        Assert.Equal(0, CliRunner.Run(patch).ExitCode);
        byte[] first = File.ReadAllBytes(tmp.File("p/model.safetensors"));
        string killed = tmp.File($"p.partial-{GonePid()}-0123"), replacing = tmp.File($"p.old-{GonePid()}-4567");
        Directory.CreateDirectory(killed);
        File.WriteAllText(Path.Combine(killed, "model.safetensors"), "half");
        Directory.CreateDirectory(replacing);

        var again = CliRunner.Run(patch);
        Assert.True(again.ExitCode == 0, again.Stderr);
        Assert.Equal(first, File.ReadAllBytes(tmp.File("p/model.safetensors")));
        Assert.False(Directory.Exists(killed));
        Assert.False(Directory.Exists(replacing));
        Assert.Equal(["m", "p", "s.npy"], Directory.GetFileSystemEntries(tmp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void AFolderThatIsNotAPatch_IsStillRefused_AndALiveRunsStagingKept()
    {
        using var tmp = new TempDir();
        var (model, gating) = Inputs(tmp);
        Directory.CreateDirectory(tmp.File("p"));
        File.WriteAllText(tmp.File("p/notes.txt"), "mine");
        string live = tmp.File($"p.partial-{Environment.ProcessId}-89ab");
        Directory.CreateDirectory(live);
        var r = CliRunner.Run(["patch", model, .. gating, "--out", tmp.File("p")]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("exists and is not empty", r.Stderr);
        Assert.Equal("mine", File.ReadAllText(tmp.File("p/notes.txt")));

        // Emptied, the folder takes the patch; the staging folder of a process that runs (this one) is left alone.
        File.Delete(tmp.File("p/notes.txt"));
        CheckpointPatcher.Patch(model, tmp.File("p"), new GateFold(new float[3, 4], GateSite.Head, new Dictionary<string, string>()));
        Assert.True(File.Exists(tmp.File($"p/{CheckpointPatcher.ManifestName}")));
        Assert.True(Directory.Exists(live));
    }
}
