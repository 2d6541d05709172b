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
    private readonly LlavaConfig _config;
    private readonly HashSet<(HookKind Kind, int Layer)> _wanted = [];
    private readonly Dictionary<string, Activation> _results = new(StringComparer.Ordinal);
    // The encoding under way: LLaVA-NeXT's tile count (0 for LLaVA-1.5's single image, whose hooks have no tile
    // axis) and the image tokens spliced, which for NeXT depend on the image's size.
    private int _tiles, _imageTokens;

    public VisionCapture(LlavaConfig config, IEnumerable<string> patterns)
    {
        _config = config;
        foreach (string pattern in patterns) _wanted.UnionWith(HookNames.Match(pattern, config.VisionLayersRun, HookPart.Vision));
    }

    public IReadOnlyDictionary<string, Activation> Results => _results;

    public Activation this[string name] =>
        _results.TryGetValue(name, out var a) ? a : throw new KeyNotFoundException($"hook '{name}' was not captured");

    /// <summary>Whether (<paramref name="kind"/>, <paramref name="layer"/>) was asked for; layer -1 for the hooks outside the layers.</summary>
    internal bool Wants(HookKind kind, int layer = -1) => _wanted.Contains((kind, layer));

    /// <param name="tiles">LLaVA-NeXT's tiles (the tower's hooks get a leading tile axis), 0 for one image.</param>
    /// <param name="imageTokens">rows of <c>hook_image_features</c> for this image.</param>
    internal void Begin(int tiles, int imageTokens)
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
        var point = HookNames.Point(kind);
        int[] shape = point.Shape.Select(d => Size(kind, d)).ToArray();
        int size = shape.Aggregate(1, (a, b) => a * b);
        bool tiled = _tiles > 0 && kind != HookKind.ImageFeatures;
        if (tiled && kind == HookKind.VisionPixelValues) (size, tile) = (size * _tiles, 0);
        if (data.Length != size)
            throw new InvalidOperationException($"{point.Name(layer)} has {data.Length} values, not {point.ShapeText} = [{string.Join(", ", shape)}]");
        if (!tiled)
        {
            _results[point.Name(layer)] = new Activation(shape, data.ToArray());
            return;
        }
        if (!_results.TryGetValue(point.Name(layer), out var all))
            _results[point.Name(layer)] = all = new Activation([_tiles, .. shape], new float[_tiles * shape.Aggregate(1, (a, b) => a * b)]);
        data.CopyTo(all.Data.AsSpan(tile * size, size));
    }

    private int Size(HookKind kind, HookDim d) => d switch
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
