using TruthProbe.Imaging;
using TruthProbe.Model;

namespace TruthProbe.Vision;

/// <summary>
/// Greedy or sampled replies of a LLaVA model to several prompts about one image, under one or more sets of
/// interventions (arms: vanilla and gated). The image is encoded once for all arms. With prefix reuse, each arm
/// prefills the prompts' common prefix (system text, the 576 image positions, the text before the question) once
/// into its own decoder cache and every prompt continues from that cache rewound to the prefix: a POPE image's six
/// questions then prefill ~20 tokens each instead of ~640. Gates change the keys and values of every position, so
/// arms never share a cache. A Qwen2.5-VL / Omni model works the same way: each prompt's M-RoPE ids are installed on
/// the arm's state before it continues, and they agree with the cached prefix's, since a prompt's ids up to a position
/// depend only on the tokens up to it.
/// </summary>
public sealed class ImagePrefixCache
{
    private readonly LlavaModel? _model;
    private readonly LlavaState? _vision;
    private readonly QwenVLModel? _qwen;
    private readonly QwenVLState? _qwenState;
    private readonly Transformer _language;
    private readonly int _imageToken;
    private QwenImage? _qwenImage;
    private float[] _features = [];
    private readonly Interventions?[] _arms;
    private readonly RunState[] _states;
    private readonly bool[] _prefilled;
    private readonly bool _reusePrefix;
    private int[] _prefix = [];
    private bool _hasImage;

    /// <param name="arms">the interventions of each arm (null: the model as it is).</param>
    /// <param name="reusePrefix">false: every prompt is prefilled from position 0 (the reference the reuse must equal).</param>
    public ImagePrefixCache(LlavaModel model, IReadOnlyList<Interventions?> arms, bool reusePrefix = true)
        : this(model.Language, model.Config.ImageTokenId, arms, reusePrefix)
    {
        _model = model;
        _vision = model.NewState();
        _states[0] = _vision.Text;
    }

    /// <summary>The same for a Qwen2.5-VL / Omni model; images are given as the processor's <see cref="QwenImage"/>.</summary>
    public ImagePrefixCache(QwenVLModel model, IReadOnlyList<Interventions?> arms, bool reusePrefix = true)
        : this(model.Language, model.Config.ImageTokenId, arms, reusePrefix)
    {
        _qwen = model;
        _qwenState = model.NewState();
        _states[0] = _qwenState.Text;
    }

    private ImagePrefixCache(Transformer language, int imageToken, IReadOnlyList<Interventions?> arms, bool reusePrefix)
    {
        _language = language;
        _imageToken = imageToken;
        _arms = [.. arms];
        // Arm 0's state is the vision state's own decoder state, set by the public constructors.
        _states = [null!, .. _arms.Skip(1).Select(_ => language.NewState())];
        _prefilled = new bool[_arms.Length];
        _reusePrefix = reusePrefix;
    }

    /// <summary>Positions every prompt of the current image shares (0 without reuse).</summary>
    public int PrefixLength => _prefix.Length;

    /// <summary>
    /// Encodes the image and fixes the shared prefix as the longest common prefix of <paramref name="prompts"/> (expanded
    /// ids, see <see cref="LlavaModel.ExpandImageTokens"/>), leaving at least one id of each to prefill. Pass every prompt
    /// the image will ever get, not only those still to run: the prefix, and so the numbers, then do not depend on which
    /// replies a resumed run already has. LLaVA-NeXT: <paramref name="imageSize"/> is the size the prompts were expanded for.
    /// </summary>
    public void SetImage(ReadOnlySpan<float> pixelValues, IReadOnlyList<int[]> prompts, ImageSize? imageSize = null)
    {
        if (_model == null) throw new InvalidOperationException("a Qwen model's images are QwenImages");
        if (prompts.Count == 0) throw new ArgumentException("an image needs at least one prompt", nameof(prompts));
        _model.EncodeImage(_vision!, pixelValues, imageSize: imageSize);
        _features = _vision!.Vision.ImageFeatures;
        FixPrefix(prompts);
    }

    /// <summary>As the LLaVA overload, for a Qwen2.5-VL / Omni model: <paramref name="prompts"/> hold the image's expanded pads.</summary>
    public void SetImage(QwenImage image, IReadOnlyList<int[]> prompts)
    {
        if (_qwen == null) throw new InvalidOperationException("a LLaVA model's images are pixel values");
        if (prompts.Count == 0) throw new ArgumentException("an image needs at least one prompt", nameof(prompts));
        _qwen.EncodeImage(_qwenState!, image);
        _features = _qwenState!.Vision.ImageFeatures;
        _qwenImage = image;
        FixPrefix(prompts);
    }

    private void FixPrefix(IReadOnlyList<int[]> prompts)
    {
        int common = prompts.Min(p => p.Length) - 1;
        for (int i = 1; i < prompts.Count; i++)
            common = Math.Min(common, prompts[0].AsSpan().CommonPrefixLength(prompts[i]));
        _prefix = _reusePrefix ? prompts[0][..common] : [];
        Array.Clear(_prefilled);
        _hasImage = true;
    }

    /// <summary>
    /// The continuation of <paramref name="expandedIds"/> (one of the prompts given to <see cref="SetImage"/>) under arm
    /// <paramref name="arm"/>'s interventions, which replace <paramref name="options"/>'s.
    /// </summary>
    public GenerationResult Generate(int arm, int[] expandedIds, GenerationOptions options)
    {
        if (!_hasImage) throw new InvalidOperationException("SetImage first");
        if (!expandedIds.AsSpan().StartsWith(_prefix))
            throw new ArgumentException("the prompt does not start with the image's shared prefix; give every prompt of the image to SetImage");
        var splice = new LlavaModel.ImageSplice(_imageToken, expandedIds, 0, _features, _language.Config.DModel);
        var state = _states[arm];
        options = options with { Interventions = _arms[arm] };
        state.Reset();
        if (_qwen != null) state.Rotary = _qwen.Positions(expandedIds, _qwenImage);
        if (_prefix.Length > 0)
        {
            if (!_prefilled[arm])
            {
                state.Reserve(expandedIds.Length + options.MaxNewTokens);
                _language.Forward(state, DecoderIds(_prefix), interventions: _arms[arm], replaceEmbeddings: splice.Apply);
                _prefilled[arm] = true;
            }
            // Positions past the prefix are overwritten by this prompt's own keys and values.
            state.Position = _prefix.Length;
        }
        return Generator.Continue(_language, DecoderIds(expandedIds), options, state, splice.Apply);
    }

    /// <summary>The ids the decoder looks up: LLaVA's <see cref="LlavaModel.DecoderIds"/>; a Qwen model's are the prompt's own.</summary>
    private int[] DecoderIds(int[] ids) => _model?.DecoderIds(ids) ?? ids;
}
