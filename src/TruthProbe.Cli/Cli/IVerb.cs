namespace TruthProbe.Cli;

/// <summary>One CLI verb. Each lives in its own file under <c>Cli/</c> and is listed in <see cref="Verbs"/>.</summary>
public interface IVerb
{
    /// <summary>The words that select it, e.g. "compare" or "eval chair".</summary>
    string Name { get; }
    string Summary { get; }
    /// <summary>Full usage text shown by --help.</summary>
    string Usage { get; }
    /// <summary>Options that take no value.</summary>
    IReadOnlyCollection<string> Flags => [];
    int Run(Args args);
}
