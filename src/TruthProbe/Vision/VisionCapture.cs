using System.Text.RegularExpressions;
using TruthProbe.Common;
using TruthProbe.Model;

namespace TruthProbe.Vision;

/// <summary>
/// The hook points of the image path, beside the decoder's (which keep their names and run over image positions too):
/// <code>
/// vision.hook_pixel_values             [3, H, W]                 the normalised pixels given
/// vision.blocks.{l}.hook_resid_post    [positions, vision d]     encoder layer l's output (class row first); only layers that run
/// vision.hook_features                 [image tokens, vision d]  the selected layer after the class-token choice
/// hook_image_features                  [image tokens, d_model]   projector output, the rows spliced into the LM input
/// </code>
/// </summary>
public static class VisionHookNames
{
    public const string PixelValues = "vision.hook_pixel_values";
    public const string Features = "vision.hook_features";
    public const string ImageFeatures = "hook_image_features";

    public static string ResidPost(int layer) => $"vision.blocks.{layer}.hook_resid_post";

    /// <summary>A hook selection pattern as a regex over whole names: <c>*</c> stands for any text, as for the decoder's hooks.</summary>
    public static Regex Pattern(string pattern) =>
        new("^" + Regex.Escape(pattern.Trim()).Replace("\\*", ".*") + "$", RegexOptions.CultureInvariant);

    /// <summary>Whether <paramref name="pattern"/> selects any vision hook of a tower running <paramref name="layers"/> layers.</summary>
    public static bool Selects(string pattern, int layers)
    {
        var regex = Pattern(pattern);
        return All(layers).Any(regex.IsMatch);
    }

    /// <summary>Every vision hook of a tower running <paramref name="layers"/> layers, in forward order.</summary>
    public static IEnumerable<string> All(int layers) =>
        [PixelValues, .. Enumerable.Range(0, layers).Select(ResidPost), Features, ImageFeatures];
}

/// <summary>
/// Which image-path activations an encoding keeps, selected by name or <c>*</c> pattern as the decoder's hooks are.
/// A parallel of <see cref="ActivationCapture"/>, whose sites are a fixed (kind, decoder layer) table: vision sites
/// are captured whole (every row), so positions do not apply. Each encoding replaces <see cref="Results"/>.
/// </summary>
public sealed class VisionCapture
{
    private readonly HashSet<string> _wanted = new(StringComparer.Ordinal);
    private readonly bool[] _layers;
    private readonly Dictionary<string, Activation> _results = new(StringComparer.Ordinal);

    public VisionCapture(LlavaConfig config, IEnumerable<string> patterns)
    {
        int layers = config.VisionLayersRun;
        _layers = new bool[layers];
        string[] all = VisionHookNames.All(layers).ToArray();
        foreach (string pattern in patterns)
        {
            var regex = VisionHookNames.Pattern(pattern);
            string[] matched = all.Where(n => regex.IsMatch(n)).ToArray();
            if (matched.Length == 0)
                throw new UserError($"hook pattern '{pattern}' matches no vision hook point of this model (e.g. {VisionHookNames.PixelValues}, vision.blocks.0.hook_resid_post up to layer {layers - 1}, {VisionHookNames.Features}, {VisionHookNames.ImageFeatures})");
            _wanted.UnionWith(matched);
        }
        for (int l = 0; l < layers; l++) _layers[l] = _wanted.Contains(VisionHookNames.ResidPost(l));
    }

    public IReadOnlyDictionary<string, Activation> Results => _results;

    public Activation this[string name] =>
        _results.TryGetValue(name, out var a) ? a : throw new KeyNotFoundException($"hook '{name}' was not captured");

    internal bool WantsLayer(int layer) => _layers[layer];

    internal void Begin() => _results.Clear();

    /// <summary>Keeps a copy of <paramref name="data"/> under <paramref name="shape"/> when <paramref name="name"/> was asked for.</summary>
    internal void Record(string name, ReadOnlySpan<float> data, int[] shape)
    {
        if (_wanted.Contains(name)) _results[name] = new Activation(shape, data.ToArray());
    }
}
