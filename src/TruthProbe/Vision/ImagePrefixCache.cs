using TruthProbe.Model;

namespace TruthProbe.Vision;

/// <summary>
/// Greedy or sampled replies of a LLaVA model to several prompts about one image, under one or more sets of
/// interventions (arms: vanilla and gated). The image is encoded once for all arms. With prefix reuse, each arm
/// prefills the prompts' common prefix (system text, the 576 image positions, the text before the question) once
/// into its own decoder cache and every prompt continues from that cache rewound to the prefix: a POPE image's six
/// questions then prefill ~20 tokens each instead of ~640. Gates change the keys and values of every position, so
/// arms never share a cache.
/// </summary>
public sealed class ImagePrefixCache
{
    private readonly LlavaModel _model;
    private readonly LlavaState _vision;
    private readonly Interventions?[] _arms;
    private readonly RunState[] _states;
    private readonly bool[] _prefilled;
    private readonly bool _reusePrefix;
    private int[] _prefix = [];
    private bool _hasImage;

    /// <param name="arms">the interventions of each arm (null: the model as it is).</param>
    /// <param name="reusePrefix">false: every prompt is prefilled from position 0 (the reference the reuse must equal).</param>
    public ImagePrefixCache(LlavaModel model, IReadOnlyList<Interventions?> arms, bool reusePrefix = true)
    {
        _model = model;
        _vision = model.NewState();
        _arms = [.. arms];
        _states = [_vision.Text, .. _arms.Skip(1).Select(_ => model.Language.NewState())];
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
        if (prompts.Count == 0) throw new ArgumentException("an image needs at least one prompt", nameof(prompts));
        _model.EncodeImage(_vision, pixelValues, imageSize: imageSize);
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
        var splice = new LlavaModel.ImageSplice(_model.Config.ImageTokenId, expandedIds, 0, _vision.Vision.ImageFeatures, _model.Config.Text.DModel);
        var state = _states[arm];
        options = options with { Interventions = _arms[arm] };
        state.Reset();
        if (_prefix.Length > 0)
        {
            if (!_prefilled[arm])
            {
                state.Reserve(expandedIds.Length + options.MaxNewTokens);
                _model.Language.Forward(state, _model.DecoderIds(_prefix), interventions: _arms[arm], replaceEmbeddings: splice.Apply);
                _prefilled[arm] = true;
            }
            // Positions past the prefix are overwritten by this prompt's own keys and values.
            state.Position = _prefix.Length;
        }
        return Generator.Continue(_model.Language, _model.DecoderIds(expandedIds), options, state, splice.Apply);
    }
}
