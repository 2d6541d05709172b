using System.CommandLine;
using TruthProbe.Common;
using TruthProbe.Sharding;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe merge</c>: the parts of a sharded run (<c>--shard K/N</c>) joined, and the run finished as one process would.</summary>
public sealed class MergeVerb : IVerb
{
    public string Name => "merge";
    public string Summary => "join the part folders of a sharded run (--shard K/N) and finish it: probes, metrics, plots";
    public string Details => """
        Each part folder holds a shard.json written when its shard finished. The parts must be of one run (same
        verb, arguments, input hashes, shard count and build) and cover the data exactly once; a missing,
        repeated or foreign part is named in one error. The merged outputs are byte for byte those of the same
        command run in one process (timings and output paths in manifests aside).
        """;

    private readonly Argument<string[]> _parts = new("parts") { Description = "the part folders (e.g. run/part-*)", Arity = ArgumentArity.OneOrMore };
    private readonly Option<string> _out = Opt.Out("DIR", "where the merged run's outputs go (as the verb's own --out)");
    public IEnumerable<Symbol> Symbols => [_parts, _out];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var parts = ShardParts.Check(args.GetValue(_parts)!);
        var verbs = Verbs.Create();
        string verbName = parts.First.Verb;
        var verb = verbs.OfType<IShardedVerb>().FirstOrDefault(v => v.Name == verbName)
                   ?? throw new UserError($"merge: {parts.Parts[0].Dir} is a part of '{verbName}', which this build cannot merge");
        var argv = verbName.Split(' ').Concat(parts.First.Arguments).Concat(["--out", args.GetValue(_out)!]).ToList();
        var parsed = CliMain.Parse(verbs, argv);
        if (parsed.Errors.Count > 0)
            throw new UserError($"merge: the parts' arguments do not parse with this build ({parsed.Errors[0].Message}); merge with the build that ran the shards");
        foreach (string warning in parts.Warnings) stderr.WriteLine($"warning: {warning}");
        return verb.Merge(parsed, parts, stdout, stderr);
    }
}
