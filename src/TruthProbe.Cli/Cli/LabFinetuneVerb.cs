using TruthProbe.Lab;

namespace TruthProbe.Cli;

public sealed class LabFinetuneVerb : IVerb
{
    public string Name => "lab finetune";
    public string Summary => "fine-tune a lab model into a descendant (full or LoRA)";
    public string Usage => """
        usage: truthprobe lab finetune BASE --recipe chat|counterfactual|domain --steps N --out DIR
                                       [--lora R] [--seed S] [--checkpoint-every K] [--batch B] [--lr LR]

        Continues training the lab model in folder BASE (written by 'lab pretrain' or 'lab finetune') and
        writes the descendant to DIR in the same format; lab.json records the recipe and the lineage.

          --recipe            chat: the reading task in a User:/Assistant: format
                              counterfactual: only contexts that contradict the memorised facts
                              domain: a new kind of fact (people's jobs), memorised and read
          --lora R            train rank-R adapters on q/k/v/o only, merged into the weights on save
          --checkpoint-every  also write DIR/step-NNNNN every K steps (for drift and inheritance curves)
        """;

    public int Run(Args args)
    {
        var options = new LabRuns.FineTuneOptions(
            Base: args.Positional(0, "BASE model folder"),
            Out: args.Required("out", "folder to write the descendant to"),
            Recipe: args.Required("recipe", "chat, counterfactual or domain"),
            Steps: args.Int("steps", 0) is var s && s != 0 ? s : throw new TruthProbe.Common.UserError("lab finetune: missing --steps (number of training steps)"),
            LoraRank: args.Int("lora", 0),
            Seed: args.Int("seed", 1),
            CheckpointEvery: args.Int("checkpoint-every", 0),
            BatchSize: args.Int("batch", 64),
            LearningRate: args.DoubleOrNull("lr"));
        args.EnsureAllRead(1);
        var result = LabRuns.FineTune(options, Console.Out);
        Console.WriteLine($"wrote {options.Out} (held-out reading accuracy {result.Accuracy!.Overall:P1})");
        return 0;
    }
}
