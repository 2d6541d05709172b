namespace TruthProbe.Model;

/// <summary>
/// One sequence being run: the key/value cache and every scratch buffer of the forward pass. Buffers grow
/// to the largest call seen and are then reused, so decoding a token allocates nothing. Not thread-safe:
/// use one state per concurrent sequence.
/// </summary>
public sealed class RunState
{
    private readonly ModelConfig _c;

    /// <summary>Tokens already in the cache = absolute position of the next token.</summary>
    public int Position { get; internal set; }

    /// <summary>Rotary angles by the caller's position ids (Qwen2-VL's M-RoPE) instead of the cache position; null = plain RoPE.</summary>
    public IRotaryPositions? Rotary { get; set; }

    internal int TokenCapacity { get; private set; }
    internal int PositionCapacity { get; private set; }

    // [tokens, width] activations of the current call.
    internal float[] Residual = [], Normed = [], Q = [], K = [], V = [], Z = [], AttnOut = [], Hidden = [], HiddenUp = [], MlpOut = [];
    internal float[] RopeCos = [], RopeSin = [];   // [tokens, d_head / 2]
    internal float[] Logits = [];                   // [rows asked, vocab]
    internal float[] AttnScores = [], Pattern = []; // [heads, tokens, positions], only when captured
    internal readonly float[][] KeyCache, ValueCache; // per layer [positions, kv_dim], float32 cache
    internal readonly ushort[][] KeyCache16, ValueCache16; // the same, 16-bit cache; the other pair stays empty

    /// <summary>How the keys and values are stored (<see cref="KvCacheType"/>).</summary>
    public KvCacheType CacheType { get; }

    internal RunState(ModelConfig config, KvCacheType cacheType = KvCacheType.F32)
    {
        _c = config;
        CacheType = cacheType;
        KeyCache = new float[config.Layers][];
        ValueCache = new float[config.Layers][];
        KeyCache16 = new ushort[config.Layers][];
        ValueCache16 = new ushort[config.Layers][];
        for (int l = 0; l < config.Layers; l++) { KeyCache[l] = []; ValueCache[l] = []; KeyCache16[l] = []; ValueCache16[l] = []; }
    }

    /// <summary>Forgets the sequence; buffers are kept for the next one.</summary>
    public void Reset() => Position = 0;

    /// <summary>Sizes the KV cache for <paramref name="positions"/> now, so that decoding up to there never resizes it.</summary>
    public void Reserve(int positions) => EnsureCapacity(1, Math.Min(positions, _c.MaxContext));

    internal void EnsureCapacity(int tokens, int positions)
    {
        if (tokens > TokenCapacity)
        {
            TokenCapacity = tokens;
            Residual = new float[tokens * _c.DModel];
            Normed = new float[tokens * _c.DModel];
            Q = new float[tokens * _c.QDim];
            K = new float[tokens * _c.KvDim];
            V = new float[tokens * _c.KvDim];
            Z = new float[tokens * _c.QDim];
            AttnOut = new float[tokens * _c.DModel];
            Hidden = new float[tokens * _c.Ffn];
            HiddenUp = new float[tokens * _c.Ffn];
            MlpOut = new float[tokens * _c.DModel];
            RopeCos = new float[tokens * _c.HeadDim / 2];
            RopeSin = new float[tokens * _c.HeadDim / 2];
        }
        if (positions > PositionCapacity)
        {
            // Doubling keeps decoding amortised allocation-free; the cache never exceeds the context.
            int capacity = Math.Min(_c.MaxContext, Math.Max(positions, PositionCapacity * 2));
            for (int l = 0; l < _c.Layers; l++)
                if (CacheType == KvCacheType.F32)
                {
                    Array.Resize(ref KeyCache[l], capacity * _c.KvDim);
                    Array.Resize(ref ValueCache[l], capacity * _c.KvDim);
                }
                else
                {
                    Array.Resize(ref KeyCache16[l], capacity * _c.KvDim);
                    Array.Resize(ref ValueCache16[l], capacity * _c.KvDim);
                }
            PositionCapacity = capacity;
        }
    }

