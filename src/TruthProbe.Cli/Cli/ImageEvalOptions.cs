using System.CommandLine;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Numerics;
using TruthProbe.Sharding;
using TruthProbe.Vision;

namespace TruthProbe.Cli;

/// <summary>
/// What <c>eval pope</c> and <c>eval chair</c> take when they run a LLaVA model themselves (issue 14):
/// <c>&lt;model&gt; --images DIR [--image-aspect pad|crop] [--max-new-tokens N]</c> and the gating options. With
/// gates, every prompt is answered twice, vanilla and gated. Replies go to a resumable log in the output folder
/// (<see cref="ReplyLog"/>) as they are made.
/// </summary>
public sealed class ImageEvalOptions(int defaultMaxNewTokens, string maxNewTokensWhy)
{
    public readonly ModelInput Model = new(gating: true, optional: true, visionTower: true);
    public readonly Option<string?> Images = Opt.Text("--images", "DIR", "with a model: the folder holding the images the prompts are about");
    public readonly Option<string?> Aspect = new ImageOptions().Aspect;
    private readonly ImageOptions _budget = new();
    public readonly Option<int?> MaxNewTokens = Opt.IntOrNull("--max-new-tokens", "N",
        $"with a model: new tokens per reply, greedy, stopping at EOS (default {defaultMaxNewTokens}: {maxNewTokensWhy})", min: 1);

    public readonly ShardOption Shard = new();

    public IEnumerable<Symbol> Symbols => [.. Model.Symbols, Images, Aspect, _budget.MinPixels, _budget.MaxPixels, MaxNewTokens, Shard.Option];

    /// <summary>
    /// Whether the model folder given is a Qwen2.5-VL / Omni one (null: not Qwen; true: the Omni thinker), read from its
    /// config before the slow load, so that the prompts are worded in the model's own chat template.
    /// </summary>
    public bool? QwenOmni(ParseResult args)
    {
        string path = args.GetValue(Model.Model)!;
        return Directory.Exists(path) && QwenCheckpoint.IsQwenVLFolder(path) ? QwenVLConfig.FromHfConfig(Path.Combine(path, "config.json")).IsOmni : null;
    }

    /// <summary>
    /// Ends a shard's run: its log stays as the part's reply log (a rerun of the shard resumes from it) and
    /// shard.json marks the part finished. The unit is images: a shard answers every prompt about its images.
    /// </summary>
    public int FinishPart(ParseResult args, string verb, ReplyLog log, Shard shard, IReadOnlyList<ImagePrompt> prompts, string outDir, TextWriter stdout)
    {
        log.Dispose();
        int images = prompts.Select(p => p.Image).Distinct().Count();
        ShardManifest.For(verb, ShardOption.SharedArguments(args), shard, "images", images, [("run", log.Fingerprint)]).Write(outDir);
        var (start, end) = shard.Range(images);
        stdout.WriteLine($"shard {shard.Label}: images {start}-{end - 1} of {images}, replies in {log.Path}; when every shard is done: truthprobe merge PARTS... --out DIR");
        return 0;
    }

    /// <summary>Set by <see cref="JoinParts"/>: the run is a merge, it finds every reply in the joined log and only scores.</summary>
    public bool Merging { get; private set; }

    /// <summary>The parts' reply logs joined in <paramref name="outDir"/>, where the verb's own run then finds every reply and only scores.</summary>
    public void JoinParts(ShardParts parts, string outDir)
    {
        Merging = true;
        Directory.CreateDirectory(outDir);
        ReplyLog.Join(parts.Parts.Select(p => Path.Combine(p.Dir, ImageEvalOutputs.PartialReplies)).ToList(), Path.Combine(outDir, ImageEvalOutputs.PartialReplies));
    }

    public bool ModelGiven(ParseResult args) => args.GetValue(Model.Model) != null;

    /// <summary>Refuses the options that only mean something with a model (these and the verb's <paramref name="own"/>) when the verb scores replies made elsewhere.</summary>
    public void RefuseWithoutModel(ParseResult args, string verb, params Option[] own)
    {
        foreach (var option in Symbols.OfType<Option>().Concat(own))
            if (args.GetResult(option) is { Implicit: false })
                throw new UserError($"{verb}: {option.Name} applies when the verb runs a model; give the model first ({verb} <model> ...), or drop {option.Name}");
    }

    /// <summary>The folder of --images, required with a model.</summary>
    public string ImagesFolder(ParseResult args, string verb)
    {
        string folder = args.GetValue(Images) ?? throw new UserError($"{verb}: with a model, give --images DIR (the folder of the images)");
        if (!Directory.Exists(folder)) throw new UserError($"{folder}: no such folder; --images names the folder holding the images") { Field = "images" };
        return folder;
    }

