using System.CommandLine;

namespace TruthProbe.Cli;

/// <summary>One CLI verb. Each lives in its own file under <c>Cli/</c> and is listed in <see cref="Verbs"/>.</summary>
public interface IVerb
{
    /// <summary>The words that select it, e.g. "compare" or "eval chair".</summary>
    string Name { get; }
    string Summary { get; }
    /// <summary>What --help shows after the summary: what the verb computes and writes.</summary>
    string Details => "";
    /// <summary>The verb's arguments and options, each declared once, in the verb; parsing and --help come from them.</summary>
    IEnumerable<Symbol> Symbols { get; }
    /// <summary>Runs on parsed arguments, printing only to the writers it is given.</summary>
    int Run(ParseResult args, TextWriter stdout, TextWriter stderr);
}
