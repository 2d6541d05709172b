using TruthProbe.Common;
using TruthProbe.Model;

namespace TruthProbe.Vision;

/// <summary>
/// Which image-path activations an encoding keeps, selected by name or <c>*</c> pattern among the
/// <see cref="HookPart.Vision"/> rows of <see cref="HookNames.Table"/>, shaped as those rows say.
/// A parallel of <see cref="ActivationCapture"/>, whose sites are a fixed (kind, decoder layer) table: vision sites
/// are captured whole (every row), so positions do not apply. Each encoding replaces <see cref="Results"/>.
/// </summary>
public sealed class VisionCapture
{
    private readonly LlavaConfig? _config;
    private readonly HashSet<(HookKind Kind, int Layer)> _wanted = [];
    private readonly Dictionary<string, Activation> _results = new(StringComparer.Ordinal);
    // The encoding under way: LLaVA-NeXT's tile count (0 for LLaVA-1.5's single image, whose hooks have no tile
    // axis) and the image tokens spliced, which for NeXT depend on the image's size.
    private int _tiles, _imageTokens;

    public VisionCapture(LlavaConfig config, IEnumerable<string> patterns) : this(patterns, config.VisionLayersRun) => _config = config;

    /// <summary>
    /// For a Qwen2.5-VL / Omni encoder: the same names over its <see cref="QwenVisionConfig.Depth"/> blocks, shaped per
    /// image by the encoder (pixel rows [patches, 3 x frames x P x P], block outputs [patches, d_vision], image features
    /// [tokens, d_model]); it has no <c>vision.hook_features</c> stage.
    /// </summary>
    public VisionCapture(QwenVLConfig config, IEnumerable<string> patterns) : this(patterns, config.Vision.Depth)
    {
        if (_wanted.Remove((HookKind.VisionFeatures, -1)) && _wanted.Count == 0)
            throw new UserError("vision.hook_features is LLaVA's selected-layer output; a Qwen2.5-VL / Omni encoder has none (its merger reads the last block): ask for vision.blocks.{l}.hook_resid_post or hook_image_features");
    }

    private VisionCapture(IEnumerable<string> patterns, int layers)
    {
        foreach (string pattern in patterns) _wanted.UnionWith(HookNames.Match(pattern, layers, HookPart.Vision));
    }

    public IReadOnlyDictionary<string, Activation> Results => _results;

    public Activation this[string name] =>
        _results.TryGetValue(name, out var a) ? a : throw new KeyNotFoundException($"hook '{name}' was not captured");

    /// <summary>Whether (<paramref name="kind"/>, <paramref name="layer"/>) was asked for; layer -1 for the hooks outside the layers.</summary>
    internal bool Wants(HookKind kind, int layer = -1) => _wanted.Contains((kind, layer));

    /// <param name="tiles">LLaVA-NeXT's tiles (the tower's hooks get a leading tile axis), 0 for one image.</param>
    /// <param name="imageTokens">rows of <c>hook_image_features</c> for this image.</param>
    internal void Begin(int tiles = 0, int imageTokens = 0)
    {
        _results.Clear();
        (_tiles, _imageTokens) = (tiles, imageTokens);
    }

    /// <summary>
    /// Keeps a copy of <paramref name="data"/>, shaped as the hook table says, when it was asked for. With tiles,
    /// the tower's hooks are [tiles, ...] and <paramref name="data"/> (one tile's values, or all of them for the pixels)
    /// goes to tile <paramref name="tile"/>'s slot.
    /// </summary>
    internal void Record(HookKind kind, int layer, ReadOnlySpan<float> data, int tile = 0)
    {
        if (!Wants(kind, layer)) return;
        int[] shape = HookNames.Point(kind).Shape.Select(d => Size(kind, d)).ToArray();
        if (_tiles == 0 || kind == HookKind.ImageFeatures)
        {
            Record(kind, layer, data, shape);
            return;
        }
        var point = HookNames.Point(kind);
        int size = shape.Aggregate(1, (a, b) => a * b);
        if (kind == HookKind.VisionPixelValues) (size, tile) = (size * _tiles, 0);
        if (data.Length != size)
            throw new InvalidOperationException($"{point.Name(layer)} has {data.Length} values, not a tile of {point.ShapeText} = [{string.Join(", ", shape)}]");
        if (!_results.TryGetValue(point.Name(layer), out var all))
            _results[point.Name(layer)] = all = new Activation([_tiles, .. shape], new float[_tiles * shape.Aggregate(1, (a, b) => a * b)]);
        data.CopyTo(all.Data.AsSpan(tile * size, size));
    }

    /// <summary>The same with the shape the encoder gives (an image path whose sizes vary per image).</summary>
    internal void Record(HookKind kind, int layer, ReadOnlySpan<float> data, int[] shape)
    {
        if (!Wants(kind, layer)) return;
        var point = HookNames.Point(kind);
        if (data.Length != shape.Aggregate(1, (a, b) => a * b))
            throw new InvalidOperationException($"{point.Name(layer)} has {data.Length} values, not {point.ShapeText} = [{string.Join(", ", shape)}]");
        _results[point.Name(layer)] = new Activation(shape, data.ToArray());
    }

    private int Size(HookKind kind, HookDim d) => _config == null ? throw new InvalidOperationException("a Qwen image path records with its own shapes") : d switch
    {
        HookDim.ImageTokens when kind == HookKind.ImageFeatures => _imageTokens,
        HookDim.Channels => _config.Vision.Channels,
        HookDim.ImageSize => _config.Vision.ImageSize,
        HookDim.VisionPositions => _config.Vision.Positions,
        HookDim.ImageTokens => _config.ImageTokens,
        HookDim.VisionDModel => _config.Vision.Hidden,
        HookDim.DModel => _config.Text.DModel,
        _ => throw new ArgumentOutOfRangeException(nameof(d), $"{d} is not a dimension of the image path"),
    };
}
