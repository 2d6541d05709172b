using System.Buffers;
using TruthProbe.Common;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Tokenizers;

namespace TruthProbe.Vision;

/// <summary>One sequence through a LLaVA model: the decoder's cache and buffers, and the vision tower's.</summary>
public sealed class LlavaState
{
    public RunState Text { get; }
    public VisionState Vision { get; }

    internal LlavaState(LlavaModel model)
    {
        Text = model.Language.NewState();
        Vision = new VisionState(model.Config);
    }
}

/// <summary>
/// A LLaVA-1.5 model (llava-hf folder): the CLIP tower and projector, and the language model as an ordinary
/// <see cref="Transformer"/> whose every hook, gate and cache runs over the image positions too. The image's
/// features replace the embeddings at the positions of the image token, in order, as transformers does.
/// </summary>
public sealed partial class LlavaModel : IDisposable
{
    public LlavaConfig Config { get; }
    public LlavaLayout Layout { get; }
    public Transformer Language { get; }
    public ClipWeights Vision { get; }
    public ProjectorWeights Projector { get; }
    /// <summary>The folder's <c>preprocessor_config.json</c> (CLIPImageProcessor), null when it has none.</summary>
    public ClipConfig? Preprocessor { get; }
    /// <summary>How images are made square unless the user says otherwise: llava-hf's processor centre-crops, the original release pads.</summary>
    public AspectMode DefaultAspect => Config.PadToSquare ? AspectMode.Pad : AspectMode.Crop;
    // Where preprocessor_config.json is read: the model folder, or for the original layout the CLIP folder.
    private readonly string _preprocessorFolder;
    private readonly FiniteVision _finite;

    private LlavaModel(LlavaConfig config, LlavaLayout layout, Transformer language, ClipWeights vision, ProjectorWeights projector, ClipConfig? preprocessor, string preprocessorFolder)
    {
        _preprocessorFolder = preprocessorFolder;
        Config = config;
        Layout = layout;
        Language = language;
        Vision = vision;
        Projector = projector;
        Preprocessor = preprocessor;
        _finite = FiniteVision.Llava(this);
    }

    public const string PreprocessorFile = "preprocessor_config.json";

