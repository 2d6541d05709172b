using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.Json;

namespace TruthProbe.Common;

/// <summary>
/// Guards a run's output path before any work is done: it must not be one of the run's inputs, it must be
/// writable and of the expected kind (a folder or a file), and it is locked against a second run. The lock
/// is a file beside the output (<c>.NAME.lock</c>), created atomically, holding the holder's pid, host and
/// start time; a lock whose process is gone (killed, crashed) is stale and is taken over with a note. The
/// lock sits beside rather than inside the output so that a folder published by renaming (patch, convert)
/// and listings of a results folder never see it.
/// </summary>
public sealed class OutputTarget : IDisposable
{
    /// <summary>
    /// The file a multi-file results folder writes last: a folder without it is unfinished (or being
    /// rewritten) and no reader may take it as a result.
    /// </summary>
    public const string CompletionMarker = "manifest.json";

    /// <summary>How old an empty or unreadable lock must be before it counts as stale: a holder writes its record in the same call that creates the file.</summary>
    private static readonly TimeSpan UnreadableGrace = TimeSpan.FromSeconds(10);

    public string Path { get; }
    public string LockPath { get; }
    private readonly string _record;

    private OutputTarget(string path, string lockPath, string record) => (Path, LockPath, _record) = (path, lockPath, record);

    /// <summary>
    /// Checks <paramref name="output"/> against <paramref name="inputs"/> (paths that do not exist are
    /// ignored), checks that it is writable, and takes its lock. A folder output's old
    /// <see cref="CompletionMarker"/> is removed once the lock is held, so that a rerun that fails midway
    /// never leaves an old manifest over new files.
    /// </summary>
    /// <param name="folder">the output is a folder (else a file).</param>
    /// <param name="log">where the note about a taken-over stale lock goes.</param>
    public static OutputTarget Claim(string output, bool folder, IEnumerable<string> inputs, TextWriter log)
    {
        if (string.IsNullOrWhiteSpace(output)) throw new UserError("the output path is empty; name a file or folder to write") { Field = "out" };
        string full = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(output));
        RefuseInputs(output, inputs);
        if (folder && File.Exists(full))
            throw new UserError($"{output}: is an existing file, and a folder is written here; choose a folder path") { Field = "out" };
        if (!folder && Directory.Exists(full))
            throw new UserError($"{output}: is an existing folder, and a file is written here; name the file to write") { Field = "out" };
        string? parent = System.IO.Path.GetDirectoryName(full);
        if (parent == null) throw new UserError($"{output}: is a file system root; choose a folder below it") { Field = "out" };

