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
    private readonly Option<string?> _prompts = Opt.Text("--prompts", "FILE",
        "many prompts: a .jsonl file of {\"prompt\": ...} objects or a text file, one prompt per line; replies as JSON Lines in order (each as --prompt would give it)");
    private readonly Option<int> _batch = BatchOption.Create();
    private readonly Option<string?> _out = Opt.Text("--out", "FILE.jsonl", "where the replies of --prompts go (default: standard output)");
    public IEnumerable<Symbol> Symbols => [.. _model.Symbols, _maxNew, _temperature, _seed, _ids, _prompts, _batch, _out];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        string? promptsFile = args.GetValue(_prompts);
        if (promptsFile == null && (args.GetResult(_batch) is { Implicit: false } || args.GetValue(_out) != null))
            throw new UserError("generate: --batch and --out apply to --prompts FILE; give it, or drop them");
        using var loaded = _model.Load(args, Name, requireTokenizer: promptsFile != null);
        if (promptsFile != null) return RunMany(args, loaded, promptsFile, stdout, stderr);
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

    /// <summary>Every prompt of the file continued with the same options (and seed), --batch of them decoding together.</summary>
    private int RunMany(ParseResult args, LoadedModel loaded, string file, TextWriter stdout, TextWriter stderr)
    {
        var model = loaded.Model;
        if (_model.PromptIds(args, Name, model) != null || args.GetValue(_model.Image!.File) != null)
            throw new UserError("generate: --prompts takes the prompts from its file; drop --prompt, --token-ids and --image");
        var texts = PromptsFile.Read(file);
        int[][] prompts = [.. texts.Select(model.Encode)];
        var options = new GenerationOptions
        {
            MaxNewTokens = args.GetValue(_maxNew), Temperature = (float)args.GetValue(_temperature), Seed = (ulong)args.GetValue(_seed),
            Interventions = loaded.Gates?.Interventions,
        };
        GenerationResult[] results;
        using (var progress = new Progress("generate", prompts.Length, to: stderr))
            results = BatchGenerator.Generate(model, prompts, options, args.GetValue(_batch), (_, _) => progress.Advance());
        var replies = texts.Select((t, i) => new PromptReply(t, model.Tokenizer!.Decode(results[i].NewIds), results[i])).ToList();
        if (args.GetValue(_out) is { } output)
        {
            AtomicFile.Write(output, stream => PromptsFile.WriteReplies(stream, replies));
            stderr.WriteLine($"wrote {replies.Count} replies to {output}");
        }
        else
        {
            using var buffer = new MemoryStream();
            PromptsFile.WriteReplies(buffer, replies);
            stdout.Write(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
        }
        return 0;
    }
}
