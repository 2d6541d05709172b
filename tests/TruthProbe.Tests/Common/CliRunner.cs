using TruthProbe.Cli;

namespace TruthProbe.Tests.Common;

/// <summary>Runs the CLI in-process, as a user would call it, and keeps what it printed.</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    private static readonly object Gate = new();

    public static Result Run(params string[] argv)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        // Verbs print through Console; tests run in parallel, so redirecting it is serialised.
        lock (Gate)
        {
            var (oldOut, oldErr) = (Console.Out, Console.Error);
            Console.SetOut(stdout);
            Console.SetError(stderr);
            try { return new Result(CliMain.Run(argv, stdout, stderr), stdout.ToString(), stderr.ToString()); }
            finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
        }
    }
}
