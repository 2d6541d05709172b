using System.CommandLine;
using System.Globalization;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Lab;

namespace TruthProbe.Cli;

public sealed class LabVlmVerb : IVerb
{
    public string Name => "lab vlm";
    public string Summary => "grow a LLaVA-style vision-language descendant of a lab model, as an llava-hf folder";
    public string Details => """
        The LLaVA recipe at lab scale, on the synthetic scenes: a small CLIP-style tower (pre-trained here on
        cell labels (class and colour of each grid cell), or a frozen random one), then stage 1 (the projector, LM frozen), stage 2 (projector
        and LM, on presence questions and the base's text episodes) and stage 3 (captions join). Prompts are LLaVA-1.5's vicuna_v1
        ones, as 'eval pope' and 'score --images' build them. The held-out test is SCENES' POPE files (train
        scenes are drawn from their own stream). DIR is an llava-hf folder every verb reads.
        """;

    private readonly Argument<string> _base = new("BASE") { Description = "the lab model folder the descendant grows from ('lab pretrain')" };
    private readonly Option<string> _scenes = Opt.Required("--scenes", "SCENES", "a 'lab scenes' folder: its size is the tower's, its POPE files the held-out test");
    private readonly Option<string> _out = Opt.Out("DIR", "folder to write the llava-hf descendant to");
    private readonly Option<string> _tower = Opt.Choice("--tower", "pretrained", "the vision tower: pre-trained here on the class and colour of each grid cell, or frozen as initialised", "pretrained", "random");
    private readonly Option<int> _trainScenes = Opt.Int("--train-scenes", "N", 2000, "training scenes (drawn in memory)", min: 1);
    private readonly Option<int> _towerSteps = Opt.Int("--tower-steps", "N", 300, "tower pre-training steps", min: 0);
    private readonly Option<int> _stage1 = Opt.Int("--stage1-steps", "N", 400, "stage 1 steps (projector)", min: 1);
    private readonly Option<int> _stage2 = Opt.Int("--stage2-steps", "N", 900, "stage 2 steps (projector + LM)", min: 1);
    private readonly Option<int> _batch = Opt.Int("--batch", "B", 32, "sequences per step", min: 1);
    private readonly Option<int> _lora = LabOptions.Lora();
    private readonly Option<double?> _lmRate = Opt.Double("--lm-lr", "RATE", "stage 2's peak learning rate for the LM alone (adapters with --lora, else all its weights; default: the projector's, 2e-3 with --lora, else 3e-3); the projector keeps its rate");
    private readonly Option<double[]?> _stage1Mix = Opt.Doubles("--stage1-mix", "Q,C,T", "stage 1's shares of presence questions, captions and the base's text episodes (default 1,0,0)");
    private readonly Option<double[]?> _stage2Mix = Opt.Doubles("--stage2-mix", "Q,C,T", "stage 2's shares of presence questions, captions and the base's text episodes (default 0.85,0,0.15)");
    private readonly Option<int> _stage3 = Opt.Int("--stage3-steps", "N", 600, "steps of stage 3 (captions join), after stage 2, at its rates (0: none)", min: 0);
    private readonly Option<bool> _stage3NewWords = Opt.Flag("--stage3-new-words", "with --lora, stage 3 also trains the new words' embedding rows");
    private readonly Option<double[]?> _stage3Mix = Opt.Doubles("--stage3-mix", "Q,C,T", "stage 3's shares of presence questions, captions and the base's text episodes (default 0.4,0.45,0.15)");
    private readonly Option<int> _seed = LabOptions.Seed();
    public IEnumerable<Symbol> Symbols => [_base, _scenes, _out, _tower, _trainScenes, _towerSteps, _stage1, _stage2, _batch, _lora, _lmRate, _stage1Mix, _stage2Mix, _stage3, _stage3Mix, _stage3NewWords, _seed];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var options = new LabVlm.Options(args.GetValue(_base)!, args.GetValue(_scenes)!, args.GetValue(_out)!, new VlmPromptFormat(LlavaPrompts.Pope, LlavaPrompts.Chair),
            Seed: args.GetValue(_seed), Tower: args.GetValue(_tower)!, TrainScenes: args.GetValue(_trainScenes), TowerSteps: args.GetValue(_towerSteps),
            Stage1Steps: args.GetValue(_stage1), Stage2Steps: args.GetValue(_stage2), BatchSize: args.GetValue(_batch), LoraRank: args.GetValue(_lora),
            LmLearningRate: args.GetValue(_lmRate), Stage1Mix: Mix(args.Given(_stage1Mix), "--stage1-mix"), Stage2Mix: Mix(args.Given(_stage2Mix), "--stage2-mix"),
            Stage3Steps: args.GetValue(_stage3), Stage3Mix: Mix(args.Given(_stage3Mix), "--stage3-mix"), Stage3NewWords: args.GetValue(_stage3NewWords));
        var result = LabVlm.Train(options, stdout);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {options.Out} (held-out POPE accuracy {string.Join(", ", result.Pope.Select(p => $"{p.Setting} {p.Accuracy:P1}"))})"));
        return 0;
    }

    private static LabVlm.Mix? Mix(double[]? shares, string option) => shares switch
    {
        null => null,
        [var q, var c, var t] => new LabVlm.Mix(q, c, t),
        _ => throw new UserError($"{option} takes three shares (questions, captions, text episodes), e.g. 0.6,0.25,0.15; got {shares.Length}"),
    };
}
