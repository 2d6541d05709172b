using System.CommandLine;
using System.Globalization;
using TruthProbe.Common;
using TruthProbe.Model;

namespace TruthProbe.Cli;

public sealed class GenerateVerb : IVerb
{
    public string Name => "generate";
    public string Summary => "continue a prompt (or BOS alone), greedy or seeded sampling";

    private readonly ModelInput _model = new(gating: true, prompt: true, promptDefault: " (default: generation starts from BOS alone)", image: true);
    private readonly Option<int> _maxNew = Opt.Int("--max-new-tokens", "N", 256, "generation also stops at EOS and at the end of the context", min: 0);
    private readonly Option<double> _temperature = Opt.Double("--temperature", "T", 0, "0 = greedy; above 0 samples, with --seed");
    private readonly Option<int> _seed = Opt.Int("--seed", "S", 0, "sampling seed (printed)", min: 0);
    private readonly Option<bool> _ids = Opt.Flag("--ids", "also print the prompt and generated token ids");
    public IEnumerable<Symbol> Symbols => [.. _model.Symbols, _maxNew, _temperature, _seed, _ids];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        using var loaded = _model.Load(args, Name);
        var model = loaded.Model;
        int[] prompt = _model.PromptIds(args, Name, model, loaded.Llava)
            ?? [model.BosId ?? throw new UserError($"{model.Source}: neither config nor tokenizer names a BOS token; give --prompt or --token-ids")];
        var qwenImage = loaded.Qwen is { } qwen ? _model.Image!.ReadQwen(args, Name, qwen, prompt) : null;
        var image = loaded.Qwen == null ? _model.Image!.Read(args, Name, loaded, prompt) : null;
        float temperature = (float)args.GetValue(_temperature);
        int seed = args.GetValue(_seed);

        var options = new GenerationOptions
        {
            MaxNewTokens = args.GetValue(_maxNew), Temperature = temperature, Seed = (ulong)seed, Interventions = loaded.Gates?.Interventions,
        };
        // With an image the prompt ids returned are the expanded ones, as the decoder saw them.
        var result = qwenImage != null ? qwenImage.Model.Generate(qwenImage.Model.NewState(), prompt, qwenImage.Image, options)
            : image == null ? Generator.Generate(model, prompt, options)
            : image.Model.Generate(image.Model.NewState(), prompt, image.Pixels, options, imageSize: image.Size);
        if (qwenImage != null)
        {
            var (w, h) = qwenImage.Image.Size(qwenImage.Config.PatchSize);
            stderr.WriteLine($"image: {qwenImage.Path} (resized to {w}x{h}, {qwenImage.Image.Tokens} image tokens)");
        }
        if (image != null) stderr.WriteLine($"image: {image.Path} ({image.Provenance()["image_aspect"]}, {image.Model.ImageTokens(image.Size)} image tokens)");
        if (loaded.Gates is { } g)
            stderr.WriteLine("gated: " + string.Join(", ", loaded.Gating.Provenance(g.Table).Select(kv => $"{kv.Key}={kv.Value}")));
        if (temperature > 0) stderr.WriteLine(string.Create(CultureInfo.InvariantCulture, $"sampled with temperature {temperature}, seed {seed}"));
        if (args.GetValue(_ids) || model.Tokenizer == null)
        {
            stdout.WriteLine($"prompt ids: {string.Join(' ', result.PromptIds)}");
            stdout.WriteLine($"new ids:    {string.Join(' ', result.NewIds)}");
        }
        // The prompt as given: an image is one <image> in the text, not its hundreds of expanded tokens.
        if (model.Tokenizer != null) stdout.WriteLine(model.Tokenizer.Decode([.. (image == null && qwenImage == null ? result.PromptIds : prompt), .. result.NewIds]));
        return 0;
    }
}
