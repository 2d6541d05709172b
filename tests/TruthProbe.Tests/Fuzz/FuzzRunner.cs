using System.Globalization;
using TruthProbe.Cli;
using TruthProbe.Common;

namespace TruthProbe.Tests.Fuzz;

/// <summary>What one malformed input did to one command. Everything after <see cref="Accepted"/> is a defect.</summary>
public enum FuzzOutcome
{
    /// <summary>Exit 2 with one bounded line on stderr and no output left behind.</summary>
    Clean,
    /// <summary>Exit 0 on a variant that may be a valid file (a null optional field, a flipped data byte).</summary>
    Accepted,
    /// <summary>Exit 0 on a variant that is certainly malformed.</summary>
    Silent,
    /// <summary>An exception other than UserError (escaped, or reported by the CLI as unexpected).</summary>
    Crash,
    /// <summary>Exit 2, but the message is empty, several lines, or longer than the bound.</summary>
    Unclear,
    /// <summary>Failed, but the output path (or a sibling temporary) exists afterwards.</summary>
    Partial,
    Hang,
    /// <summary>The process grew by more than <see cref="FuzzRunner.MemoryLimitBytes"/> while running the case.</summary>
    Memory,
}

/// <summary>
/// One malformed (or possibly valid) version of a target's file. <paramref name="ValuesOnly"/>: only tensor values
/// changed (a NaN weight), which a command that reads no values (inspect) cannot see and need not refuse.
/// </summary>
public sealed record FuzzVariant(string Name, byte[] Bytes, bool MayPass = false, bool ValuesOnly = false);

/// <summary>
/// A way to read the target's file: the CLI argv (or a library call for formats no verb reads on its own),
/// given the folder holding the files and a fresh output path. Returns the exit code as the CLI would.
/// </summary>
public sealed record FuzzCommand(string Name, Func<string, string, TextWriter, TextWriter, int> Run)
{
    /// <summary>False for commands that read a model's shapes and metadata but none of its weight values.</summary>
    public bool ReadsValues { get; init; } = true;

    /// <summary>Set by ./bench/fuzz --debug: CLI commands run with --debug, so a crash's detail is its whole trace.</summary>
    public static bool Debug { get; set; }

    /// <summary>A CLI command line; "{dir}" and "{out}" in an argument are replaced by the folder and the output path.</summary>
    public static FuzzCommand Cli(params string[] argv) => new(string.Join(' ', argv.Take(2)),
        (dir, output, stdout, stderr) => CliMain.Run(argv.Select(a => a.Replace("{dir}", dir).Replace("{out}", output))
            .Concat(Debug ? [CliMain.DebugFlag] : []).ToArray(), stdout, stderr));

    /// <summary>A library reader, for formats that only a large model reads through the CLI (images: LLaVA).</summary>
    public static FuzzCommand Library(string name, Action<string> read) => new(name, (dir, _, _, stderr) =>
    {
        try
        {
            read(dir);
            return 0;
        }
        catch (UserError e)
        {
            stderr.WriteLine(CliMain.OneLine($"error: {e.Message}"));
            return UserError.ExitCode;
        }
    });
}

/// <summary>
/// A file format: <see cref="Setup"/> writes a valid instance of the file (named <see cref="FileName"/>) and
/// whatever else the commands need into a folder and returns the file's bytes; <see cref="Variants"/> makes the
/// malformed versions from those bytes; each variant replaces the file and goes through every command.
/// </summary>
public sealed record FuzzTarget(
    string Format,
    string FileName,
    Func<string, byte[]> Setup,
    Func<byte[], IEnumerable<FuzzVariant>> Variants,
    IReadOnlyList<FuzzCommand> Commands)
{
    /// <summary>Why the target cannot run here (the shared models are absent), or null.</summary>
    public Func<string?> Unavailable { get; init; } = () => null;
}

public sealed record FuzzResult(string Format, string Variant, string Command, FuzzOutcome Outcome, string Detail);

/// <summary>
/// Runs variants through commands in this process (through the CLI entry point, as a user calls it), each on its
/// own thread with a time limit, under a memory watchdog, and classifies what happened.
/// </summary>
public sealed class FuzzRunner
{
    public const long MemoryLimitBytes = 1L << 30;
    /// <summary>An error line longer than this is reported as unclear: echoed values must be truncated.</summary>
    public const int MaxErrorLine = CliMain.MaxErrorChars;

    private readonly TimeSpan _timeout;

    public FuzzRunner(TimeSpan timeout) => _timeout = timeout;

    /// <summary>
    /// Every <paramref name="stride"/>-th variant of the target (all when 1) through every command, after checking that
    /// the valid file passes every command (a fuzz run whose seed already fails proves nothing).
    /// </summary>
    public List<FuzzResult> Run(FuzzTarget target, int stride = 1) => Run(target, (i, _) => i % stride == 0);