    /// <summary>
    /// Loads the model (a LLaVA, Qwen2.5-VL or Omni folder: a text-only model is an error), its image preprocessor and gates, checks that
    /// every image decodes and every prompt fits the context, all before anything is written.
    /// </summary>
    public Session Open(ParseResult args, string verb, IReadOnlyList<ImagePrompt> prompts)
    {
        var loaded = Model.Load(args, verb);
        try
        {
            if (loaded.Llava == null && loaded.Qwen == null)
                throw new UserError($"{verb}: --images needs a vision-language model (a llava-hf, Qwen2.5-VL or Omni folder); {loaded.Model.Source} is a text-only {loaded.Model.Config.Architecture} model");
            if (loaded.Model.Tokenizer == null)
                throw new UserError($"{loaded.Model.Source}: no tokenizer found with the model; the prompts are text, give one with --tokenizer FILE");
            string? aspectText = args.GetValue(Aspect);
            int? minPixels = args.GetValue(_budget.MinPixels), maxPixels = args.GetValue(_budget.MaxPixels);
            int maxNew = args.GetValue(MaxNewTokens) ?? defaultMaxNewTokens;
            List<Arm> arms = [new("vanilla", null), .. loaded.Gates is { } g ? [new Arm("gated", g.Interventions)] : Array.Empty<Arm>()];
            string? tokenizer = args.GetValue(Model.Tokenizer);
            string? tokenizerSha = tokenizer == null ? null : Hashing.Sha256File(tokenizer);
            if (loaded.Qwen is { } qwen)
            {
                if (aspectText != null) throw new UserError($"{verb}: --image-aspect is LLaVA's; Qwen models keep the image's aspect (smart_resize)");
                var processor = qwen.ImageProcessor(minPixels, maxPixels);
                ImagePromptRunner.CheckImages(prompts);
                // Each image's token count follows from its size under the budget.
                var tokens = prompts.Select(p => p.Image).Distinct().ToDictionary(file => file, file =>
                {
                    var image = ImageFile.Load(file);
                    var (height, width) = processor.TargetSize(image.Height, image.Width);
                    return height * width / (processor.Config.Factor * processor.Config.Factor);
                });
                CheckContext(loaded, prompts.Max(p => loaded.Model.Encode(p.Prompt).Length - 1 + tokens[p.Image]));
                return new Session(loaded, null, null, $"smart_resize {processor.Config.MinPixels}..{processor.Config.MaxPixels} pixels", maxNew, arms)
                {
                    Qwen = qwen,
                    QwenProcessor = processor,
                    TokenizerSha256 = tokenizerSha,
                };
            }
            if (minPixels != null || maxPixels != null)
                throw new UserError($"{verb}: --min-pixels and --max-pixels set a Qwen2.5-VL / Omni image budget; {loaded.Model.Source} is a LLaVA folder");
            var llava = loaded.Llava!;
            if (llava.IsAnyres && aspectText != null)
                throw new UserError($"{verb}: --image-aspect applies to LLaVA-1.5; {loaded.Model.Source} is LLaVA-NeXT, which tiles each image at its best grid resolution (anyres)");
            var aspect = aspectText == null ? llava.DefaultAspect : aspectText == "pad" ? AspectMode.Pad : AspectMode.Crop;
            var preprocessor = llava.ImagePreprocessor(aspect);
            var sizes = ImagePromptRunner.CheckImages(prompts);
            CheckContext(loaded, prompts.Select(p => (p.Prompt, Size: sizes[p.Image])).Distinct().Max(p => llava.ExpandImageTokens(llava.EncodePrompt(p.Prompt), p.Size).Length));
            return new Session(loaded, llava, preprocessor, llava.IsAnyres ? "anyres" : aspect == AspectMode.Pad ? "pad" : "crop", maxNew, arms)
            {
                TokenizerSha256 = tokenizerSha,
            };
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
    }

    private static void CheckContext(LoadedModel loaded, int longest)
    {
        if (longest >= loaded.Model.Config.MaxContext)
            throw new UserError($"{loaded.Model.Source}: a prompt of {longest} tokens (image tokens included) leaves no room for a reply in the context of {loaded.Model.Config.MaxContext}");
    }

    /// <summary>A loaded model ready to answer prompts about images, vanilla and (with gates) gated.</summary>
    /// <param name="Aspect">how images were fitted: LLaVA's pad or crop, a Qwen model's smart_resize budget.</param>
    public sealed record Session(LoadedModel Loaded, LlavaModel? Llava, ClipPreprocessor? Preprocessor, string Aspect, int MaxNewTokens, IReadOnlyList<Arm> Arms) : IDisposable
    {
        /// <summary>A Qwen2.5-VL / Omni model and its image processor (then <see cref="Llava"/> is null).</summary>
        public QwenVLModel? Qwen { get; init; }
        public QwenImageProcessor? QwenProcessor { get; init; }

        /// <summary>The sha256 of a --tokenizer given in place of the folder's own (it changes every prompt's ids).</summary>
        public string? TokenizerSha256 { get; init; }

        public Dictionary<string, string>? Gating => Loaded.Gates is { } g ? Loaded.Gating.Provenance(g.Table) : null;

        /// <summary>
        /// Makes every reply not yet in <paramref name="outDir"/>'s reply log (creating the folder and log), and returns
        /// the log holding all of them. The log's fingerprint covers the model files, the prompts, the images' bytes and
        /// every option that changes a reply, so a resumed run continues only the very same run.
        /// </summary>
        /// <param name="shard">answer only the prompts about this shard's block of the images (the log still names the whole run).</param>
        /// <param name="merging">every reply must already be in the log (joined from the parts): a missing one is an error, not generated.</param>
        public ReplyLog Answer(string task, IReadOnlyList<ImagePrompt> prompts, string outDir, TextWriter stderr, Shard? shard = null, bool merging = false)
        {
            Directory.CreateDirectory(outDir);
            // An earlier run's summary would mark the folder finished while this run is still writing it.
            File.Delete(Path.Combine(outDir, ImageEvalOutputs.SummaryFile));
            var log = ReplyLog.Open(Path.Combine(outDir, ImageEvalOutputs.PartialReplies), Fingerprint(task, prompts));
            try
            {
                var todo = prompts;
                if (shard is { } part)
                {
                    var images = prompts.Select(p => p.Image).ToList();
                    part.RequireItems(images.Distinct().Count(), "images");
                    todo = part.ItemsOfGroups(images).Select(i => prompts[i]).ToList();
                }
                long total = (long)todo.Count * Arms.Count;
                if (merging && log.Resumed != total)
                    throw new UserError($"merge: the parts hold {log.Resumed} of the run's {total} replies; a part is incomplete, rerun its shard");
                if (log.Resumed > 0 && !merging) stderr.WriteLine($"resuming: {log.Resumed} of {total} replies already in {log.Path}");
                using var progress = new Progress($"{task} replies", total - log.Resumed, to: stderr);
                var options = new GenerationOptions { MaxNewTokens = MaxNewTokens };
                if (Qwen != null) ImagePromptRunner.Run(Qwen, QwenProcessor!, todo, Arms, options, log, progress);
                else ImagePromptRunner.Run(Llava!, Preprocessor!, todo, Arms, options, log, progress);
                return log;
            }
            catch
            {
                log.Dispose();
                throw;
            }
        }

        private string Fingerprint(string task, IReadOnlyList<ImagePrompt> prompts)
        {
            var images = new JsonObject();
            foreach (string image in prompts.Select(p => p.Image).Distinct()) images[Path.GetFileName(image)] = Hashing.Sha256File(image);
            var record = new JsonObject
            {
                ["task"] = task,
                ["model"] = ModelFiles(Loaded.Model.Source),
                ["tokenizer"] = TokenizerSha256,
                ["prompts"] = new JsonArray([.. prompts.Select(p => (JsonNode)new JsonArray(p.Id, Path.GetFileName(p.Image), p.Prompt))]),
                ["images"] = images,
                ["image_aspect"] = Aspect,
                ["max_new_tokens"] = MaxNewTokens,
                ["gating"] = Gating is { } g ? new JsonObject([.. g.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))]) : null,
            };
            // Only when they are not the defaults, so that the fingerprints of earlier runs stay what they were.
            if (Loaded.Model.KvCache != KvCacheType.F32) record["kv_cache"] = Loaded.Model.KvCache.Name();
            if (Llava?.VisionTowerFolder is { } tower) record["vision_tower"] = ModelFiles(tower);
            return Hashing.Sha256(System.Text.Encoding.UTF8.GetBytes(record.ToJsonString()));
        }

