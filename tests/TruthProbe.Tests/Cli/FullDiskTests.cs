using System.Diagnostics;
using TruthProbe.Common;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Cli;

/// <summary>
/// Outputs onto a file system that fills up part-way (a 200 KB tmpfs, mounted where the test may; skipped where it
/// may not): one clear error naming the file, exit 2, and no file left behind that could pass for an output.
/// </summary>
public sealed class FullDiskTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly string _mount;
    private readonly bool _mounted;

    public FullDiskTests()
    {
        _mount = _tmp.File("small");
        Directory.CreateDirectory(_mount);
        _mounted = OperatingSystem.IsLinux() && Run("mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", _mount) == 0;
    }

    public void Dispose()
    {
        if (_mounted) Run("umount", _mount);
        _tmp.Dispose();
    }

    internal static int Run(string program, params string[] args)
    {
        try
        {
            var start = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (string a in args) start.ArgumentList.Add(a);
            using var p = Process.Start(start)!;
            p.WaitForExit();
            return p.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception) { return -1; }
    }

    private void AssertOneDiskFullError(string[] argv, string file)
    {
        Skip.IfNot(_mounted, "cannot mount a small tmpfs here (needs Linux and mount rights): the full-disk case is untested");
        var r = CliRunner.Run(argv);
        Assert.Equal(UserError.ExitCode, r.ExitCode);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.Contains($"{file}: the disk is full", r.Stderr);
        Assert.Empty(Directory.GetFiles(_mount, "*", SearchOption.AllDirectories));
    }

    [SkippableFact]
    public void Convert_OntoAFullDisk_OneErrorNoFile()
    {
        string model = SharedData.Path("models", "stories260K", "stories260K.bin");
        string before = Hashing.Sha256File(model);
        AssertOneDiskFullError(["convert", model, "--out", Path.Combine(_mount, "m.gguf")], Path.Combine(_mount, "m.gguf"));
        Assert.Equal(before, Hashing.Sha256File(model));
    }

    [SkippableFact]
    public void Score_OntoAFullDisk_OneErrorNoFile()
    {
        string model = SharedData.Path("models", "stories260K", "stories260K.bin");
        string data = Path.Combine(TruthProbe.Cli.RepoPaths.RepoRoot()!, "data", "tinystories_context_qa.jsonl");
        AssertOneDiskFullError(["score", model, "--data", data, "--samples", "300", "--out", Path.Combine(_mount, "s")],
            Path.Combine(_mount, "s", "activations.safetensors.partial"));
    }
}
