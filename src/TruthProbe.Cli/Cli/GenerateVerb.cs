using System.Globalization;
using TruthProbe.Common;
using TruthProbe.Model;

namespace TruthProbe.Cli;

public sealed class GenerateVerb : IVerb
{
    public string Name => "generate";
    public string Summary => "continue a prompt (or BOS alone), greedy or seeded sampling";
    public string Usage =>
        "usage: truthprobe generate <model> [--prompt TEXT | --token-ids 1,2,3] [--max-new-tokens N]\n" +
        "                           [--temperature T --seed S] [--tokenizer FILE] [--ids]\n" +
        ModelInput.Usage +
        "  --prompt TEXT        text to continue (default: generation starts from BOS alone)\n" +
        "  --token-ids LIST     the prompt as token ids instead of text\n" +
        "  --max-new-tokens N   default 256; generation also stops at EOS and at the end of the context\n" +
        "  --temperature T      0 (default) = greedy; above 0 samples, with --seed S (default 0; printed)\n" +
        "  --ids                also print the prompt and generated token ids\n" +
        GatingOptions.Usage;
    public IReadOnlyCollection<string> Flags => ["ids"];

    public int Run(Args args)
    {
        using var model = ModelInput.Load(args);
        int[] prompt = ModelInput.PromptIds(args, model)
            ?? [model.BosId ?? throw new UserError($"{model.Source}: neither config nor tokenizer names a BOS token; give --prompt or --token-ids")];
        int maxNew = args.Int("max-new-tokens", 256);
        if (maxNew < 0) throw new UserError($"generate: --max-new-tokens must be >= 0, got {maxNew}");
        float temperature = (float)args.Double("temperature", 0);
        int seed = args.Int("seed", 0);
        if (seed < 0) throw new UserError($"generate: --seed must be >= 0, got {seed}");
        bool printIds = args.Flag("ids");
        var gating = GatingOptions.Read(args);
        args.EnsureAllRead(1);

        var gates = gating.For(model);
        var result = Generator.Generate(model, prompt, new GenerationOptions
        {
            MaxNewTokens = maxNew, Temperature = temperature, Seed = (ulong)seed, Interventions = gates?.Interventions,
        });
        if (gates is { } g)
            Console.Error.WriteLine("gated: " + string.Join(", ", gating.Provenance(g.Table).Select(kv => $"{kv.Key}={kv.Value}")));
        if (temperature > 0) Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"sampled with temperature {temperature}, seed {seed}"));
        if (printIds || model.Tokenizer == null)
        {
            Console.WriteLine($"prompt ids: {string.Join(' ', result.PromptIds)}");
            Console.WriteLine($"new ids:    {string.Join(' ', result.NewIds)}");
        }
        if (model.Tokenizer != null) Console.WriteLine(model.Tokenizer.Decode([.. result.PromptIds, .. result.NewIds]));
        return 0;
    }
}
