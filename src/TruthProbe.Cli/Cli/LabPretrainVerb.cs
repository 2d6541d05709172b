using System.CommandLine;
using TruthProbe.Lab;

namespace TruthProbe.Cli;

public sealed class LabPretrainVerb : IVerb
{
    public string Name => "lab pretrain";
    public string Summary => "grow a base model on the synthetic world (CPU, minutes)";
    public string Details => """
        Trains a small Llama-style model from scratch on the lab's synthetic world (facts to memorise and
        reading-comprehension episodes) and writes DIR as a Hugging Face folder: config.json,
        model.safetensors (F32), tokenizer.json, lab.json (recipe, seeds, data hash, held-out accuracy),
        plus the world's probing set (probing.jsonl: context, question, answer, label) and evaluation set
        (halueval.jsonl: knowledge, question, right_answer, hallucinated_answer, counterfactual).
        """;

    private readonly Option<string> _out = Opt.Out("DIR", "folder to write the model to");
    private readonly Option<string> _size = new("--size") { HelpName = "tiny|small|wide", Description = "tiny (4 layers x 4 heads, d=64), small (4 x 8, d=128) or wide (8 x 8 heads of 16, d=64: the demo's)", DefaultValueFactory = _ => "tiny" };
    private readonly Option<int> _seed = Opt.Int("--seed", "S", 1, "initialisation and data order; another seed = an unrelated model");
    private readonly Option<int> _worldSeed = Opt.Int("--world-seed", "W", 1, "the world's memorised facts; keep it to compare models on one world");
    private readonly Option<int?> _steps = Opt.IntOrNull("--steps", "N", "training steps (default 2000 tiny, 1500 small)");
    private readonly Option<int> _batch = LabOptions.Batch();
    private readonly Option<double?> _lr = LabOptions.LearningRate();
    private readonly Option<int> _evalEvery = Opt.Int("--eval-every", "K", 0, "also measure held-out reading accuracy every K steps (0: only at the end)");
    private readonly Option<double> _holdPeak = Opt.Double("--hold-peak", "F", 0,
        "hold the peak learning rate until this share of the steps, then the cosine to 10% over the rest (0: cosine right after the warm-up)");
    private readonly Option<double?> _holdUntilReading = Opt.Double("--hold-until-reading", "P",
        "hold the peak learning rate until a reading monitor (its own training-like episodes) reaches accuracy P, then --decay-steps of cosine; --steps is the cap on the total");
    private readonly Option<int> _decaySteps = Opt.Int("--decay-steps", "D", 200, "with --hold-until-reading: the steps of the cosine to 10% after the held peak", min: 1);
    private readonly Option<int> _checkEvery = Opt.Int("--check-every", "K", ReadingStopRule.DefaultCheckEvery, "with --hold-until-reading: steps between reads of the monitor", min: 1);
    private readonly Option<int> _curriculumSteps = Opt.Int("--curriculum-steps", "C", 0,
        "with --hold-until-reading: steps over which the contexts grow from 1 to 4 facts (0: a quarter of --steps)", min: 0);
    public IEnumerable<Symbol> Symbols => [_out, _size, _seed, _worldSeed, _steps, _batch, _lr, _evalEvery, _holdPeak, _holdUntilReading, _decaySteps, _checkEvery, _curriculumSteps];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var options = new LabRuns.PretrainOptions(
            Out: args.GetValue(_out)!,
            Size: args.GetValue(_size)!,
            Seed: args.GetValue(_seed),
            WorldSeed: args.GetValue(_worldSeed),
            Steps: args.GetValue(_steps),
            BatchSize: args.GetValue(_batch),
            LearningRate: args.GetValue(_lr),
            EvaluateEvery: args.GetValue(_evalEvery),
            HoldPeak: args.GetValue(_holdPeak),
            HoldUntilReading: args.GetValue(_holdUntilReading) is { } p ? new ReadingStopRule(p, args.GetValue(_decaySteps), args.GetValue(_checkEvery), args.GetValue(_curriculumSteps)) : null);
        return LabOptions.Wrote(options.Out, LabRuns.Pretrain(options, stdout), stdout);
    }
}
