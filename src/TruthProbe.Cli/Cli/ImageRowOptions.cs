using System.CommandLine;
using System.Globalization;
using System.Text;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Probing;
using TruthProbe.Sharding;
using TruthProbe.Vision;

namespace TruthProbe.Cli;

/// <summary>The paper's Fig. 1 ways of showing a LLaVA model a probing row.</summary>
public enum ImageMode
{
    /// <summary>The row's own image.</summary>
    Image,
    /// <summary>An all-zero 336x336 RGB image, preprocessed like any other (so it arrives normalised, not as zeros).</summary>
    Black,
    /// <summary>The prompt without its image token, through the language model alone.</summary>
    TextOnly,
}

/// <summary>
/// <c>--images DIR --image-mode image|black|text-only --image-aspect pad|crop</c>: how <c>score</c> and <c>attention</c>
/// show a LLaVA model probing rows that name images (<c>image_path</c> or <c>image</c>, relative to DIR).
/// </summary>
public sealed class ImageRowOptions
{
    /// <summary>The reference's LLaVA probing prompt, run through the model's tokenizer (BOS, the image tokens, the text).</summary>
    public const string ImageTemplate = LlavaImagePrompts.ImageTemplate;
    public const string ImageToken = "<image>";

    public readonly Option<string?> Images = Opt.Text("--images", "DIR",
        "folder of the rows' images (their image_path or image field is relative to it), for a LLaVA model; the prompt is " +
        "'<image>\\n{question}\\nASSISTANT: {answer}' unless --template says otherwise (a Qwen2.5-VL / Omni model: its own chat template)");
    public readonly Option<string?> Mode = Opt.ChoiceOrNull("--image-mode",
        "what a LLaVA model sees at <image> (the paper's Fig. 1): each row's image (default with --images), an all-zero 336x336 image, " +
        "or no image (the prompt without <image>, language model alone)", "image", "black", "text-only");
    public readonly Option<string?> Aspect = ImageOptions.AspectOption();
    private readonly ImageOptions _budget = new();

    public IEnumerable<Symbol> Symbols => [Images, Mode, Aspect, _budget.MinPixels, _budget.MaxPixels];

    /// <summary>
    /// The image settings, checked before the model loads: null for a text run. Every row's image must exist (the first
    /// missing one is the error, naming its line and path), and the options must fit the model.
    /// </summary>
    public ImageRows? Read(ParseResult args, string verb, string modelPath, ProbingData data)
    {
        string? dir = args.GetValue(Images), modeText = args.GetValue(Mode), aspect = args.GetValue(Aspect);
        int? minPixels = args.GetValue(_budget.MinPixels), maxPixels = args.GetValue(_budget.MaxPixels);
        bool vision = Directory.Exists(modelPath) && (LlavaCheckpoint.IsLlavaFolder(modelPath) || QwenCheckpoint.IsQwenVLFolder(modelPath));
        if (!vision)
        {
            if (dir != null || modeText != null || aspect != null)
                throw new UserError($"{verb}: {(dir != null ? "--images" : modeText != null ? "--image-mode" : "--image-aspect")} needs a vision-language model (a llava-hf, Qwen2.5-VL or Omni folder); {modelPath} is a text-only model");
            if (minPixels != null || maxPixels != null)
                throw new UserError($"{verb}: --min-pixels and --max-pixels set a Qwen2.5-VL / Omni image budget; {modelPath} is not one");
            return null;
        }
        if ((minPixels != null || maxPixels != null) && !QwenCheckpoint.IsQwenVLFolder(modelPath))
            throw new UserError($"{verb}: --min-pixels and --max-pixels set a Qwen2.5-VL / Omni image budget; {modelPath} is a LLaVA folder");
        bool rowsNameImages = data.Rows.Any(r => r.Image != null);
        var mode = modeText switch
        {
            "black" => ImageMode.Black,
            "text-only" => ImageMode.TextOnly,
            "image" => ImageMode.Image,
            _ => dir != null ? ImageMode.Image : (ImageMode?)null,
        };
        if (mode == null)
        {
            if (rowsNameImages)
                throw new UserError($"{verb}: {data.Path} names images; give --images DIR (or --image-mode black|text-only), or score the rows' text on the language model alone with --image-mode text-only");
            if (aspect != null) throw new UserError($"{verb}: --image-aspect applies to images; give --images DIR or --image-mode black");
            if (minPixels != null || maxPixels != null) throw new UserError($"{verb}: --min-pixels / --max-pixels apply to images; give --images DIR or --image-mode black");
            return null;   // text rows on the language model, as before
        }
        if (mode == ImageMode.Image && dir == null)
            throw new UserError($"{verb}: --image-mode image shows each row its image; give --images DIR");
        if (mode != ImageMode.Image && dir != null)
            throw new UserError($"{verb}: --image-mode {modeText} does not read the rows' images; drop --images DIR");
        if (mode == ImageMode.TextOnly && aspect != null)
            throw new UserError($"{verb}: --image-aspect applies to images; --image-mode text-only shows none");

        var files = new Dictionary<int, string>();
        if (mode == ImageMode.Image)
        {
            if (!Directory.Exists(dir)) throw new UserError($"{dir}: images folder not found") { Field = "images" };
            foreach (var row in data.Rows)
            {
                if (row.Image == null)
                    throw new UserError($"{data.Path} line {row.Line}: row {row.Index} names no image (image_path or image); every row needs one with --images");
                string path = Path.GetFullPath(Path.Combine(dir!, row.Image));
                if (!File.Exists(path))
                    throw new UserError($"{data.Path} line {row.Line}: row {row.Index} names image '{row.Image}', not found at {path}") { Field = "images" };
                files[row.Index] = path;
            }
        }
        return new ImageRows(mode.Value, dir == null ? null : Path.GetFullPath(dir), aspect, files) { MinPixels = minPixels, MaxPixels = maxPixels };
    }
}

