using System.CommandLine;
using TruthProbe.Common;
using TruthProbe.Imaging;
using TruthProbe.Vision;

namespace TruthProbe.Cli;

/// <summary>
/// <c>--image FILE [--image-aspect pad|crop]</c>: the image a LLaVA model sees at the prompt's <c>&lt;image&gt;</c>,
/// decoded and preprocessed with the checkpoint's own <c>preprocessor_config.json</c>.
/// </summary>
public sealed class ImageOptions
{
    public readonly Option<string?> File = Opt.Text("--image", "FILE",
        "a PNG or JPEG for a LLaVA model; the prompt's <image> token marks where it goes");
    public readonly Option<string?> Aspect = AspectOption();

    /// <summary>--image-aspect, declared once for every verb that preprocesses images.</summary>
    public static Option<string?> AspectOption() => Opt.ChoiceOrNull("--image-aspect",
        "how a non-square image becomes square: centre crop (CLIPImageProcessor) or LLaVA's pad with the mean colour (default: the checkpoint's, crop for llava-hf, pad for the original layout)",
        "pad", "crop");

    /// <summary>The aspect named on the command line, else <paramref name="model"/>'s default.</summary>
    public static AspectMode AspectOf(string? text, LlavaModel model) => text == null ? model.DefaultAspect : text == "pad" ? AspectMode.Pad : AspectMode.Crop;

    public readonly Option<string?> VisionTower = VisionTowerOption();

    /// <summary>--vision-tower, declared once for every verb that loads a LLaVA model.</summary>
    public static Option<string?> VisionTowerOption() => Opt.Text("--vision-tower", "DIR",
        "the CLIP folder (config.json, safetensors, preprocessor_config.json) an original-layout LLaVA checkpoint (LlavaLlamaForCausalLM) names as mm_vision_tower");

    public readonly Option<int?> MinPixels = Opt.IntOrNull("--min-pixels", "N",
        "Qwen2.5-VL / Omni: the fewest pixels smart_resize keeps (default: the checkpoint's preprocessor_config.json; lmms-eval uses 200704)", min: 1);
    public readonly Option<int?> MaxPixels = Opt.IntOrNull("--max-pixels", "N",
        "Qwen2.5-VL / Omni: the most pixels smart_resize keeps (default: the checkpoint's; lmms-eval uses 1605632); sets the image-token count", min: 1);

    public IEnumerable<Symbol> Symbols => [File, Aspect, MinPixels, MaxPixels, VisionTower];

    /// <summary>
    /// The image given, preprocessed for the model; null when none was. A text-only model given an image, an image
    /// without an image token in the prompt, or an image token without an image: one <see cref="UserError"/> each.
    /// </summary>
    public ImageInput? Read(ParseResult args, string verb, LoadedModel loaded, ReadOnlySpan<int> prompt)
    {
        string? file = args.GetValue(File), aspectText = args.GetValue(Aspect);
        var llava = loaded.Llava;
        if (args.GetValue(MinPixels) != null || args.GetValue(MaxPixels) != null)
            throw new UserError($"{verb}: --min-pixels and --max-pixels set a Qwen2.5-VL / Omni image budget; {loaded.Model.Source} is not one");
        if (file == null)
        {
            if (aspectText != null) throw new UserError($"{verb}: --image-aspect applies to an image; give --image FILE");
            if (llava != null && prompt.Contains(llava.Config.ImageTokenId))
                throw new UserError($"{verb}: the prompt holds the image token (id {llava.Config.ImageTokenId}) but no image was given; add --image FILE or remove <image>");
            return null;
        }
        if (llava == null)
            throw new UserError($"{verb}: --image needs a vision-language model (a llava-hf folder); {loaded.Model.Source} is a text-only {loaded.Model.Config.Architecture} model");
        int imageToken = llava.Config.ImageTokenId;
        if (!prompt.Contains(imageToken))
            throw new UserError($"{verb}: --image needs the image token <image> (id {imageToken}) in the prompt where the image goes, e.g. --prompt \"USER: <image>\\nWhat is in the image? ASSISTANT:\"");
        if (llava.IsAnyres && aspectText != null)
            throw new UserError($"{verb}: --image-aspect applies to LLaVA-1.5; {loaded.Model.Source} is LLaVA-NeXT, which tiles the image at its best grid resolution (anyres)");
        var aspect = AspectOf(aspectText, llava);
        llava.ImagePreprocessor(aspect);   // the folder's preprocessor settings are checked before the image is read
        var image = llava.PrepareImage(ImageFile.Load(file), llava.IsAnyres ? null : aspect);
        return new ImageInput(llava, Path.GetFullPath(file), aspect, image.Pixels) { Size = image.Size };
    }