    /// <summary>The variants <paramref name="pick"/> chooses (by index and variant), as <see cref="Run(FuzzTarget, int)"/>.</summary>
    public List<FuzzResult> Run(FuzzTarget target, Func<int, FuzzVariant, bool> pick)
    {
        string dir = Directory.CreateTempSubdirectory($"truthprobe-fuzz-{target.Format}-").FullName;
        try
        {
            byte[] seed = target.Setup(dir);
            string file = Path.Combine(dir, target.FileName);
            var results = new List<FuzzResult>();
            int n = 0;
            foreach (var command in target.Commands)
            {
                var check = RunOne(dir, command, n++);
                if (check.Code != 0)
                    throw new InvalidOperationException($"fuzz seed of {target.Format} fails '{command.Name}' (exit {check.Code}): {check.Stderr}{check.Exception}");
            }
            foreach (var variant in target.Variants(seed).Where((v, i) => pick(i, v)))
            {
                File.WriteAllBytes(file, variant.Bytes);
                foreach (var command in target.Commands)
                {
                    var run = RunOne(dir, command, n++);
                    var (outcome, detail) = Classify(variant, command, run);
                    results.Add(new FuzzResult(target.Format, variant.Name, command.Name, outcome, detail));
                }
            }
            return results;
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private sealed record Run1(int Code, string Stderr, Exception? Exception, bool TimedOut, long GrowthBytes, bool OutputLeft);

    private Run1 RunOne(string dir, FuzzCommand command, int index)
    {
        string output = Path.Combine(dir, $"out{index}");
        var before = Directory.GetFileSystemEntries(dir).ToHashSet();
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = -1;
        Exception? exception = null;
        using var watch = new MemoryWatch();
        // A thread of its own so that a hang can be abandoned; 16 MB of stack so that deep recursion is a finding, not the runner's death.
        var thread = new Thread(() =>
        {
            try { code = command.Run(dir, output, stdout, stderr); }
            catch (Exception e) { exception = e; }
        }, 16 << 20) { IsBackground = true };
        thread.Start();
        bool finished = thread.Join(_timeout);
        long growth = watch.Stop();
        if (!finished) return new Run1(-1, "", null, true, growth, false);
        var created = Directory.GetFileSystemEntries(dir).Where(e => !before.Contains(e)).ToList();
        // Removed whatever the outcome, so that the next case starts from the same folder.
        foreach (string entry in created)
        {
            if (Directory.Exists(entry)) Directory.Delete(entry, recursive: true);
            else File.Delete(entry);
        }
        bool left = created.Count > 0;
        return new Run1(code, stderr.ToString(), exception, false, growth, code != 0 && left);
    }

    private static (FuzzOutcome, string) Classify(FuzzVariant variant, FuzzCommand command, Run1 run)
    {
        if (run.TimedOut) return (FuzzOutcome.Hang, "");
        if (run.GrowthBytes > MemoryLimitBytes) return (FuzzOutcome.Memory, $"{run.GrowthBytes / 1e9:0.0} GB");
        if (run.Exception != null) return (FuzzOutcome.Crash, OneLine(run.Exception.GetType().Name + ": " + run.Exception.Message));
        if (run.Code == 0)
            return variant.MayPass || (variant.ValuesOnly && !command.ReadsValues) ? (FuzzOutcome.Accepted, "") : (FuzzOutcome.Silent, "exit 0");
        string message = run.Stderr.TrimEnd('\n');
        if (run.Code != UserError.ExitCode) return (FuzzOutcome.Crash, OneLine(message));
        if (run.OutputLeft) return (FuzzOutcome.Partial, OneLine(message));
        bool oneLine = message.Length > 0 && !message.Contains('\n') && message.Length <= MaxErrorLine;
        return oneLine ? (FuzzOutcome.Clean, message) : (FuzzOutcome.Unclear, $"{message.Split('\n').Length} lines, {message.Length} chars");
    }

    private static string OneLine(string s)
    {
        if (FuzzCommand.Debug) return s;
        string line = s.Replace('\n', ' ');
        return line.Length > 200 ? line[..200] + "..." : line;
    }

    /// <summary>
    /// The table of outcomes, one row per format: the counts of each outcome, then every defect with its
    /// variant, command and message.
    /// </summary>
    public static string Table(IEnumerable<FuzzResult> results)
    {
        var all = results.ToList();
        var outcomes = Enum.GetValues<FuzzOutcome>();
        var text = new System.Text.StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{"format",-18}{"cases",7}");
        foreach (var o in outcomes) text.Append(CultureInfo.InvariantCulture, $"{o.ToString().ToLowerInvariant(),9}");
        text.AppendLine();
        foreach (var group in all.GroupBy(r => r.Format).Append(all.GroupBy(_ => "total").Single()))
        {
            text.Append(CultureInfo.InvariantCulture, $"{group.Key,-18}{group.Count(),7}");
            foreach (var o in outcomes) text.Append(CultureInfo.InvariantCulture, $"{group.Count(r => r.Outcome == o),9}");
            text.AppendLine();
        }
        foreach (var r in all.Where(r => IsDefect(r.Outcome)))
            text.AppendLine(CultureInfo.InvariantCulture, $"{r.Outcome.ToString().ToLowerInvariant()}: {r.Format} / {r.Variant} / {r.Command}: {r.Detail}");
        return text.ToString();
    }

    public static bool IsDefect(FuzzOutcome outcome) => outcome > FuzzOutcome.Accepted;

    /// <summary>
    /// Peak growth of the process during one case: managed heap and resident set, sampled every 2 ms (a tiny file
    /// that asks for gigabytes gets there within milliseconds and stays, so sampling does not miss it).
    /// </summary>
    private sealed class MemoryWatch : IDisposable
    {
        private readonly long _heap0 = GC.GetTotalMemory(false), _rss0 = Environment.WorkingSet;
        private long _peak;
        private volatile bool _stop;
        private readonly Thread _thread;

        public MemoryWatch()
        {
            _thread = new Thread(() =>
            {
                while (!_stop)
                {
                    long growth = Math.Max(GC.GetTotalMemory(false) - _heap0, Environment.WorkingSet - _rss0);
                    if (growth > _peak) _peak = growth;
                    Thread.Sleep(2);
                }
            }) { IsBackground = true };
            _thread.Start();
        }

        public long Stop()
        {
            _stop = true;
            _thread.Join();
            return _peak;
        }

        public void Dispose() => _stop = true;
    }
}
