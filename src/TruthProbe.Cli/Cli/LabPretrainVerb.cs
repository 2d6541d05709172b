using TruthProbe.Lab;

namespace TruthProbe.Cli;

public sealed class LabPretrainVerb : IVerb
{
    public string Name => "lab pretrain";
    public string Summary => "grow a base model on the synthetic world (CPU, minutes)";
    public string Usage => """
        usage: truthprobe lab pretrain --out DIR [--size tiny|small] [--seed S] [--world-seed W] [--steps N]
                                       [--batch B] [--lr LR] [--eval-every K]

        Trains a small Llama-style model from scratch on the lab's synthetic world (facts to memorise and
        reading-comprehension episodes) and writes DIR as a Hugging Face folder: config.json,
        model.safetensors (F32), tokenizer.json, lab.json (recipe, seeds, data hash, held-out accuracy),
        plus the world's probing set (probing.jsonl: context, question, answer, label) and evaluation set
        (halueval.jsonl: knowledge, question, right_answer, hallucinated_answer, counterfactual).

          --size         tiny (4 layers x 4 heads, d=64; default) or small (4 x 8, d=128)
          --seed         initialisation and data order (default 1); another seed = an unrelated model
          --world-seed   the world's memorised facts (default 1); keep it to compare models on one world
          --steps        training steps (default 2000 tiny, 1500 small)
          --eval-every   also measure held-out reading accuracy every K steps
        """;

    public int Run(Args args)
    {
        var options = new LabRuns.PretrainOptions(
            Out: args.Required("out", "folder to write the model to"),
            Size: args.Get("size", "tiny"),
            Seed: args.Int("seed", 1),
            WorldSeed: args.Int("world-seed", 1),
            Steps: args.Get("steps") == null ? null : args.Int("steps", 0),
            BatchSize: args.Int("batch", 64),
            LearningRate: args.DoubleOrNull("lr"),
            EvaluateEvery: args.Int("eval-every", 0));
        args.EnsureAllRead(0);
        var result = LabRuns.Pretrain(options, Console.Out);
        Console.WriteLine($"wrote {options.Out} (held-out reading accuracy {result.Accuracy!.Overall:P1})");
        return 0;
    }
}