    /// <summary>Puts the keys and values of positions <paramref name="position"/>.. (rows of kv_dim) into layer
    /// <paramref name="layer"/>'s cache, rounded to 16 bits when the cache is.</summary>
    internal void StoreKeysValues(int layer, int position, ReadOnlySpan<float> keys, ReadOnlySpan<float> values)
    {
        int at = position * _c.KvDim;
        if (CacheType == KvCacheType.F32)
        {
            keys.CopyTo(KeyCache[layer].AsSpan(at));
            values.CopyTo(ValueCache[layer].AsSpan(at));
        }
        else
        {
            KvCacheTypes.Narrow(CacheType, keys, KeyCache16[layer].AsSpan(at, keys.Length));
            KvCacheTypes.Narrow(CacheType, values, ValueCache16[layer].AsSpan(at, values.Length));
        }
    }

    /// <summary>Attention of <paramref name="tokens"/> queries at positions <paramref name="firstPosition"/>.. over
    /// layer <paramref name="layer"/>'s cache up to the last of them (<see cref="FlashAttention.Run(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int, int, int, int?, Span{float}, Span{float})"/>).</summary>
    internal void Attend(int layer, ReadOnlySpan<float> q, Span<float> z, int tokens, int firstPosition, Span<float> scores = default, Span<float> pattern = default)
    {
        int values = (firstPosition + tokens) * _c.KvDim;
        if (CacheType == KvCacheType.F32)
            FlashAttention.Run(q, KeyCache[layer].AsSpan(0, values), ValueCache[layer].AsSpan(0, values), z,
                tokens, firstPosition, _c.Heads, _c.KvHeads, _c.HeadDim, _c.SlidingWindow, scores, pattern);
        else
            FlashAttention.Run(q, KeyCache16[layer].AsSpan(0, values), ValueCache16[layer].AsSpan(0, values), CacheType, z,
                tokens, firstPosition, _c.Heads, _c.KvHeads, _c.HeadDim, _c.SlidingWindow, scores, pattern);
    }

    /// <summary>Copies the first <paramref name="positions"/> cache positions of every layer into <paramref name="target"/>
    /// (sized for them already), which must store the same <see cref="CacheType"/>.</summary>
    internal void CopyCacheTo(RunState target, int positions)
    {
        if (target.CacheType != CacheType) throw new ArgumentException($"a {CacheType.Name()} cache cannot be copied into a {target.CacheType.Name()} one");
        int values = positions * _c.KvDim;
        for (int l = 0; l < _c.Layers; l++)
            if (CacheType == KvCacheType.F32)
            {
                KeyCache[l].AsSpan(0, values).CopyTo(target.KeyCache[l]);
                ValueCache[l].AsSpan(0, values).CopyTo(target.ValueCache[l]);
            }
            else
            {
                KeyCache16[l].AsSpan(0, values).CopyTo(target.KeyCache16[l]);
                ValueCache16[l].AsSpan(0, values).CopyTo(target.ValueCache16[l]);
            }
    }

    internal Span<float> LogitsBuffer(int rows)
    {
        if (Logits.Length < rows * _c.Vocab) Logits = new float[rows * _c.Vocab];
        return Logits.AsSpan(0, rows * _c.Vocab);
    }

    /// <summary>The buffer of an attention map hook (scores or pattern, [heads, tokens, positions]) sized for
    /// this call, or empty when the map is not <paramref name="wanted"/>.</summary>
    internal Span<float> AttentionMap(HookKind kind, bool wanted, int tokens, int positions)
    {
        if (!wanted) return Span<float>.Empty;
        ref float[] buffer = ref kind == HookKind.Pattern ? ref Pattern : ref AttnScores;
        long needed = (long)_c.Heads * tokens * positions;
        if (buffer.Length < needed) buffer = new float[needed];
        return buffer.AsSpan(0, (int)needed);
    }
}
