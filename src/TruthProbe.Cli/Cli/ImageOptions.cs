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

    public readonly Option<string?> VisionTower = Opt.Text("--vision-tower", "DIR",
        "the CLIP folder (config.json, safetensors, preprocessor_config.json) an original-layout LLaVA checkpoint (LlavaLlamaForCausalLM) names as mm_vision_tower");

    public IEnumerable<Symbol> Symbols => [File, Aspect, VisionTower];

    /// <summary>
    /// The image given, preprocessed for the model; null when none was. A text-only model given an image, an image
    /// without an image token in the prompt, or an image token without an image: one <see cref="UserError"/> each.
    /// </summary>
    public ImageInput? Read(ParseResult args, string verb, LoadedModel loaded, ReadOnlySpan<int> prompt)
    {
        string? file = args.GetValue(File), aspectText = args.GetValue(Aspect);
        var llava = loaded.Llava;
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
