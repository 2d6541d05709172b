using TruthProbe.Cli;
using TruthProbe.Common;

namespace TruthProbe.Tests.Fuzz;

/// <summary>Alone, after the parallel tests: the memory watchdog measures the whole process.</summary>
[CollectionDefinition(nameof(FuzzCollection), DisableParallelization = true)]
public sealed class FuzzCollection;

/// <summary>
/// The fast deterministic subset of the fuzz suite (./bench/fuzz runs every variant): every seventh variant of every
/// format through the verbs that read it must end in a clean error, or exit 0 where the variant may be valid.
/// </summary>
[Collection(nameof(FuzzCollection))]
public class FuzzTests
{
    // Prime, so that the subset does not fall into step with a generator's own period (8 dtypes, 5 values per field).
    private const int Stride = 7;

    public static TheoryData<string> Formats() => new(FuzzTargets.All(null).Select(t => t.Format));

    [SkippableTheory]
    [MemberData(nameof(Formats))]
    public void EverySeventhVariant_IsACleanErrorOrValid(string format)
    {
        var target = FuzzTargets.All(RepoPaths.Shared()).Single(t => t.Format == format);
        string? why = target.Unavailable();
        Skip.If(why != null, why);
        var results = new FuzzRunner(TimeSpan.FromSeconds(20)).Run(target, Stride);
        Assert.True(results.Count > 0, $"{format}: no variants ran");
        Assert.Contains(results, r => r.Outcome == FuzzOutcome.Clean);
        Assert.False(results.Any(r => FuzzRunner.IsDefect(r.Outcome)), FuzzRunner.Table(results));
    }

    /// <summary>A target whose "file" is ignored, so each command alone decides the outcome.</summary>
    private static FuzzTarget Probe(FuzzCommand command, bool mayPass = false) => new("probe", "x.bin",
        dir => { File.WriteAllBytes(Path.Combine(dir, "x.bin"), [1]); return [1]; },
        _ => [new FuzzVariant("v", [2], mayPass)],
        [command]);

    private static FuzzOutcome OutcomeOf(FuzzCommand command, bool mayPass = false, double timeoutSeconds = 5)
    {
        // The first call is the seed's check, which must pass; the second is the variant under test.
        int calls = 0;
        var gated = command with { Run = (dir, output, o, e) => calls++ == 0 ? 0 : command.Run(dir, output, o, e) };
        return new FuzzRunner(TimeSpan.FromSeconds(timeoutSeconds)).Run(Probe(gated, mayPass)).Single().Outcome;
    }

    [Fact]
    public void Runner_ClassifiesEachKindOfOutcome()
    {
        FuzzCommand Returns(Func<string, string, TextWriter, int> run) => new("probe", (dir, output, _, stderr) => run(dir, output, stderr));
        Assert.Equal(FuzzOutcome.Clean, OutcomeOf(Returns((_, _, e) => { e.WriteLine("error: x.bin: bad"); return UserError.ExitCode; })));
        Assert.Equal(FuzzOutcome.Silent, OutcomeOf(Returns((_, _, _) => 0)));
        Assert.Equal(FuzzOutcome.Accepted, OutcomeOf(Returns((_, _, _) => 0), mayPass: true));
        Assert.Equal(FuzzOutcome.Crash, OutcomeOf(Returns((_, _, _) => throw new InvalidOperationException("boom"))));
        Assert.Equal(FuzzOutcome.Crash, OutcomeOf(Returns((_, _, e) => { e.WriteLine("error: unexpected"); return CliMain.UnexpectedExitCode; })));
        Assert.Equal(FuzzOutcome.Unclear, OutcomeOf(Returns((_, _, e) => { e.WriteLine("error: one\nerror: two"); return UserError.ExitCode; })));
        Assert.Equal(FuzzOutcome.Unclear, OutcomeOf(Returns((_, _, e) => { e.WriteLine(new string('x', CliMain.MaxErrorChars + 1)); return UserError.ExitCode; })));
        Assert.Equal(FuzzOutcome.Partial, OutcomeOf(Returns((_, output, e) => { File.WriteAllText(output, "half"); e.WriteLine("error: late"); return UserError.ExitCode; })));
        Assert.Equal(FuzzOutcome.Hang, OutcomeOf(Returns((_, _, _) => { Thread.Sleep(3000); return 0; }), timeoutSeconds: 0.5));
        Assert.Equal(FuzzOutcome.Memory, OutcomeOf(Returns((_, _, _) =>
        {
            // 1.5 GB of managed heap (uninitialised: never touched, so cheap) held long enough for the 2 ms sampling,
            // also when the sampling thread waits for a core behind the rest of the suite (50 ms missed it once, 2 cores).
            var blocks = Enumerable.Range(0, 12).Select(_ => GC.AllocateUninitializedArray<byte>(128 << 20)).ToList();
            Thread.Sleep(500);
            GC.KeepAlive(blocks);
            return UserError.ExitCode;
        })));
    }
}