    /// <summary>
    /// Loads a llava-hf folder (either tensor layout) with its tokenizer (<paramref name="tokenizerPath"/>, else the
    /// folder's own, when it has one) and preprocessor config; the files are mapped once and shared. An original-layout
    /// checkpoint takes its tower and preprocessor config from the CLIP folder <paramref name="visionTower"/>.
    /// </summary>
    public static LlavaModel Load(string folder, string? tokenizerPath = null, string? visionTower = null)
    {
        var (config, layout, text, vision, projector, files) = LlavaCheckpoint.Load(folder, visionTower);
        string preprocessorFolder = config.Original ? visionTower! : folder;
        ITokenizer? tokenizer;
        ClipConfig? preprocessor;
        try
        {
            tokenizer = tokenizerPath != null ? TokenizerLoader.FromFile(tokenizerPath) : TokenizerLoader.FromModelDirectory(folder);
            string preprocessorPath = Path.Combine(preprocessorFolder, PreprocessorFile);
            preprocessor = File.Exists(preprocessorPath) ? ClipConfig.Read(preprocessorPath) : null;
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
        var language = new Transformer(config.Text, text, folder, "llava-hf", files) { Tokenizer = tokenizer };
        return new LlavaModel(config, layout, language, vision, projector, preprocessor, preprocessorFolder);
    }

    /// <summary>The folder's CLIPImageProcessor with <paramref name="aspect"/>: images to the tower's normalised [3, H, W] pixels.</summary>
    public ClipPreprocessor ImagePreprocessor(AspectMode aspect)
    {
        string path = Path.Combine(_preprocessorFolder, PreprocessorFile);
        var config = Preprocessor ?? throw new UserError($"{path}: not found; a llava-hf folder holds the CLIPImageProcessor settings of its checkpoint there (copy it from the checkpoint's repository)");
        int size = Config.Vision.ImageSize;
        if (config.CropWidth != size || config.CropHeight != size || !config.DoCenterCrop)
            throw new UserError($"{path}: images come out {(config.DoCenterCrop ? $"{config.CropWidth}x{config.CropHeight}" : "uncropped")} but the vision tower takes {size}x{size}; the preprocessor config does not belong to this model");
        return new ClipPreprocessor(config, aspect);
    }

    public LlavaState NewState() => new(this);

    /// <summary>
    /// The ids as the decoder sees them: a single image token becomes <see cref="LlavaConfig.ImageTokens"/> of them (what
    /// the processor of current transformers does to the text); ids that already hold that many are kept as they are.
    /// </summary>
    public int[] ExpandImageTokens(ReadOnlySpan<int> ids, ImageSize? imageSize = null)
    {
        int image = Config.ImageTokenId, count = 0, first = -1;
        for (int t = 0; t < ids.Length; t++)
            if (ids[t] == image) { count++; if (first < 0) first = t; }
        int expected = ImageTokens(imageSize);
        if (count == expected) return ids.ToArray();
        if (count != 1)
            throw new UserError($"the prompt holds {count} image tokens (id {image}); one image needs either a single <image> (expanded to {expected}) or exactly {expected}");
        return [.. ids[..first], .. Enumerable.Repeat(image, expected), .. ids[(first + 1)..]];
    }

    /// <summary>
    /// Pixels ([3, H, W], normalised; for LLaVA-NeXT [tiles, 3, H, W] of an image of <paramref name="imageSize"/>, as
    /// <see cref="PrepareImage"/> gives them) to the [image tokens, d_model] rows that replace the image tokens.
    /// </summary>
    public ReadOnlySpan<float> EncodeImage(LlavaState state, ReadOnlySpan<float> pixelValues, VisionCapture? capture = null, ImageSize? imageSize = null)
    {
        bool check = !Language.AllowNonFinite;
        if (check) _finite.RequireInputs(pixelValues);
        var features = IsAnyres ? EncodeAnyres(state.Vision, pixelValues, capture, Anyres(imageSize))
            : ClipVision.Encode(Config, Vision, Projector, state.Vision, pixelValues, capture);
        if (check) _finite.RequireOutputs(features, Config.Text.DModel, capture);
        return features;
    }

    /// <summary>
    /// Encodes the image, then runs the ids (one <c>&lt;image&gt;</c> or the expanded count, see <see cref="ExpandImageTokens"/>)
    /// at the state's next positions with the image features in place of the image tokens. Returns the last position's
    /// logits. <paramref name="capture"/> and <paramref name="interventions"/> are the decoder's, over the expanded ids.
    /// </summary>
    public ReadOnlySpan<float> Forward(LlavaState state, ReadOnlySpan<int> ids, ReadOnlySpan<float> pixelValues,
        ActivationCapture? capture = null, Interventions? interventions = null, VisionCapture? visionCapture = null, ImageSize? imageSize = null)
    {
        EncodeImage(state, pixelValues, visionCapture, imageSize);
        return ForwardEncoded(state, ids, state.Vision.ImageFeatures, capture, interventions, imageSize);
    }

    /// <summary>
    /// As <see cref="Forward"/> with the image already encoded: <paramref name="imageFeatures"/> [image tokens, d_model]
    /// as <see cref="EncodeImage"/> gave them, so that prompts about one image share one encoding (LLaVA-NeXT: the
    /// rows of an image of <paramref name="imageSize"/> at the start of the buffer).
    /// </summary>
    public ReadOnlySpan<float> ForwardEncoded(LlavaState state, ReadOnlySpan<int> ids, float[] imageFeatures,
        ActivationCapture? capture = null, Interventions? interventions = null, ImageSize? imageSize = null)
    {
        int need = ImageTokens(imageSize) * Config.Text.DModel;
        if (IsAnyres ? imageFeatures.Length < need : imageFeatures.Length != need)
            throw new ArgumentException($"image features hold {imageFeatures.Length} floats, not [{need / Config.Text.DModel}, {Config.Text.DModel}]", nameof(imageFeatures));
        int[] expanded = ExpandImageTokens(ids, imageSize);
        var splice = new ImageSplice(Config.ImageTokenId, expanded, state.Text.Position, imageFeatures, Config.Text.DModel);
        return Language.Forward(state.Text, DecoderIds(expanded), capture, interventions, splice.Apply);
    }

    /// <summary>Greedy or sampled continuation of an image prompt through the decoder's <see cref="Generator"/>; the prompt ids returned are the expanded ones.</summary>
    public GenerationResult Generate(LlavaState state, ReadOnlySpan<int> ids, ReadOnlySpan<float> pixelValues, GenerationOptions options, VisionCapture? visionCapture = null, ImageSize? imageSize = null)
    {
        int[] expanded = ExpandImageTokens(ids, imageSize);
        // Generate starts the sequence over at position 0.
        EncodeImage(state, pixelValues, visionCapture, imageSize);
        var splice = new ImageSplice(Config.ImageTokenId, expanded, 0, state.Vision.ImageFeatures, Config.Text.DModel);
        return Generator.Generate(Language, DecoderIds(expanded), options, state.Text, splice.Apply) with { PromptIds = expanded };
    }

    public void Dispose() => Language.Dispose();

    /// <summary>
    /// Overwrites the embedding rows of the image-token positions with the image features, in order. It reads the
    /// vision state's feature buffer (no copy of 576 x d_model floats), valid until that state encodes again.
    /// </summary>
    internal sealed class ImageSplice(int imageToken, int[] ids, int firstPosition, float[] features, int width)
    {
        private readonly int[] _positions = Enumerable.Range(0, ids.Length).Where(t => ids[t] == imageToken).Select(t => firstPosition + t).ToArray();

        /// <summary>Rows [tokens, d_model] of positions <paramref name="firstPosition"/>..: those holding image tokens get their feature row.</summary>
        public void Apply(Span<float> rows, int firstPosition)
        {
            int tokens = rows.Length / width;
            for (int i = 0; i < _positions.Length; i++)
            {
                int t = _positions[i] - firstPosition;
                if (t >= 0 && t < tokens) features.AsSpan(i * width, width).CopyTo(rows.Slice(t * width, width));
            }
        }
    }
}
