using System.Diagnostics;
using TruthProbe.Cli;
using TruthProbe.Tests.Fuzz;

namespace TruthProbe.Bench;

/// <summary>
/// The full fuzz suite (every variant of every format through every verb that reads it), printed as the table of
/// outcomes with every defect listed; <c>./bench/fuzz [FORMAT...]</c>. The test suite runs a fixed subset.
/// <c>--debug</c> runs the CLI with --debug, so each crash is listed with its stack trace.
/// Exits 1 when any case crashed, hung, blew memory, left partial output, was unclear or silently accepted.
/// </summary>
public static class FuzzBench
{
    public const string Flag = "fuzz";

    public static int Run(IEnumerable<string> formats)
    {
        var only = formats.Where(f => f != CliMain.DebugFlag).ToHashSet(StringComparer.OrdinalIgnoreCase);
        FuzzCommand.Debug = formats.Contains(CliMain.DebugFlag);
        var runner = new FuzzRunner(TimeSpan.FromSeconds(30));
        var results = new List<FuzzResult>();
        foreach (var target in FuzzTargets.All(RepoPaths.Shared()).Where(t => only.Count == 0 || only.Contains(t.Format)))
        {
            if (target.Unavailable() is { } why)
            {
                Console.WriteLine($"{target.Format}: skipped ({why})");
                continue;
            }
            var clock = Stopwatch.StartNew();
            var found = runner.Run(target);
            Console.WriteLine($"{target.Format}: {found.Count} cases in {clock.Elapsed.TotalSeconds:0.0} s");
            results.AddRange(found);
        }
        Console.WriteLine();
        Console.Write(FuzzRunner.Table(results));
        return results.Any(r => FuzzRunner.IsDefect(r.Outcome)) ? 1 : 0;
    }
}
