using TruthProbe.Common;

namespace TruthProbe.Model;

/// <summary>
/// Edits applied to the activations of every forward call they are given to (prefill and each decode
/// step), at every position: per-layer, per-query-head gates at one of the two <see cref="GateSite"/>s, and
/// vectors added to any hook. A gate of 0 ablates a head; gates of exactly 1 change nothing, bit for bit.
/// Order at a hook: gate, then addition, then capture.
/// </summary>
public sealed class Interventions
{
    private readonly ModelConfig _config;
    private readonly float[]?[] _headGates, _oProjGates;
    private readonly Dictionary<(HookKind, int), float[]> _additions = [];

    public Interventions(ModelConfig config)
    {
        _config = config;
        _headGates = new float[config.Layers][];
        _oProjGates = new float[config.Layers][];
    }

    /// <summary>Gates [layers, heads], all applied at <paramref name="site"/>; replaces earlier gates at that site.</summary>
    public Interventions Gate(float[,] gates, GateSite site)
    {
        if (gates.GetLength(0) != _config.Layers || gates.GetLength(1) != _config.Heads)
            throw new UserError($"gates have shape [{gates.GetLength(0)}, {gates.GetLength(1)}] but the model has [{_config.Layers} layers, {_config.Heads} heads]");
        for (int l = 0; l < _config.Layers; l++)
            for (int h = 0; h < _config.Heads; h++)
                GateHead(l, h, gates[l, h], site);
        return this;
    }

    /// <summary>Sets one head's gate (0 ablates it); other heads keep gate 1.</summary>
    public Interventions GateHead(int layer, int head, float gate, GateSite site)
    {
        if ((uint)layer >= (uint)_config.Layers || (uint)head >= (uint)_config.Heads)
            throw new UserError($"head ({layer}, {head}) is outside the model's {_config.Layers} layers x {_config.Heads} heads");
        if (site == GateSite.OProjOut && _config.DModel % _config.Heads != 0)
            throw new UserError($"site o-proj-out needs d_model ({_config.DModel}) divisible by the head count ({_config.Heads})");
        var table = site == GateSite.Head ? _headGates : _oProjGates;
        var row = table[layer] ??= Enumerable.Repeat(1f, _config.Heads).ToArray();
        row[head] = gate;
        return this;
    }

    /// <summary>Adds <paramref name="vector"/> (one position's worth of the hook, e.g. [d_model] or [H * d_head]) at every position.</summary>
    public Interventions Add(string hookName, float[] vector)
    {
        var matches = HookNames.Match(hookName, _config.Layers);
        foreach (var (kind, layer) in matches)
        {
            var point = HookNames.Point(kind);
            if (point.IsAttentionMap) throw new UserError($"{point.Name(layer)}: vectors cannot be added to attention scores or patterns; add them to hook_q, hook_rot_q, hook_k or hook_rot_k instead");
            int width = point.Width(_config);
            if (vector.Length != width)
                throw new UserError($"{HookNames.Name(kind, layer)}: the added vector has {vector.Length} values, the hook has {width} per position");
            _additions[(kind, Math.Max(layer, 0))] = vector;
        }
        return this;
    }

    /// <summary>Applies the edits of one hook to its [tokens, width] activation.</summary>
    internal void Apply(HookKind kind, int layer, Span<float> data, int tokens, int width)
    {
        if (kind == HookKind.Z && _headGates[layer] is { } headGates)
            ScaleChunks(data, tokens, width, headGates, _config.HeadDim);
        if (kind == HookKind.AttnOut && _oProjGates[layer] is { } chunkGates)
            ScaleChunks(data, tokens, width, chunkGates, _config.DModel / _config.Heads);
        if (_additions.TryGetValue((kind, Math.Max(layer, 0)), out var add))
            for (int t = 0; t < tokens; t++)
                System.Numerics.Tensors.TensorPrimitives.Add(data.Slice(t * width, width), add, data.Slice(t * width, width));
    }

    private static void ScaleChunks(Span<float> data, int tokens, int width, float[] gates, int chunk)
    {
        for (int t = 0; t < tokens; t++)
            for (int h = 0; h < gates.Length; h++)
                if (gates[h] != 1f)
                    System.Numerics.Tensors.TensorPrimitives.Multiply(data.Slice(t * width + h * chunk, chunk), gates[h], data.Slice(t * width + h * chunk, chunk));
    }
}