/// <summary>How a run shows rows their images: the mode, the folder, the aspect asked for and each row's image file.</summary>
public sealed record ImageRows(ImageMode Mode, string? Directory, string? AspectText, IReadOnlyDictionary<int, string> Files)
{
    /// <summary>The template: <paramref name="given"/> or the image prompt; in text-only mode with its <c>&lt;image&gt;</c> (and the newline after it) removed.</summary>
    public PromptTemplate Template(string? given)
    {
        string text = given == null ? ImageRowOptions.ImageTemplate : PromptTemplate.FromCommandLine(given).Text;
        if (Mode == ImageMode.TextOnly) return new PromptTemplate(text.Replace(ImageRowOptions.ImageToken + "\n", "").Replace(ImageRowOptions.ImageToken, ""));
        if (!text.Contains(ImageRowOptions.ImageToken, StringComparison.Ordinal))
            throw new UserError($"the template must hold {ImageRowOptions.ImageToken} where the image goes, got '{text}'") { Field = "template" };
        return new PromptTemplate(text);
    }

    public RowPrompts Prompts(LlavaModel model, PromptTemplate template) => new LlavaRowPrompts(model, template, this);

    /// <summary>--min-pixels / --max-pixels: a Qwen model's image budget in place of its folder's (null: the folder's).</summary>
    public int? MinPixels { get; init; }
    public int? MaxPixels { get; init; }

    /// <summary>The rows' prompts on the model loaded: a Qwen2.5-VL / Omni folder's chat template, else LLaVA's template (<paramref name="template"/> or the default).</summary>
    public RowPrompts Prompts(LoadedModel loaded, string? template) =>
        loaded.Qwen is { } qwen ? new QwenRowPrompts(qwen, template, this) : Prompts(loaded.Llava!, Template(template));

    public string ModeName => Mode switch { ImageMode.Image => "image", ImageMode.Black => "black", _ => "text-only" };

    /// <summary>
    /// The images the kept rows use, for the activations' metadata: the folder, their count and the sha256 of the sorted
    /// lines "name&lt;TAB&gt;sha256 of the file" (<paramref name="hash"/> gives a file's), the run's images in one hash.
    /// </summary>
    public IEnumerable<KeyValuePair<string, string>> ImagesUsed(IReadOnlyList<ProbingRow> kept, Func<string, string> hash)
    {
        var used = kept.Select(r => (r.Image!, hash(Files[r.Index]))).Distinct().OrderBy(x => x.Item1, StringComparer.Ordinal).ToList();
        yield return new("images_dir", Directory!);
        yield return new("images_count", used.Count.ToString(CultureInfo.InvariantCulture));
        yield return new("images_sha256", Hashing.Sha256(Encoding.UTF8.GetBytes(string.Concat(used.Select(u => $"{u.Item1}\t{u.Item2}\n")))));
    }
}

/// <summary>
/// Rows run on a LLaVA model in one <see cref="ImageMode"/>: its image modes through the library's
/// <see cref="LlavaImagePrompts"/> (each image, keyed by its content hash, encoded once while it stays in the cache), text-only
/// through the language model alone. LLaVA-NeXT's image-token count depends on the image's size, so its rows' images are
/// sized from their headers when their ids are made.
/// </summary>
internal sealed class LlavaRowPrompts : RowPrompts
{
    /// <summary>The paper's black image: all-zero RGB at LLaVA-1.5's 336x336, preprocessed like a photo.</summary>
    private const int BlackSize = 336;