        /// <summary>
        /// The model folder's files by name and size, with the sha256 of those under 64 MB (config, tokenizer,
        /// preprocessor): hashing 14 GB of weights on every start would cost minutes.
        /// </summary>
        private static JsonObject ModelFiles(string folder)
        {
            var files = new JsonObject();
            foreach (var f in new DirectoryInfo(folder).GetFiles().OrderBy(f => f.Name, StringComparer.Ordinal))
                files[f.Name] = f.Length < (64L << 20) ? Hashing.Sha256File(f.FullName) : f.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return files;
        }

        /// <summary>The summary's <c>run</c> object: what was run on what, for the reader.</summary>
        public JsonObject Run(string task, IReadOnlyList<ImagePrompt> prompts, string imagesFolder) => new()
        {
            ["task"] = task,
            ["model"] = Path.GetFullPath(Loaded.Model.Source),
            ["kv_cache"] = Loaded.Model.KvCache.Name(),
            ["images"] = Path.GetFullPath(imagesFolder),
            ["image_aspect"] = Aspect,
            ["prompts"] = prompts.Count,
            ["prompt_example"] = prompts[0].Prompt,
            ["decoding"] = "greedy, stop at EOS",
            ["max_new_tokens"] = MaxNewTokens,
            ["arms"] = new JsonArray([.. Arms.Select(a => (JsonNode)a.Name)]),
            ["gating"] = Gating is { } g ? new JsonObject([.. g.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))]) : null,
        };

        public void Dispose() => Loaded.Dispose();
    }
}
