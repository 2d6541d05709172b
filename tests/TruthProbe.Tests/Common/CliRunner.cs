using TruthProbe.Cli;

namespace TruthProbe.Tests.Common;

/// <summary>Runs the CLI in-process, as a user would call it, and keeps what it printed.</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <summary>Verbs print only to the writers they are given, so runs need no lock and go in parallel.</summary>
    public static Result Run(params string[] argv)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        return new Result(CliMain.Run(argv, stdout, stderr), stdout.ToString(), stderr.ToString());
    }
}
