using System.CommandLine;
using TruthProbe.Cli;
using TruthProbe.Common;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Cli;

/// <summary>Every error is one bounded line; an unexpected exception too, with the trace only under --debug.</summary>
public class ErrorLineTests
{
    /// <summary>A verb that fails as a defect would: an exception that is not a UserError, with a line break in its message.</summary>
    private sealed class FailingVerb : IVerb
    {
        public string Name => "explode";
        public string Summary => "fails";
        public IEnumerable<Symbol> Symbols => [];
        public int Run(ParseResult args, TextWriter stdout, TextWriter stderr) => throw new InvalidOperationException("first line\nsecond line");
    }

    private static (int Code, string Stderr) RunFailing(params string[] argv)
    {
        var stderr = new StringWriter();
        int code = CliMain.Run(argv, new StringWriter(), stderr, [new FailingVerb()]);
        return (code, stderr.ToString());
    }

    [Fact]
    public void UnexpectedException_IsOneLineWithTheDebugHint_NotExitTwo()
    {
        var (code, stderr) = RunFailing("explode");
        Assert.Equal(CliMain.UnexpectedExitCode, code);
        Assert.Equal("error: unexpected InvalidOperationException: first line second line (a defect in truthprobe; rerun with --debug for the trace)\n",
            stderr.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void UnexpectedException_WithDebug_PrintsTheTrace()
    {
        var (code, stderr) = RunFailing("explode", "--debug");
        Assert.Equal(CliMain.UnexpectedExitCode, code);
        Assert.Contains("System.InvalidOperationException: first line\nsecond line", stderr.ReplaceLineEndings("\n"));
        Assert.Contains($"at {typeof(ErrorLineTests).FullName}.FailingVerb.Run", stderr);
    }

    [Fact]
    public void UserErrorEchoingAHugeValue_IsCutToTheBound()
    {
        using var tmp = new TempDir();
        string path = tmp.File(new string('m', 200) + "/" + new string('x', 200) + "/" + new string('y', 200) + "/" + new string('z', 2000));
        var r = CliRunner.Run("inspect", path);
        Assert.Equal(UserError.ExitCode, r.ExitCode);
        string line = r.Stderr.TrimEnd('\n');
        Assert.DoesNotContain('\n', line);
        Assert.InRange(line.Length, CliMain.MaxErrorChars - 40, CliMain.MaxErrorChars);
        Assert.EndsWith("more characters)", line);
    }
}
