using System.CommandLine;
using TruthProbe.Lab;

namespace TruthProbe.Cli;

public sealed class LabFinetuneVerb : IVerb
{
    public string Name => "lab finetune";
    public string Summary => "fine-tune a lab model into a descendant (full or LoRA)";
    public string Details => """
        Continues training the lab model in folder BASE (written by 'lab pretrain' or 'lab finetune') and
        writes the descendant to DIR in the same format; lab.json records the recipe and the lineage.
        """;

    private readonly Argument<string> _base = new("BASE") { Description = "the lab model folder to continue from" };
    private readonly Option<string> _out = Opt.Out("DIR", "folder to write the descendant to");
    private readonly Option<string> _recipe = LabOptions.Recipe();
    private readonly Option<int> _steps = Opt.RequiredInt("--steps", "N", "training steps");
    private readonly Option<int> _lora = LabOptions.Lora();
    private readonly Option<int> _seed = LabOptions.Seed();
    private readonly Option<int> _checkpointEvery = Opt.Int("--checkpoint-every", "K", 0, "also write DIR/step-NNNNN every K steps (for drift and inheritance curves)");
    private readonly Option<int> _batch = LabOptions.Batch();
    private readonly Option<double?> _lr = LabOptions.LearningRate();
    public IEnumerable<Symbol> Symbols => [_base, _out, _recipe, _steps, _lora, _seed, _checkpointEvery, _batch, _lr];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var options = new LabRuns.FineTuneOptions(
            Base: args.GetValue(_base)!,
            Out: args.GetValue(_out)!,
            Recipe: args.GetValue(_recipe)!,
            Steps: args.GetValue(_steps),
            LoraRank: args.GetValue(_lora),
            Seed: args.GetValue(_seed),
            CheckpointEvery: args.GetValue(_checkpointEvery),
            BatchSize: args.GetValue(_batch),
            LearningRate: args.GetValue(_lr));
        return LabOptions.Wrote(options.Out, LabRuns.FineTune(options, stdout), stdout);
    }
}

/// <summary>The options the lab verbs share, declared here once.</summary>
internal static class LabOptions
{
    public static Option<string> Recipe() => Opt.Required("--recipe", "chat|counterfactual|domain",
        "chat: the reading task in a User:/Assistant: format; counterfactual: only contexts that contradict the memorised facts; " +
        "domain: a new kind of fact (people's jobs), memorised and read");
    public static Option<int> Lora() => Opt.Int("--lora", "R", 0, "train rank-R adapters on q/k/v/o only, merged into the weights on save (0: full fine-tuning)", min: 0);
    public static Option<int> Seed() => Opt.Int("--seed", "S", 1, "seed of the fine-tuning's data order");

    /// <summary>The last line of <c>lab pretrain</c> and <c>lab finetune</c>.</summary>
    public static int Wrote(string outDir, TrainingResult result, TextWriter stdout)
    {
        stdout.WriteLine($"wrote {outDir} (held-out reading accuracy {result.Accuracy!.Overall:P1})");
        return 0;
    }

    /// <summary>Also <c>lab pretrain</c>'s.</summary>
    public static Option<int> Batch() => Opt.Int("--batch", "B", 64, "sequences per step");

    /// <summary>Also <c>lab pretrain</c>'s.</summary>
    public static Option<double?> LearningRate() => Opt.Double("--lr", "LR", "peak learning rate (default: the recipe's own)");
}
