using System.Diagnostics;
using System.Text.Json.Nodes;
using TruthProbe.Cli;
using TruthProbe.Common;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Cli;

/// <summary>
/// kill -9 part-way through a verb, then the same command again: the output folder must end as an uninterrupted run
/// leaves it, file for file (values that differ between two uninterrupted runs, i.e. timings, aside), with no
/// temporary or lock file left. The CLI runs as a child process so that it can be killed; the kill times are
/// seeded fractions of an uninterrupted run's duration. TRUTHPROBE_FAULT_KILLS raises the kills per verb (1 here).
/// </summary>
public sealed partial class FaultInjectionTests : IDisposable
{
    private static readonly string Cli = typeof(CliMain).Assembly.Location;
    private static int Kills => int.TryParse(Environment.GetEnvironmentVariable("TRUTHPROBE_FAULT_KILLS"), out int k) && k > 0 ? k : 1;
    private static string Shipped => Path.Combine(RepoPaths.RepoRoot()!, "data", "tinystories_context_qa.jsonl");

    private static Process Start(IEnumerable<string> args)
    {
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Cli);
        foreach (string a in args) start.ArgumentList.Add(a);
        // One worker thread: the suite runs test classes in parallel, and the kill times assume a steady pace.
        start.Environment["DOTNET_PROCESSOR_COUNT"] = "1";
        return Process.Start(start)!;
    }

    private static double RunToEnd(IReadOnlyList<string> args)
    {
        var clock = Stopwatch.StartNew();
        using var p = Start(args);
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"truthprobe {string.Join(' ', args)} exited {p.ExitCode}: {stderr.Result}");
        return clock.Elapsed.TotalSeconds;
    }

    private static void KillAfter(IReadOnlyList<string> args, TimeSpan after)
    {
        using var p = Start(args);
        _ = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(after)) p.Kill(entireProcessTree: true);
        p.WaitForExit();
    }

    /// <summary>Every file under <paramref name="dir"/>: JSON files parsed (so that volatile values can be set aside), others as their hash.</summary>
    private static Dictionary<string, JsonNode?> Snapshot(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToDictionary(
            f => Path.GetRelativePath(dir, f),
            f => f.EndsWith(".json", StringComparison.Ordinal) ? JsonNode.Parse(File.ReadAllText(f)) : JsonValue.Create(Hashing.Sha256File(f)));

    /// <summary>The JSON paths whose values differ between <paramref name="a"/> and <paramref name="b"/>.</summary>
    private static IEnumerable<string> Differences(JsonNode? a, JsonNode? b, string path)
    {
        if (a is JsonObject oa && b is JsonObject ob)
            return oa.Select(kv => kv.Key).Union(ob.Select(kv => kv.Key)).SelectMany(k => Differences(oa[k], ob[k], $"{path}.{k}"));
        if (a is JsonArray aa && b is JsonArray ab && aa.Count == ab.Count)
            return aa.Select((x, i) => (x, i)).SelectMany(p => Differences(p.x, ab[p.i], $"{path}[{p.i}]"));
        return JsonNode.DeepEquals(a, b) ? [] : [path];
    }

    private static HashSet<string> DifferencesOf(Dictionary<string, JsonNode?> a, Dictionary<string, JsonNode?> b) =>
        a.Keys.Union(b.Keys).SelectMany(f => a.ContainsKey(f) && b.ContainsKey(f) ? Differences(a[f], b[f], f) : [f + " (present in one only)"]).ToHashSet();

    /// <summary>
    /// Two uninterrupted runs fix what may vary; then each kill + rerun must match the first run everywhere else.
    /// The runs go into one path, so that paths written into the outputs agree.
    /// </summary>
    /// <param name="alsoVolatile">values a rerun may change on purpose (what it found in a cache), beside timings.</param>
    private static void KilledAndRerun_EndsAsAnUninterruptedRun(string outDir, Func<string[]> command, int seed, Func<string, bool>? alsoVolatile = null)
    {
        double seconds = RunToEnd(command());
        var reference = Snapshot(outDir);
        Directory.Delete(outDir, recursive: true);
        RunToEnd(command());
        // Timings are volatile even when two runs happen to round them alike.
        var volatilePaths = DifferencesOf(reference, Snapshot(outDir));
        static bool Timing(string path) => path.Contains("timings", StringComparison.Ordinal) || path.Contains("seconds", StringComparison.Ordinal) || path.Contains("per_second", StringComparison.Ordinal);
        Assert.DoesNotContain(volatilePaths, p => p.EndsWith("(present in one only)", StringComparison.Ordinal) || !p.Contains(".json", StringComparison.Ordinal));

        var rng = new Random(seed);
        for (int kill = 0; kill < Kills; kill++)
        {
            Directory.Delete(outDir, recursive: true);
            var after = TimeSpan.FromSeconds(seconds * (0.15 + 0.7 * rng.NextDouble()));
            KillAfter(command(), after);
            RunToEnd(command());
            var rerun = Snapshot(outDir);
            var unexpected = DifferencesOf(reference, rerun).Except(volatilePaths).Where(p => !Timing(p) && alsoVolatile?.Invoke(p) != true).ToList();
            Assert.True(unexpected.Count == 0, $"killed after {after.TotalSeconds:0.00} s of {seconds:0.00} s, the rerun differs: {string.Join(", ", unexpected.Take(5))}");
            Assert.DoesNotContain(rerun.Keys, f => f.Contains(".tmp", StringComparison.Ordinal) || f.EndsWith(".lock", StringComparison.Ordinal) || f.EndsWith(".partial", StringComparison.Ordinal));
            // Nor beside it: a staging folder or lock of the killed run.
            Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(Path.GetDirectoryName(outDir)!),
                f => Path.GetFileName(f).Contains(Path.GetFileName(outDir) + ".", StringComparison.Ordinal));
        }
    }

    [SkippableFact]
    public void Score() => KilledAndRerun_EndsAsAnUninterruptedRun(Out("score"),
        () => ["score", Model(), "--data", Shipped, "--samples", "60", "--out", Out("score")], seed: 1);

    [SkippableFact]
    public void EvalHaluEval() => KilledAndRerun_EndsAsAnUninterruptedRun(Out("halueval"),
        () => ["eval", "halueval", Model(), "--data", SharedData.Path("data", "halueval", "qa_data_first1000.jsonl"), "--limit", "16", "--skip-long", "--out", Out("halueval")], seed: 2);

    [SkippableFact]
    public void ConvertToGguf() => KilledAndRerun_EndsAsAnUninterruptedRun(Out("gguf"),
        () =>
        {
            Directory.CreateDirectory(Out("gguf"));
            return ["convert", Model(), "--out", Path.Combine(Out("gguf"), "model.gguf")];
        }, seed: 3);

    [Fact]
    public void LabPretrain() => KilledAndRerun_EndsAsAnUninterruptedRun(Out("lab"),
        () => ["lab", "pretrain", "--size", "tiny", "--steps", "24", "--out", Out("lab")], seed: 4);

    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();
    private string Out(string name) => _tmp.File(name);
    private static string Model() => SharedData.Path("models", "stories260K", "stories260K.bin");
}
