using TruthProbe.Common;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Tokenizers;

namespace TruthProbe.Vision;

/// <summary>One sequence through a Qwen2.5-VL / Omni thinker: the LM's cache and buffers (with its M-RoPE ids), and the vision encoder's.</summary>
public sealed class QwenVLState
{
    public RunState Text { get; }
    public QwenVisionState Vision { get; } = new();

    internal QwenVLState(QwenVLModel model) => Text = model.Language.NewState();
}

/// <summary>
/// A Qwen2.5-VL model or the Qwen2.5-Omni thinker: the vision encoder, and the LM as an ordinary <see cref="Transformer"/>
/// (Qwen2) whose every hook, gate and cache runs over the image positions too. The image's merged rows replace the
/// embeddings of the image-pad tokens in order, and the LM rotates by M-RoPE ids (<see cref="PositionIds"/>) given to
/// its state, so cached decoding continues at the id after the image's largest.
/// </summary>
public sealed class QwenVLModel : IDisposable
{
    public QwenVLConfig Config { get; }
    public QwenLayout Layout { get; }
    public Transformer Language { get; }
    public QwenVisionWeights Vision { get; }
    private readonly FiniteVision _finite;
    /// <summary>The folder's <c>preprocessor_config.json</c> (Qwen2VLImageProcessor), null when it has none.</summary>
    public QwenImageConfig? Preprocessor { get; }

    public const string PreprocessorFile = "preprocessor_config.json";

    private QwenVLModel(QwenVLConfig config, QwenLayout layout, Transformer language, QwenVisionWeights vision, QwenImageConfig? preprocessor)
    {
        Config = config;
        Layout = layout;
        Language = language;
        Vision = vision;
        Preprocessor = preprocessor;
        _finite = FiniteVision.Qwen(this);
    }

    /// <summary>Loads a Qwen2.5-VL or Omni folder (any of <see cref="QwenLayout.All"/>) with its tokenizer and preprocessor config; the files are mapped once.</summary>
    public static QwenVLModel Load(string folder, string? tokenizerPath = null)
    {
        var (config, layout, text, vision, files) = QwenCheckpoint.Load(folder);
        ITokenizer? tokenizer;
        QwenImageConfig? preprocessor;
        try
        {
            tokenizer = tokenizerPath != null ? TokenizerLoader.FromFile(tokenizerPath) : TokenizerLoader.FromModelDirectory(folder);
            string preprocessorPath = Path.Combine(folder, PreprocessorFile);
            preprocessor = File.Exists(preprocessorPath) ? QwenImageConfig.Read(preprocessorPath) : null;
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
        var language = new Transformer(config.Text, text, folder, config.IsOmni ? "qwen2.5-omni-thinker" : "qwen2.5-vl", files) { Tokenizer = tokenizer };
        return new QwenVLModel(config, layout, language, vision, preprocessor);
    }

    /// <summary>
    /// The folder's image processor, with <paramref name="minPixels"/> / <paramref name="maxPixels"/> in place of its budget
    /// when given (lmms-eval runs Qwen2.5-VL at 256 x 28 x 28 .. 1280 x 28 x 28; the budget sets the image-token count).
    /// </summary>
    public QwenImageProcessor ImageProcessor(int? minPixels = null, int? maxPixels = null)
    {
        string path = Path.Combine(Language.Source, PreprocessorFile);
        var config = Preprocessor ?? throw new UserError($"{path}: not found; a Qwen2.5-VL or Omni folder holds the Qwen2VLImageProcessor settings of its checkpoint there (copy it from the checkpoint's repository)");
        var v = Config.Vision;
        if (config.PatchSize != v.PatchSize || config.MergeSize != v.MergeSize || config.TemporalPatchSize != v.TemporalPatchSize)
            throw new UserError($"{path}: patches {config.PatchSize} x {config.TemporalPatchSize} frames, merge {config.MergeSize}, but the vision encoder takes {v.PatchSize} x {v.TemporalPatchSize}, merge {v.MergeSize}; the preprocessor config does not belong to this model");
        config = config with { MinPixels = minPixels ?? config.MinPixels, MaxPixels = maxPixels ?? config.MaxPixels };
        if (config.MinPixels <= 0 || config.MinPixels > config.MaxPixels)
            throw new UserError($"min_pixels {config.MinPixels} and max_pixels {config.MaxPixels} must be positive with min <= max") { Field = minPixels != null ? "min_pixels" : "max_pixels" };
        return new QwenImageProcessor(config);
    }

    public QwenVLState NewState() => new(this);

    /// <summary>
    /// The ids as the LM sees them: a single image-pad token becomes the image's token count (what the processor does to
    /// the text); ids that already hold that many are kept. Without an image, the ids must hold no image token.
    /// </summary>
    public int[] ExpandImageTokens(ReadOnlySpan<int> ids, QwenImage? image)
    {
        int pad = Config.ImageTokenId, count = 0, first = -1;
        for (int t = 0; t < ids.Length; t++)
            if (ids[t] == pad) { count++; if (first < 0) first = t; }
        if (image == null)
            return count == 0 ? ids.ToArray() : throw new UserError($"the prompt holds {count} image tokens (id {pad}) but no image was given");
        int expected = image.Tokens;
        if (count == expected) return ids.ToArray();
        if (count != 1)
            throw new UserError($"the prompt holds {count} image tokens (id {pad}); one image of {image.GridH}x{image.GridW} patches needs either a single image pad (expanded to {expected}) or exactly {expected}");
        return [.. ids[..first], .. Enumerable.Repeat(pad, expected), .. ids[(first + 1)..]];
    }

    /// <summary>
    /// transformers' get_rope_index for one still image: text positions count up in all three rows; the image's run
    /// of tokens starting where the next id would be s gets (s, s + i, s + j) for merged-grid cell (i, j), row-major;
    /// the text after it continues at the image's largest id + 1 = s + max(rows, columns).
    /// </summary>
    public static int[][] PositionIds(ReadOnlySpan<int> ids, int imageToken, QwenImage? image)
    {
        int length = ids.Length;
        int[][] rows = [new int[length], new int[length], new int[length]];
        int next = 0, images = 0;
        for (int t = 0; t < length;)
        {
            if (ids[t] != imageToken)
            {
                rows[0][t] = rows[1][t] = rows[2][t] = next++;
                t++;
                continue;
            }
            if (image == null || images++ > 0)
                throw new UserError($"image tokens (id {imageToken}) at position {t} without an image for them; one image per prompt");
            int h = image.GridH / image.MergeSize, w = image.GridW / image.MergeSize;
            if (t + h * w > length || ids.Slice(t, h * w).ContainsAnyExcept(imageToken))
                throw new UserError($"the image needs {h * w} consecutive image tokens from position {t}; expand the prompt's image pad to the image's token count");
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++, t++) (rows[0][t], rows[1][t], rows[2][t]) = (next, next + i, next + j);
            next += Math.Max(h, w);
        }
        return rows;
    }

