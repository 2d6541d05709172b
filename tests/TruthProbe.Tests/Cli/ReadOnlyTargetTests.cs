using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Tests.Gating;

namespace TruthProbe.Tests.Cli;

/// <summary>
/// Outputs into a read-only mount (a bind mount remounted read-only, which even root cannot write; mounted where the
/// test may, skipped where it may not), holding the previous run's results: one clear error, exit 2, the inputs and
/// the previous results untouched.
/// </summary>
public sealed class ReadOnlyTargetTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly string _mount;
    private readonly bool _mounted;

    public ReadOnlyTargetTests()
    {
        _mount = _tmp.File("ro");
        Directory.CreateDirectory(_mount);
        File.WriteAllText(Path.Combine(_mount, "previous.txt"), "a result of an earlier run\n");
        _mounted = OperatingSystem.IsLinux() && Run("mount", "--bind", _mount, _mount) == 0;
        if (_mounted && Run("mount", "-o", "remount,bind,ro", _mount) != 0)
        {
            Run("umount", _mount);
            _mounted = false;
        }
    }

    public void Dispose()
    {
        if (_mounted) Run("umount", _mount);
        _tmp.Dispose();
    }

    private static int Run(string program, params string[] args) => FullDiskTests.Run(program, args);

    /// <summary>Hash of every file under the inputs' folder and the mount.</summary>
    private Dictionary<string, string> Files() =>
        Directory.GetFiles(_tmp.Path, "*", SearchOption.AllDirectories).ToDictionary(f => f, Hashing.Sha256File);

    [SkippableTheory]
    [InlineData("gates", "g.npy")]
    [InlineData("compare", "cmp")]
    [InlineData("patch", "patched")]
    [InlineData("convert", "m.gguf")]
    [InlineData("trace", "t.safetensors")]
    [InlineData("lab pretrain", "lab")]
    public void OutputIntoAReadOnlyMount_OneClearErrorAndNothingChanged(string verb, string output)
    {
        Skip.IfNot(_mounted, "cannot bind-mount a folder read-only here (needs Linux and mount rights): the read-only target is untested");
        var config = RandomCheckpoint.Config("qwen2");
        string model = _tmp.File("m"), scores = _tmp.File("scores.npy"), outPath = Path.Combine(_mount, output);
        RandomModel.WriteHf(model, config, 3, WeightDType.F32);
        Npy.WriteFloat64(scores, Enumerable.Range(0, config.Layers * config.Heads).Select(i => 0.5 + 0.45 * Math.Cos(i * 2.3)).ToArray(), config.Layers, config.Heads);
        string[] gating = ["--scores", scores, "--mode", "contrast", "--lambda", "4.5"];
        string[] argv = verb switch
        {
            "gates" => ["gates", .. gating, "--out", outPath],
            "compare" => ["compare", scores, scores, "--out", outPath],
            "patch" => ["patch", model, .. gating, "--out", outPath],
            "convert" => ["convert", model, "--out", outPath],
            "trace" => ["trace", model, "--token-ids", "1,2", "--hooks", "logits", "--out", outPath],
            _ => ["lab", "pretrain", "--size", "tiny", "--steps", "2", "--out", outPath],
        };
        var before = Files();
        var r = CliRunner.Run(argv);
        Assert.Equal(UserError.ExitCode, r.ExitCode);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.Contains($"{outPath}: cannot write here (Read-only file system", r.Stderr);
        Assert.Equal(before, Files());
    }
}
