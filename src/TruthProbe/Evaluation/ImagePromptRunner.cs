using TruthProbe.Common;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Vision;

namespace TruthProbe.Evaluation;

/// <summary>One prompt about one image: a POPE question (id = question_id) or a CHAIR caption request (id = image_id).</summary>
public sealed record ImagePrompt(long Id, string Image, string Prompt);

/// <summary>An arm of a model-driven run: its name in the outputs ("vanilla", "gated") and its interventions.</summary>
public sealed record Arm(string Name, Interventions? Interventions);

/// <summary>
/// LLaVA-1.5's prompts as its own evaluation code builds them: the <c>vicuna_v1</c> conversation (LLaVA's
/// <c>conv_templates</c>, <c>SeparatorStyle.TWO</c> with <c>sep " "</c>): system + " " + "USER: " + message + " " +
/// "ASSISTANT:", the message being <c>&lt;image&gt;\n</c> + the question (<c>model_vqa_loader</c>, no image start/end tokens).
/// </summary>
public static class LlavaPrompts
{
    public const string System = "A chat between a curious human and an artificial intelligence assistant. " +
                                 "The assistant gives helpful, detailed, and polite answers to the human's questions.";
    /// <summary>What LLaVA's POPE question file appends to each question (its <c>llava_pope_test.jsonl</c>).</summary>
    public const string ShortAnswer = "Answer the question using a single word or phrase.";
    public const string DescribeInDetail = "Please describe this image in detail.";

    public static string Vicuna(string question) => $"{System} USER: <image>\n{question} ASSISTANT:";

    /// <summary>A POPE question with the short-answer instruction (not added twice to a question that already ends with it).</summary>
    public static string Pope(string question) => Vicuna(WithShortAnswer(question));

    /// <summary>The question with "\n" + <see cref="ShortAnswer"/> appended, unless it already ends with it (LLaVA's and lmms-eval's POPE wording).</summary>
    public static string WithShortAnswer(string question) =>
        question.EndsWith(ShortAnswer, StringComparison.Ordinal) ? question : question + "\n" + ShortAnswer;

    public static string Chair => Vicuna(DescribeInDetail);
}

/// <summary>
/// Runs every prompt under every arm, image by image, appending each reply to a <see cref="ReplyLog"/> as it comes and
/// skipping those the log already holds. Each image is decoded and encoded once, and with prefix reuse its prompts'
/// shared prefix is prefilled once per arm (<see cref="ImagePrefixCache"/>). Replies are the new tokens decoded and
/// stripped, as LLaVA's <c>model_vqa</c> writes them.
/// </summary>
public static class ImagePromptRunner
{
    public static void Run(LlavaModel model, ClipPreprocessor preprocessor, IReadOnlyList<ImagePrompt> prompts, IReadOnlyList<Arm> arms,
        GenerationOptions options, ReplyLog log, Progress? progress = null, bool reusePrefix = true)
    {
        var cache = new ImagePrefixCache(model, arms.Select(a => a.Interventions).ToList(), reusePrefix);
        Run(model.Language, prompts, arms, options, log, progress, cache, (file, items) =>
        {
            var image = Prepare(model, preprocessor, ImageFile.Load(file));
            var ids = items.Select(p => model.ExpandImageTokens(model.EncodePrompt(p.Prompt), image.Size)).ToList();
            cache.SetImage(image.Pixels, ids, image.Size);
            return ids;
        });
    }

    /// <summary>The same for a Qwen2.5-VL / Omni model: each image through its processor, its pads expanded to the image's token count.</summary>
    public static void Run(QwenVLModel model, QwenImageProcessor processor, IReadOnlyList<ImagePrompt> prompts, IReadOnlyList<Arm> arms,
        GenerationOptions options, ReplyLog log, Progress? progress = null, bool reusePrefix = true)
    {
        var cache = new ImagePrefixCache(model, arms.Select(a => a.Interventions).ToList(), reusePrefix);
        Run(model.Language, prompts, arms, options, log, progress, cache, (file, items) =>
        {
            var image = processor.Preprocess(ImageFile.Load(file));
            var ids = items.Select(p => model.ExpandImageTokens(model.Language.Encode(p.Prompt), image)).ToList();
            cache.SetImage(image, ids);
            return ids;
        });
    }

    /// <param name="setImage">encodes the image file into the cache for its prompts and returns their expanded ids.</param>
    private static void Run(Transformer language, IReadOnlyList<ImagePrompt> prompts, IReadOnlyList<Arm> arms, GenerationOptions options,
        ReplyLog log, Progress? progress, ImagePrefixCache cache, Func<string, IReadOnlyList<ImagePrompt>, List<int[]>> setImage)
    {
        var tokenizer = language.Tokenizer ?? throw new UserError($"{language.Source}: the model has no tokenizer; give one with the model") { Field = "tokenizer" };
        foreach (var group in prompts.GroupBy(p => p.Image))
        {
            var items = group.ToList();
            if (items.All(p => arms.All(a => log.Replies.ContainsKey((a.Name, p.Id))))) continue;
            var ids = setImage(group.Key, items);
            for (int i = 0; i < items.Count; i++)
                for (int a = 0; a < arms.Count; a++)
                {
                    if (log.Replies.ContainsKey((arms[a].Name, items[i].Id))) continue;
                    var result = cache.Generate(a, ids[i], options);
                    log.Add(arms[a].Name, items[i].Id, tokenizer.Decode(result.NewIds).Trim());
                    progress?.Advance();
                }
        }
    }

    /// <summary>LLaVA-1.5: the session's CLIP preprocessing (its aspect mode); LLaVA-NeXT: the anyres tiles of the image's size.</summary>
    private static LlavaImage Prepare(LlavaModel model, ClipPreprocessor preprocessor, RgbImage image) =>
        model.IsAnyres ? model.PrepareImage(image) : new LlavaImage(preprocessor.Preprocess(image), new ImageSize(image.Height, image.Width));

    /// <summary>
    /// Every image file named, checked before any reply is generated so that a missing or unreadable image stops the
    /// run with no output: each is decoded once (and dropped: a run of 500 images would not keep them all). Returns each
    /// image's size, which LLaVA-NeXT's image-token count depends on.
    /// </summary>
    public static Dictionary<string, ImageSize> CheckImages(IEnumerable<ImagePrompt> prompts)
    {
        var sizes = new Dictionary<string, ImageSize>(StringComparer.Ordinal);
        foreach (string image in prompts.Select(p => p.Image).Distinct())
        {
            if (!File.Exists(image)) throw new UserError($"{image}: image not found; every image the questions name must be in the images folder") { Field = "images" };
            var decoded = ImageFile.Load(image);
            sizes[image] = new ImageSize(decoded.Height, decoded.Width);
        }
        return sizes;
    }
}