    /// <summary>Image pixel rows to the [image tokens, d_model] rows that replace the image pads; valid until the state encodes again.</summary>
    public ReadOnlySpan<float> EncodeImage(QwenVLState state, QwenImage image, VisionCapture? visionCapture = null)
    {
        if (image.GridT != 1) throw new UserError($"image grid has {image.GridT} frames; still images (grid_t 1) are supported, not video");
        bool check = !Language.AllowNonFinite;
        if (check) _finite.RequireInputs(image.PixelValues);
        var features = QwenVision.Encode(Config.Vision, Vision, state.Vision, image.PixelValues, image.GridH, image.GridW, visionCapture);
        if (check) _finite.RequireOutputs(features, Config.Vision.OutHidden, visionCapture);
        return features;
    }

    /// <summary>
    /// Runs a whole sequence from position 0: the ids (with one image pad or the expanded count when
    /// <paramref name="image"/> is given), the image's rows spliced in, M-RoPE ids installed on the state so that later
    /// <see cref="Transformer.Forward"/> calls on it decode at the right positions. Returns the last position's logits.
    /// </summary>
    public ReadOnlySpan<float> Forward(QwenVLState state, ReadOnlySpan<int> ids, QwenImage? image,
        ActivationCapture? capture = null, Interventions? interventions = null, VisionCapture? visionCapture = null)
    {
        state.Text.Reset();
        int[] expanded = Prepare(state, ids, image, visionCapture, out var splice);
        return Language.Forward(state.Text, expanded, capture, interventions, splice);
    }

    /// <summary>
    /// As <see cref="Forward"/> with the image already encoded: <paramref name="imageFeatures"/> holds the
    /// [image tokens, d_model] rows <see cref="EncodeImage"/> gave for <paramref name="image"/> (at its start), so that
    /// prompts about one image share one encoding.
    /// </summary>
    public ReadOnlySpan<float> ForwardEncoded(QwenVLState state, ReadOnlySpan<int> ids, QwenImage image, float[] imageFeatures,
        ActivationCapture? capture = null, Interventions? interventions = null)
    {
        if (imageFeatures.Length < image.Tokens * Config.Text.DModel)
            throw new ArgumentException($"image features hold {imageFeatures.Length} floats, fewer than [{image.Tokens}, {Config.Text.DModel}]", nameof(imageFeatures));
        state.Text.Reset();
        int[] expanded = ExpandImageTokens(ids, image);
        state.Text.Rotary = Positions(expanded, image);
        return Language.Forward(state.Text, expanded, capture, interventions, Splice(expanded, imageFeatures));
    }

    /// <summary>The M-RoPE ids of <paramref name="expanded"/> (image pads already expanded), for a state's <see cref="RunState.Rotary"/>.</summary>
    public MropePositions Positions(int[] expanded, QwenImage? image) =>
        new(Config.Text, Config.MropeSection, PositionIds(expanded, Config.ImageTokenId, image));

    /// <summary>Overwrites the embeddings of <paramref name="expanded"/>'s image pads with <paramref name="features"/>' rows, in order, from position 0.</summary>
    internal System.Buffers.SpanAction<float, int> Splice(int[] expanded, float[] features) =>
        new LlavaModel.ImageSplice(Config.ImageTokenId, expanded, 0, features, Config.Text.DModel).Apply;

    /// <summary>Greedy or sampled continuation through the LM's <see cref="Generator"/>; the prompt ids returned are the expanded ones.</summary>
    public GenerationResult Generate(QwenVLState state, ReadOnlySpan<int> ids, QwenImage? image, GenerationOptions options, VisionCapture? visionCapture = null)
    {
        int[] expanded = Prepare(state, ids, image, visionCapture, out var splice);
        return Generator.Generate(Language, expanded, options, state.Text, splice);
    }

    private int[] Prepare(QwenVLState state, ReadOnlySpan<int> ids, QwenImage? image, VisionCapture? visionCapture,
        out System.Buffers.SpanAction<float, int>? splice)
    {
        int[] expanded = ExpandImageTokens(ids, image);
        state.Text.Rotary = Positions(expanded, image);
        splice = null;
        if (image == null) return expanded;
        EncodeImage(state, image, visionCapture);
        // The splice reads the vision state's buffer, valid until that state encodes again.
        splice = Splice(expanded, state.Vision.ImageFeatures);
        return expanded;
    }

    public void Dispose() => Language.Dispose();
}
