using System.CommandLine;

namespace TruthProbe.Cli;

/// <summary>--batch: how many sequences decode together (docs/engine.md, batched decoding); the one declaration
/// the verbs that generate for many prompts share.</summary>
public static class BatchOption
{
    public static Option<int> Create() => Opt.Int("--batch", "N", TruthProbe.Model.BatchGenerator.DefaultBatchSize,
        "sequences decoded together, the weights read once per step for all of them; replies are the same as with --batch 1 (one at a time)", min: 1);
}
