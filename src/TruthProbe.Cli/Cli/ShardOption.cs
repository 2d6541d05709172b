using System.CommandLine;
using System.CommandLine.Parsing;
using TruthProbe.Sharding;

namespace TruthProbe.Cli;

/// <summary>
/// <c>--shard K/N</c> on the verbs that walk a dataset: the run does shard K's block of the items and writes a part
/// folder that <c>truthprobe merge</c> joins with the others (<see cref="Shard"/>, <see cref="ShardManifest"/>).
/// </summary>
public sealed class ShardOption
{
    public readonly Option<string?> Option = Opt.Text("--shard", "K/N",
        $"do only shard K of N (K from 1) and write a part folder for 'truthprobe merge'; auto/N takes K - 1 from ${Shard.SlurmVariable} (Slurm --array=0-(N-1)) or ${Shard.KubernetesVariable} (Kubernetes Indexed Job)");

    public Shard? Read(ParseResult args) => args.GetValue(Option) is { } text ? Shard.Parse(text, Environment.GetEnvironmentVariable) : null;

    /// <summary>The verb's command line after its name, without --shard and --out (and their values): what every
    /// part of one run shares, and what a merge parses again to finish the run.</summary>
    public static IReadOnlyList<string> SharedArguments(ParseResult args)
    {
        var tokens = args.Tokens.SkipWhile(t => t.Type == TokenType.Command).ToList();
        var kept = new List<string>();
        for (int i = 0; i < tokens.Count; i++)
        {
            if (tokens[i].Type == TokenType.Option && tokens[i].Value is "--shard" or "--out")
            {
                if (i + 1 < tokens.Count && tokens[i + 1].Type == TokenType.Argument) i++;
                continue;
            }
            kept.Add(tokens[i].Value);
        }
        return kept;
    }
}

/// <summary>A verb that runs in shards: it writes part folders, and finishes the run from them in <c>truthprobe merge</c>.</summary>
public interface IShardedVerb : IVerb
{
    /// <summary>
    /// The once-per-dataset step: <paramref name="args"/> are the parts' shared arguments parsed again with the
    /// merge's <c>--out</c>; <paramref name="parts"/> are checked to be this run's shards, in data order.
    /// </summary>
    int Merge(ParseResult args, ShardParts parts, TextWriter stdout, TextWriter stderr);
}
