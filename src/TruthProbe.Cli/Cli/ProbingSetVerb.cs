using TruthProbe.Common;
using TruthProbe.Probing;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe probing-set</c>: writes the TinyStories-style context-QA probing rows (data/ holds the default output).</summary>
public sealed class ProbingSetVerb : IVerb
{
    public string Name => "probing-set";
    public string Summary => "generate the TinyStories-style context-QA probing rows (gold vs swapped detail)";

    public string Usage => $"""
        usage: truthprobe probing-set --out FILE.jsonl [--items {ContextQaGenerator.DefaultItems}] [--seed {ContextQaGenerator.DefaultSeed}]

        Two-sentence stories that name one child twice ("Mia had a red ball. Mia liked to play."), a
        question whose answer is the child's name ("Who had the red ball?"), and one row per story: the
        gold name for even items, a name the story never mentions for odd ones. Score it with
        --template '{ContextQaGenerator.Template}'. Deterministic: the defaults reproduce
        data/tinystories_context_qa.jsonl byte for byte.
        """;

    public int Run(Args args)
    {
        string output = args.Required("out", "the .jsonl file to write");
        int items = args.Int("items", ContextQaGenerator.DefaultItems);
        int seed = args.Int("seed", ContextQaGenerator.DefaultSeed);
        args.EnsureAllRead(0);
        if (items < 1) throw new UserError($"probing-set: --items must be positive, got {items}");
        AtomicFile.WriteAllText(output, ContextQaGenerator.Generate(items, seed));
        Console.Out.WriteLine($"wrote {output}: {items} rows, one per story (seed {seed})");
        return 0;
    }
}
