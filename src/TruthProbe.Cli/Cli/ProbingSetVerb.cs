using System.CommandLine;
using TruthProbe.Common;
using TruthProbe.Probing;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe probing-set</c>: writes the TinyStories-style context-QA probing rows (data/ holds the default output).</summary>
public sealed class ProbingSetVerb : IVerb
{
    public string Name => "probing-set";
    public string Summary => "generate the TinyStories-style context-QA probing rows (gold vs swapped detail)";

    public string Details => $"""
        Two-sentence stories that name one child twice ("Mia had a red ball. Mia liked to play."), a
        question whose answer is the child's name ("Who had the red ball?"), and one row per story: the
        gold name for even items, a name the story never mentions for odd ones. Score it with
        --template '{ContextQaGenerator.Template}'. Deterministic: the defaults reproduce
        data/tinystories_context_qa.jsonl byte for byte.
        """;

    private readonly Option<string> _out = Opt.Out("FILE.jsonl", "the probing rows to write");
    private readonly Option<int> _items = Opt.Int("--items", "N", ContextQaGenerator.DefaultItems, "stories, one row each", min: 1);
    private readonly Option<int> _seed = Opt.Int("--seed", "S", ContextQaGenerator.DefaultSeed, "seed of the stories and names");
    public IEnumerable<Symbol> Symbols => [_out, _items, _seed];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        string output = args.GetValue(_out)!;
        int items = args.GetValue(_items);
        int seed = args.GetValue(_seed);
        AtomicFile.WriteAllText(output, ContextQaGenerator.Generate(items, seed));
        stdout.WriteLine($"wrote {output}: {items} rows, one per story (seed {seed})");
        return 0;
    }
}
