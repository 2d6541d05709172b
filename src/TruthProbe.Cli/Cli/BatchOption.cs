using System.CommandLine;

namespace TruthProbe.Cli;

/// <summary>--batch: how many sequences decode together (docs/engine.md, batched decoding); the one declaration
/// the verbs that generate for many prompts share.</summary>
public static class BatchOption
{
    /// <summary>Measured on the 0.5B shape (docs/performance.md): 8 gets most of the decode speed-up while a batch
    /// refills often enough that the last, partly empty steps cost little.</summary>
    public const int Default = 8;

    public static Option<int> Create() => Opt.Int("--batch", "N", Default,
        "sequences decoded together, the weights read once per step for all of them; replies are the same as with --batch 1 (one at a time)", min: 1);
}
