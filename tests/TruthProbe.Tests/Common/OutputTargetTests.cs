using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using TruthProbe.Common;

namespace TruthProbe.Tests.Common;

public class OutputTargetTests
{
    private static string LockOf(string output) => Path.Combine(Path.GetDirectoryName(output)!, "." + Path.GetFileName(output) + ".lock");

    private static string LockRecord(int pid, DateTime started, string? host = null) => new JsonObject
    {
        ["pid"] = pid,
        ["host"] = host ?? Environment.MachineName,
        ["started"] = started.ToString("O", CultureInfo.InvariantCulture),
        ["command"] = "score m --out x",
    }.ToJsonString();

    private static DateTime OwnStart()
    {
        using var self = Process.GetCurrentProcess();
        return self.StartTime.ToUniversalTime();
    }

    /// <summary>The pid of a process that has exited (and been reaped): nothing runs under it until the system reuses it.</summary>
    private static int DeadPid()
    {
        using var p = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        p.WaitForExit();
        return p.Id;
    }

    [Fact]
    public void Claim_WritesTheHoldersPidBesideTheOutput_SecondClaimNamesFolderAndPid_ReleaseRemovesIt()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("run");
        var log = new StringWriter();
        using (var held = OutputTarget.Claim(dir, folder: true, [], log))
        {
            var record = JsonNode.Parse(File.ReadAllText(LockOf(dir)))!;
            Assert.Equal(Environment.ProcessId, (int)record["pid"]!);
            Assert.Equal(Environment.MachineName, (string?)record["host"]);

            var e = Assert.Throws<UserError>(() => OutputTarget.Claim(dir, folder: true, [], log));
            Assert.Contains(dir, e.Message);
            Assert.Contains($"pid {Environment.ProcessId}", e.Message);
            Assert.Equal("out", e.Field);
        }
        Assert.False(File.Exists(LockOf(dir)));
        Assert.Equal("", log.ToString());
        OutputTarget.Claim(dir, folder: true, [], log).Dispose();
    }

    [Fact]
    public void StaleLock_OfAnExitedProcess_IsTakenOverWithANote()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("run");
        int dead = DeadPid();
        File.WriteAllText(LockOf(dir), LockRecord(dead, DateTime.UtcNow.AddMinutes(-5)));
        var log = new StringWriter();
        using (OutputTarget.Claim(dir, folder: true, [], log))
            Assert.Equal(Environment.ProcessId, (int)JsonNode.Parse(File.ReadAllText(LockOf(dir)))!["pid"]!);
        Assert.Contains($"took over a stale lock (pid {dead},", log.ToString());
        Assert.Contains("no longer running", log.ToString());
    }

    [Fact]
    public void LockOfALivePid_StartedLaterThanTheHolder_IsStale_ButTheSameStartTimeHoldsIt()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("run");
        // This process is alive; a record with its pid but an earlier start was written by a process that reused nothing but the number.
        File.WriteAllText(LockOf(dir), LockRecord(Environment.ProcessId, OwnStart().AddHours(-1)));
        var log = new StringWriter();
        OutputTarget.Claim(dir, folder: true, [], log).Dispose();
        Assert.Contains($"pid {Environment.ProcessId} now belongs to a process started", log.ToString());

        File.WriteAllText(LockOf(dir), LockRecord(Environment.ProcessId, OwnStart()));
        Assert.Contains($"pid {Environment.ProcessId}", Assert.Throws<UserError>(() => OutputTarget.Claim(dir, folder: true, [], log)).Message);
        // A holder on another machine cannot be checked: it holds the lock whatever its pid.
        File.WriteAllText(LockOf(dir), LockRecord(DeadPid(), OwnStart(), host: Environment.MachineName + "-elsewhere"));
        Assert.Contains("-elsewhere", Assert.Throws<UserError>(() => OutputTarget.Claim(dir, folder: true, [], log)).Message);
    }

    [Fact]
    public void UnreadableLock_HoldsWhileFresh_IsStaleOnceOld()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("run");
        File.WriteAllText(LockOf(dir), "");
        Assert.Throws<UserError>(() => OutputTarget.Claim(dir, folder: true, [], TextWriter.Null));
        File.SetLastWriteTimeUtc(LockOf(dir), DateTime.UtcNow.AddMinutes(-1));
        var log = new StringWriter();
        OutputTarget.Claim(dir, folder: true, [], log).Dispose();
        Assert.Contains("unreadable", log.ToString());
    }

    [Fact]
    public void OutputThatIsAnInput_ByPathOrThroughASymlink_IsRefused_AndTheInputIsUntouched()
    {
        using var tmp = new TempDir();
        string input = tmp.File("m.npy");
        File.WriteAllText(input, "map");
        File.CreateSymbolicLink(tmp.File("link.npy"), input);
        Directory.CreateDirectory(tmp.File("sub"));
        foreach (string output in new[] { input, tmp.File("sub/../m.npy"), tmp.File("link.npy") })
        {
            var e = Assert.Throws<UserError>(() => OutputTarget.Claim(output, folder: false, ["--unrelated", input], TextWriter.Null));
            Assert.Contains("is also an input", e.Message);
        }
        Assert.Equal("map", File.ReadAllText(input));
        Assert.False(File.Exists(LockOf(input)));
        OutputTarget.Claim(tmp.File("other.npy"), folder: false, [input], TextWriter.Null).Dispose();
    }

    [Fact]
    public void WrongKindOrAFileAsParent_IsOneClearError()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.File("file"), "x");
        Assert.Contains("is an existing file", Assert.Throws<UserError>(() => OutputTarget.Claim(tmp.File("file"), folder: true, [], TextWriter.Null)).Message);
        Directory.CreateDirectory(tmp.File("dir"));
        Assert.Contains("is an existing folder", Assert.Throws<UserError>(() => OutputTarget.Claim(tmp.File("dir"), folder: false, [], TextWriter.Null)).Message);
        // A parent that is a file cannot hold the output.
        Assert.Contains("cannot write here", Assert.Throws<UserError>(() => OutputTarget.Claim(tmp.File("file/out"), folder: true, [], TextWriter.Null)).Message);
    }

    [SkippableFact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void ReadOnlyParentOrFolder_IsOneClearError()
    {
        using var tmp = new TempDir();
        Skip.If(Environment.UserName == "root", "root writes into read-only folders");
        Directory.CreateDirectory(tmp.File("ro/out"));
        File.SetUnixFileMode(tmp.File("ro/out"), UnixFileMode.UserRead | UnixFileMode.UserExecute);
        File.SetUnixFileMode(tmp.File("ro"), UnixFileMode.UserRead | UnixFileMode.UserExecute);
        try
        {
            Assert.Contains("cannot write here", Assert.Throws<UserError>(() => OutputTarget.Claim(tmp.File("ro/new"), folder: true, [], TextWriter.Null)).Message);
            Assert.Contains("cannot write here", Assert.Throws<UserError>(() => OutputTarget.Claim(tmp.File("ro/out"), folder: true, [], TextWriter.Null)).Message);
        }
        finally
        {
            File.SetUnixFileMode(tmp.File("ro"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            File.SetUnixFileMode(tmp.File("ro/out"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    [Fact]
    public void ClaimingAFolder_RemovesItsOldManifest_SoAFailedRerunNeverLooksComplete()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("run");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "manifest.json"), "{}");
        File.WriteAllText(Path.Combine(dir, "scores.csv"), "old");
        Assert.True(OutputTarget.IsComplete(dir));
        OutputTarget.Claim(dir, folder: true, [], TextWriter.Null).Dispose();
        Assert.False(OutputTarget.IsComplete(dir));
        Assert.Equal("old", File.ReadAllText(Path.Combine(dir, "scores.csv")));
        Assert.Equal(["scores.csv"], Directory.GetFiles(dir).Select(Path.GetFileName));
    }

    [Fact]
    public void Claim_RemovesTheTemporaryFilesOfAKilledRun_AndNothingElse()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp.File("out/images"));
        string[] debris = [tmp.File("out/.scores.csv.4242.0123abcd.tmp"), tmp.File("out/images/.a.png.4242.89ef.tmp"), tmp.File(".m.gguf.4242.77.tmp")];
        string[] kept = [tmp.File("out/scores.csv"), tmp.File("out/notes.tmp.txt"), tmp.File(".other.gguf.4242.77.tmp")];
        foreach (string f in debris.Concat(kept)) File.WriteAllText(f, "x");
        using (OutputTarget.Claim(tmp.File("out"), folder: true, [], TextWriter.Null)) { }
        using (OutputTarget.Claim(tmp.File("m.gguf"), folder: false, [], TextWriter.Null)) { }
        Assert.All(debris, f => Assert.False(File.Exists(f), f));
        Assert.All(kept, f => Assert.True(File.Exists(f), f));
    }
}