    /// <summary>
    /// The image given to a Qwen2.5-VL / Omni model, preprocessed by its Qwen2VLImageProcessor (with --min-pixels /
    /// --max-pixels in place of the folder's budget); null when none was. The same errors as <see cref="Read"/>, for the
    /// image pad token.
    /// </summary>
    public QwenImageInput? ReadQwen(ParseResult args, string verb, QwenVLModel qwen, ReadOnlySpan<int> prompt)
    {
        string? file = args.GetValue(File);
        int? min = args.GetValue(MinPixels), max = args.GetValue(MaxPixels);
        int pad = qwen.Config.ImageTokenId;
        if (args.GetValue(Aspect) != null) throw new UserError($"{verb}: --image-aspect is LLaVA's; Qwen models keep the image's aspect (smart_resize)");
        if (file == null)
        {
            if (min != null || max != null) throw new UserError($"{verb}: --min-pixels / --max-pixels apply to an image; give --image FILE");
            if (prompt.Contains(pad))
                throw new UserError($"{verb}: the prompt holds the image pad token (id {pad}) but no image was given; add --image FILE or remove it");
            return null;
        }
        if (!prompt.Contains(pad))
            throw new UserError($"{verb}: --image needs the image pad token (id {pad}, {(qwen.Config.IsOmni ? "<|IMAGE|>" : "<|image_pad|>")}) in the prompt where the image goes, between the vision start and end tokens");
        var processor = qwen.ImageProcessor(min, max);
        return new QwenImageInput(qwen, Path.GetFullPath(file), processor.Config, processor.Preprocess(ImageFile.Load(file)));
    }
}

/// <summary>An image ready for a Qwen model: its pixel rows and grid, the budget it was resized under, and where it came from.</summary>
public sealed record QwenImageInput(QwenVLModel Model, string Path, QwenImageConfig Config, QwenImage Image)
{
    public Dictionary<string, string> Provenance() => new(StringComparer.Ordinal)
    {
        ["image"] = Path,
        ["image_sha256"] = Hashing.Sha256File(Path),
        ["image_grid_thw"] = $"{Image.GridT},{Image.GridH},{Image.GridW}",
        ["min_pixels"] = Config.MinPixels.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["max_pixels"] = Config.MaxPixels.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

/// <summary>An image ready for <paramref name="Model"/>: its normalised [3, H, W] (LLaVA-NeXT: [tiles, 3, H, W]) pixels and where they came from.</summary>
public sealed record ImageInput(LlavaModel Model, string Path, AspectMode Aspect, float[] Pixels)
{
    /// <summary>The image's size before preprocessing (LLaVA-NeXT's grid and token count depend on it).</summary>
    public ImageSize? Size { get; init; }

    /// <summary>How the run saw the image, for outputs' metadata.</summary>
    public Dictionary<string, string> Provenance() => new(StringComparer.Ordinal)
    {
        ["image"] = Path,
        ["image_sha256"] = Hashing.Sha256File(Path),
        ["image_aspect"] = Model.IsAnyres ? "anyres" : Aspect == AspectMode.Pad ? "pad" : "crop",
    };
}
