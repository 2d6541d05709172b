using TruthProbe.Common;

namespace TruthProbe.Model;

/// <summary>A captured activation: float32, row-major, shape as listed in <see cref="HookNames.Table"/>.</summary>
public sealed record Activation(int[] Shape, float[] Data);

/// <summary>
/// Which activations one forward call keeps: hook names or patterns (<c>blocks.*.attn.hook_z</c>), and
/// optionally which of the call's token positions (0-based within the call; negative counts from the end,
/// -1 = last token). Sites that are not asked for cost nothing. Each forward call that is given this object
/// replaces <see cref="Results"/>; captured values are those that flow on, i.e. after any intervention.
/// </summary>
public sealed class ActivationCapture
{
    private readonly ModelConfig _config;
    private readonly bool[,] _wanted;          // [kind, layer]; the model-wide hooks (embedding, logits) at layer 0
    private readonly int[]? _positions;
    private readonly Dictionary<string, Activation> _results = new(StringComparer.Ordinal);
    private int[] _selected = [];

    public ActivationCapture(ModelConfig config, IEnumerable<string> patterns, IReadOnlyList<int>? positions = null)
    {
        _config = config;
        _wanted = new bool[HookNames.Table.Count, config.Layers];
        foreach (string p in patterns)
            foreach (var (kind, layer) in HookNames.Match(p, config.Layers))
                _wanted[(int)kind, Math.Max(layer, 0)] = true;
        _positions = positions?.ToArray();
    }

    public IReadOnlyDictionary<string, Activation> Results => _results;

    public Activation this[string name] =>
        _results.TryGetValue(name, out var a) ? a : throw new KeyNotFoundException($"hook '{name}' was not captured");

    public bool Wants(HookKind kind, int layer) => _wanted[(int)kind, Math.Max(layer, 0)];

    /// <summary>Positions (within the call) that are kept, in the order asked.</summary>
    internal ReadOnlySpan<int> Selected => _selected;

    internal void Begin(int tokens)
    {
        _results.Clear();
        if (_positions == null) { _selected = Enumerable.Range(0, tokens).ToArray(); return; }
        _selected = new int[_positions.Length];
        for (int i = 0; i < _positions.Length; i++)
        {
            int p = _positions[i] < 0 ? tokens + _positions[i] : _positions[i];
            if (p < 0 || p >= tokens)
                throw new UserError($"capture position {_positions[i]} is outside this call's {tokens} token(s)");
            _selected[i] = p;
        }
    }

    /// <summary>Keeps the selected rows of a [tokens, width] activation, under shape [selected, ..inner].</summary>
    internal void Record(HookKind kind, int layer, ReadOnlySpan<float> data)
    {
        var point = HookNames.Point(kind);
        int width = point.Width(_config);
        var result = new float[_selected.Length * width];
        for (int i = 0; i < _selected.Length; i++)
            data.Slice(_selected[i] * width, width).CopyTo(result.AsSpan(i * width, width));
        _results[point.Name(layer)] = new Activation([_selected.Length, .. point.Inner(_config)], result);
    }

    /// <summary>Keeps the selected query rows of a [heads, tokens, total] attention map.</summary>
    internal void RecordAttentionMap(HookKind kind, int layer, ReadOnlySpan<float> map, int tokens, int total)
    {
        int heads = _config.Heads;
        var result = new float[heads * _selected.Length * total];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < _selected.Length; i++)
                map.Slice((h * tokens + _selected[i]) * total, total).CopyTo(result.AsSpan((h * _selected.Length + i) * total, total));
        _results[HookNames.Name(kind, layer)] = new Activation([heads, _selected.Length, total], result);
    }
}
