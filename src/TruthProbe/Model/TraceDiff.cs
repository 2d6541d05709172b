using TruthProbe.Common;
using TruthProbe.Formats;

namespace TruthProbe.Model;

/// <summary>
/// One hook of two traces compared: the largest absolute difference, and that difference over the largest magnitude
/// of the second trace's tensor (the reference's scale, so that near-zero entries do not blow the ratio up).
/// Shapes are null where a trace lacks the hook.
/// </summary>
public sealed record HookDiff(string Name, long[]? ShapeA, long[]? ShapeB, double MaxAbs, double MaxRelative)
{
    public bool Compared => ShapeA != null && ShapeB != null && ShapeA.SequenceEqual(ShapeB);

    /// <summary>Within <paramref name="tolerance"/> (relative); a missing hook, a shape mismatch or a NaN is not.</summary>
    public bool Within(double tolerance) => Compared && MaxRelative <= tolerance;
}

/// <summary>
/// Compares two traces (safetensors files of hook activations, as <c>trace</c> writes them or the parity kit's
/// <c>hf_trace.py</c> does): every tensor by name, and the metadata that must agree for the tensors to be comparable
/// (<c>token_ids</c>, <c>positions</c>).
/// </summary>
public static class TraceDiff
{
    /// <summary>Metadata keys that must be equal in both traces when both have them.</summary>
    public static readonly string[] MustAgree = ["token_ids", "positions"];

    public static (IReadOnlyList<HookDiff> Hooks, IReadOnlyList<string> Disagreements) Compare(string pathA, string pathB)
    {
        using var a = Open(pathA);
        using var b = Open(pathB);
        var disagreements = MustAgree
            .Where(k => a.Metadata.TryGetValue(k, out var va) && b.Metadata.TryGetValue(k, out var vb) && va != vb)
            .Select(k => $"metadata '{k}' differs: {Shorten(a.Metadata[k])} vs {Shorten(b.Metadata[k])}")
            .ToList();
        var names = a.Tensors.Values.OrderBy(t => t.Offset).Select(t => t.Name)
            .Concat(b.Tensors.Values.OrderBy(t => t.Offset).Select(t => t.Name).Where(n => !a.Tensors.ContainsKey(n)));
        var hooks = new List<HookDiff>();
        foreach (string name in names)
        {
            var ta = a.Tensors.GetValueOrDefault(name);
            var tb = b.Tensors.GetValueOrDefault(name);
            var diff = new HookDiff(name, ta?.Shape, tb?.Shape, double.NaN, double.NaN);
            if (diff.Compared)
            {
                var (abs, scale) = MaxDifference(a.ReadSingles(ta!), b.ReadSingles(tb!));
                diff = diff with { MaxAbs = abs, MaxRelative = abs == 0 ? 0 : abs / scale };
            }
            hooks.Add(diff);
        }
        return (hooks, disagreements);
    }

    /// <summary>
    /// max |x - y| and max |y| over finite y; NaN when either holds a NaN, so that a broken trace never passes. Equal
    /// infinities agree: hook_attn_scores holds -inf wherever the mask hides a key, in both traces alike.
    /// </summary>
    private static (double MaxAbs, double Scale) MaxDifference(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        double maxAbs = 0, scale = 0;
        for (int i = 0; i < x.Length; i++)
        {
            if (float.IsInfinity(y[i]) && x[i] == y[i]) continue;
            double d = Math.Abs((double)x[i] - y[i]);
            if (double.IsNaN(d)) return (double.NaN, double.NaN);
            maxAbs = Math.Max(maxAbs, d);
            scale = Math.Max(scale, Math.Abs((double)y[i]));
        }
        return (maxAbs, scale);
    }

    private static SafetensorsFile Open(string path) =>
        File.Exists(path) ? SafetensorsFile.Open(path) : throw new UserError($"{path}: trace file not found (a safetensors file written by trace or tools/parity/hf_trace.py)");

    private static string Shorten(string s) => s.Length <= 60 ? s : s[..57] + "...";
}