    private readonly LlavaModel _model;
    private readonly PromptTemplate _template;
    private readonly ImageRows _rows;
    private readonly AspectMode _aspect;
    private readonly LlavaImagePrompts _images;
    private readonly Dictionary<string, string> _hashes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ImageSize> _sizes = new(StringComparer.Ordinal);
    private LlavaState? _textState;

    public LlavaRowPrompts(LlavaModel model, PromptTemplate template, ImageRows rows)
    {
        (_model, _template, _rows) = (model, template, rows);
        if (model.IsAnyres && rows.AspectText != null)
            throw new UserError($"--image-aspect applies to LLaVA-1.5; {model.Language.Source} is LLaVA-NeXT, which tiles each image at its best grid resolution (anyres)") { Field = "image_aspect" };
        _aspect = ImageOptions.AspectOf(rows.AspectText, model);
        if (rows.Mode != ImageMode.TextOnly) model.ImagePreprocessor(_aspect);   // the folder's settings are checked before any row runs
        _images = new LlavaImagePrompts(model, template, _aspect,
            row => ((_rows.Mode == ImageMode.Black ? "black" : Hash(_rows.Files[row.Index])) + "|" + _aspect, () => Image(row)), SizeOf);
    }

    public override Transformer Model => _model.Language;
    public override string Template => _template.Text;

    public override int[] Tokens(ProbingRow row)
    {
        if (_rows.Mode == ImageMode.TextOnly) return _model.EncodePrompt(_template.Render(row));
        try
        {
            return _images.Tokens(row);
        }
        catch (UserError e)
        {
            throw new UserError($"row {row.Index} (line {row.Line}): {e.Message}", e) { Field = "template" };
        }
    }

    public override IEnumerable<KeyValuePair<string, string>> Metadata(IReadOnlyList<ProbingRow> kept)
    {
        yield return new("image_mode", _rows.ModeName);
        if (_rows.Mode == ImageMode.TextOnly) yield break;
        yield return new("image_aspect", _model.IsAnyres ? "anyres" : _aspect == AspectMode.Pad ? "pad" : "crop");
        if (_model.VisionTowerFolder is { } tower)
        {
            yield return new("vision_tower", Path.GetFullPath(tower));
            yield return new("vision_tower_sha256", ShardManifest.HashModel(tower));
        }
        if (_rows.Mode == ImageMode.Black)
        {
            yield return new("image", $"all-zero RGB {BlackSize}x{BlackSize}");
            yield break;
        }
        foreach (var entry in _rows.ImagesUsed(kept, Hash)) yield return entry;
    }

    public override void Run(ProbingRow row, int[] tokens, ActivationCapture capture)
    {
        if (_rows.Mode != ImageMode.TextOnly)
        {
            _images.Run(row, tokens, capture);
            return;
        }
        _textState ??= _model.NewState();
        _textState.Text.Reset();
        _model.Language.Forward(_textState.Text, tokens, capture);
    }

    public override (int Start, int Length) Evidence(ProbingRow row, int[] tokens) => _rows.Mode == ImageMode.TextOnly
        ? throw new UserError("--image-mode text-only shows no image, so there is no image span to measure attention on; use image or black")
        : _images.Evidence(row, tokens);

    private RgbImage Image(ProbingRow row) => _rows.Mode == ImageMode.Black ? new RgbImage(BlackSize, BlackSize) : ImageFile.Load(_rows.Files[row.Index]);

    /// <summary>The row's image size where the token count depends on it (LLaVA-NeXT), else null.</summary>
    private ImageSize? SizeOf(ProbingRow row)
    {
        if (!_model.IsAnyres) return null;
        if (_rows.Mode == ImageMode.Black) return new ImageSize(BlackSize, BlackSize);
        string file = _rows.Files[row.Index];
        if (!_sizes.TryGetValue(file, out var size))
        {
            // The header's size: the pixels are decoded once, when the row runs and its image is not cached.
            var (width, height) = ImageFile.ReadSize(file);
            _sizes[file] = size = new ImageSize(height, width);
        }
        return size;
    }

    private string Hash(string file)
    {
        if (!_hashes.TryGetValue(file, out var hash)) _hashes[file] = hash = Hashing.Sha256File(file);
        return hash;
    }
}