        string lockPath = System.IO.Path.Combine(parent, "." + System.IO.Path.GetFileName(full) + ".lock");
        string record = Record();
        Writable(output, () => Directory.CreateDirectory(parent));
        Acquire(output, lockPath, record, log);
        var target = new OutputTarget(full, lockPath, record);
        try
        {
            if (folder && Directory.Exists(full))
            {
                Writable(output, () => File.Delete(Probe(full)));
                Writable(output, () => File.Delete(System.IO.Path.Combine(full, CompletionMarker)));
            }
            // With the lock held no other run writes here: temporary files (AtomicFile's) are a killed run's debris.
            var debris = (folder && Directory.Exists(full) ? Directory.EnumerateFiles(full, ".*.tmp", SearchOption.AllDirectories) : [])
                .Concat(Directory.EnumerateFiles(parent, "." + System.IO.Path.GetFileName(full) + (folder ? ".lock.*.tmp" : ".*.tmp")));
            foreach (string file in debris.ToList()) Writable(output, () => File.Delete(file));
        }
        catch
        {
            target.Dispose();
            throw;
        }
        return target;
    }

    /// <summary>Refuses an output path that names one of the inputs (after resolving symbolic links): writing it would destroy the input.</summary>
    public static void RefuseInputs(string output, IEnumerable<string> inputs)
    {
        string outReal = RealPath(output);
        foreach (string input in inputs)
            if ((File.Exists(input) || Directory.Exists(input)) && RealPath(input) == outReal)
                throw new UserError($"{output}: is also an input of this run ({input}); writing it would destroy the input, choose another output path") { Field = "out" };
    }

    /// <summary>True when <paramref name="folder"/> holds a finished result: its <see cref="CompletionMarker"/> was written.</summary>
    public static bool IsComplete(string folder) => File.Exists(System.IO.Path.Combine(folder, CompletionMarker));

    public void Dispose()
    {
        // Only our own record is removed: a lock that was (wrongly) taken over by another run stays its.
        try
        {
            if (File.Exists(LockPath) && File.ReadAllText(LockPath) == _record) File.Delete(LockPath);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static void Acquire(string output, string lockPath, string record, TextWriter log)
    {
        // A few rounds: each one either creates the lock, reports a live holder, or removes a stale lock.
        for (int round = 0; round < 3; round++)
        {
            // The record is written first and linked into place whole (a move that refuses an existing target): a run
            // killed at any point leaves either no lock or one naming its pid, never an empty one a rerun cannot judge.
            string temp = $"{lockPath}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
            try
            {
                File.WriteAllText(temp, record);
                File.Move(temp, lockPath, overwrite: false);
                return;
            }
            catch (IOException) when (File.Exists(lockPath)) { AtomicFile.TryDelete(temp); }
            catch (FileNotFoundException) { continue; }   // our record was swept as debris by the holder's claim: try again
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                AtomicFile.TryDelete(temp);
                throw CannotWrite(output, e);
            }

            string seen;
            try { seen = File.ReadAllText(lockPath); }
            catch (FileNotFoundException) { continue; }   // released between our two calls
            var holder = Holder.Parse(seen);
            string? stale = Stale(holder, lockPath);
            if (stale == null)
                throw new UserError($"{output}: another truthprobe run is writing here (pid {holder?.Pid.ToString(CultureInfo.InvariantCulture) ?? "unknown"}" +
                    $"{(holder == null ? "" : $" on {holder.Host}, started {holder.Started:u}")}); wait for it to finish or choose another output path " +
                    $"(if that run is gone, delete {lockPath})") { Field = "out" };
            if (TakeOver(lockPath, seen))
                log.WriteLine($"note: {lockPath}: took over a stale lock ({stale})");
        }
        throw new UserError($"{output}: the lock {lockPath} keeps changing hands; another run is starting here, retry or choose another output path") { Field = "out" };
    }

    /// <summary>Why the lock's holder is gone, or null while it may be running.</summary>
    private static string? Stale(Holder? holder, string lockPath)
    {
        if (holder == null)
        {
            DateTime written = File.GetLastWriteTimeUtc(lockPath);
            return DateTime.UtcNow - written > UnreadableGrace ? $"unreadable, last written {written:u}" : null;
        }
        // A pid on another machine cannot be checked: it counts as running.
        if (holder.Host != Environment.MachineName) return null;
        try
        {
            using var p = Process.GetProcessById(holder.Pid);
            // A pid the system gave to a later process: the holder itself is gone.
            return Math.Abs((p.StartTime.ToUniversalTime() - holder.Started).TotalSeconds) > 1
                ? $"pid {holder.Pid} now belongs to a process started {p.StartTime.ToUniversalTime():u}, after the holder" : null;
        }
        catch (ArgumentException) { return $"pid {holder.Pid}, started {holder.Started:u}, is no longer running"; }
        catch (InvalidOperationException) { return $"pid {holder.Pid}, started {holder.Started:u}, is no longer running"; }
        catch (System.ComponentModel.Win32Exception) { return null; }   // a process this user may not inspect: it exists
    }

    /// <summary>
    /// Removes a stale lock unless it changed since it was read: it is renamed aside first (one of two racing
    /// runs gets it), and put back if what was renamed is a new holder's.
    /// </summary>
    private static bool TakeOver(string lockPath, string seen)
    {
        string aside = lockPath + $".{Environment.ProcessId}.{Guid.NewGuid():N}.stale";
        try { File.Move(lockPath, aside); }
        catch (FileNotFoundException) { return false; }
        if (File.ReadAllText(aside) == seen)
        {
            File.Delete(aside);
            return true;
        }
        try { File.Move(aside, lockPath); }
        catch (IOException) { File.Delete(aside); }   // yet another run locked meanwhile: it is the holder now
        return false;
    }

    private static string Record()
    {
        using var self = Process.GetCurrentProcess();
        return new JsonObject
        {
            ["pid"] = Environment.ProcessId,
            ["host"] = Environment.MachineName,
            ["started"] = self.StartTime.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture),
            ["command"] = string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
        }.ToJsonString();
    }

    private sealed record Holder(int Pid, string Host, DateTime Started)
    {
        public static Holder? Parse(string text)
        {
            try
            {
                if (JsonNode.Parse(text) is not JsonObject o) return null;
                if (o["pid"]?.GetValueKind() != JsonValueKind.Number || o["host"]?.GetValueKind() != JsonValueKind.String
                    || o["started"]?.GetValueKind() != JsonValueKind.String) return null;
                if (!DateTime.TryParse((string)o["started"]!, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var started)) return null;
                return new Holder((int)o["pid"]!, (string)o["host"]!, started.ToUniversalTime());
            }
            catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException) { return null; }
        }
    }

    private static string Probe(string folder)
    {
        string probe = System.IO.Path.Combine(folder, $".write-test.{Environment.ProcessId}.{Guid.NewGuid():N}");
        using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write)) { }
        return probe;
    }

    /// <summary>Runs a file system step of the claim, turning a refusal by the system into one clear error.</summary>
    private static void Writable(string output, Action step)
    {
        try { step(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw CannotWrite(output, e); }
    }

    private static UserError CannotWrite(string output, Exception e) =>
        new($"{output}: cannot write here ({e.Message}); choose a writable output path", e) { Field = "out" };

    /// <summary>The absolute path with symbolic links resolved along it, so that two names of one file compare equal (hard links are not detected).</summary>
    private static string RealPath(string path)
    {
        string full = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(path));
        string? parent = System.IO.Path.GetDirectoryName(full);
        if (parent == null) return full;
        string joined = System.IO.Path.Combine(RealPath(parent), System.IO.Path.GetFileName(full));
        FileSystemInfo info = Directory.Exists(joined) ? new DirectoryInfo(joined) : new FileInfo(joined);
        if (info.LinkTarget == null) return joined;
        try { return info.ResolveLinkTarget(returnFinalTarget: true) is { } target ? RealPath(target.FullName) : joined; }
        catch (IOException) { return joined; }   // a link cycle: compared as written
    }
}
