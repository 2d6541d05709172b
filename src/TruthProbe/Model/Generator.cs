using TruthProbe.Common;

namespace TruthProbe.Model;

/// <summary>How to continue a prompt. Temperature 0 is greedy (argmax, lowest id on ties); above 0, tokens
/// are drawn from softmax(logits / temperature) with a generator seeded by <see cref="Seed"/>.</summary>
public sealed record GenerationOptions
{
    public int MaxNewTokens { get; init; } = 64;
    public float Temperature { get; init; }
    public ulong Seed { get; init; }
    /// <summary>Stop (without emitting it) at any of the model's EOS ids.</summary>
    public bool StopAtEos { get; init; } = true;
    public Interventions? Interventions { get; init; }
}

public sealed record GenerationResult(int[] PromptIds, int[] NewIds, bool StoppedAtEos, ulong Seed, float Temperature);

public static class Generator
{
    /// <summary>
    /// Prefills the prompt in one batch, then decodes one token at a time until EOS, MaxNewTokens or the
    /// end of the context. A prompt longer than the context is a <see cref="UserError"/>, never cut.
    /// </summary>
    public static GenerationResult Generate(Transformer model, IReadOnlyList<int> promptIds, GenerationOptions options, RunState? state = null,
        System.Buffers.SpanAction<float, int>? replaceEmbeddings = null)
    {
        state ??= model.NewState();
        state.Reset();
        return Continue(model, promptIds, options, state, replaceEmbeddings);
    }

    /// <summary>
    /// <see cref="Generate"/> for a state whose cache already holds the first <c>state.Position</c> ids of
    /// <paramref name="promptIds"/> (a shared prefix, rewound to): only the rest is prefilled. The caller vouches
    /// for the cached ids; <paramref name="replaceEmbeddings"/> sees positions from there on.
    /// </summary>
    public static GenerationResult Continue(Transformer model, IReadOnlyList<int> promptIds, GenerationOptions options, RunState state,
        System.Buffers.SpanAction<float, int>? replaceEmbeddings = null)
    {
        int cached = state.Position;
        Check(model, promptIds, options);
        if (cached >= promptIds.Count)
            throw new ArgumentException($"the cache holds {cached} positions; a prompt of {promptIds.Count} ids leaves nothing to prefill");
        state.Reserve(promptIds.Count + options.MaxNewTokens);
        var rng = new XorShiftRandom(options.Seed);
        var generated = new List<int>();
        int[] one = new int[1];
        var eosIds = model.EosIds;
        float[] weights = options.Temperature == 0 ? [] : new float[model.Config.Vocab]; // sampling scratch, reused per token
        var logits = model.Forward(state, promptIds.Skip(cached).ToArray(), interventions: options.Interventions, replaceEmbeddings: replaceEmbeddings);
        bool eos = false;
        while (generated.Count < options.MaxNewTokens)
        {
            int next = Next(logits, options, rng, weights);
            if (options.StopAtEos && eosIds.Contains(next)) { eos = true; break; }
            generated.Add(next);
            if (generated.Count == options.MaxNewTokens || state.Position == model.Config.MaxContext) break;
            one[0] = next;
            logits = model.Forward(state, one, interventions: options.Interventions);
        }
        return new GenerationResult(promptIds.ToArray(), generated.ToArray(), eos, options.Seed, options.Temperature);
    }

    /// <summary>Refuses an empty prompt, one longer than the context and a negative or non-finite temperature.</summary>
    internal static void Check(Transformer model, IReadOnlyList<int> promptIds, GenerationOptions options)
    {
        if (promptIds.Count == 0) throw new UserError("generate: the prompt has no tokens (start from BOS at least)");
        if (promptIds.Count > model.Config.MaxContext)
            throw new UserError($"{model.Source}: the prompt has {promptIds.Count} tokens but the model's context is {model.Config.MaxContext}; shorten it");
        if (options.Temperature < 0 || !float.IsFinite(options.Temperature))
            throw new UserError($"generate: temperature must be >= 0, got {options.Temperature}");
    }

    /// <summary>The next token from one position's logits: argmax at temperature 0, else a draw.</summary>
    internal static int Next(ReadOnlySpan<float> logits, GenerationOptions options, XorShiftRandom rng, float[] weights) =>
        options.Temperature == 0 ? ArgMax(logits) : Sample(logits, options.Temperature, rng, weights);

    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    /// <summary>Inverse-CDF draw from softmax(logits / temperature): weights in float, their sums in double.</summary>
    private static int Sample(ReadOnlySpan<float> logits, float temperature, XorShiftRandom rng, float[] weights)
    {
        // exp((l - max) / T) vectorised once per logit: a vocabulary of 150k made the scalar double version
        // ~10% of a decoding step. Sums stay in double, so the draw's cumulative scan matches its total.
        var w = weights.AsSpan(0, logits.Length);
        System.Numerics.Tensors.TensorPrimitives.Subtract(logits, System.Numerics.Tensors.TensorPrimitives.Max(logits), w);
        System.Numerics.Tensors.TensorPrimitives.Multiply(w, 1f / temperature, w);
        System.Numerics.Tensors.TensorPrimitives.Exp(w, w);
        double sum = 0;
        for (int i = 0; i < w.Length; i++) sum += w[i];
        double target = rng.NextDouble() * sum, cumulative = 0;
        for (int i = 0; i < w.Length; i++)
        {
            cumulative += w[i];
            if (cumulative > target) return i;
        }
        return logits.Length - 1;
    }
}

/// <summary>xorshift64* (Vigna): tiny, fast, and the same sequence for a seed on every platform and runtime.</summary>
internal sealed class XorShiftRandom(ulong seed)
{
    private ulong _state = seed == 0 ? 0x9E3779B97F4A7C15UL : seed;

    public ulong NextUInt64()
    {
        _state ^= _state >> 12;
        _state ^= _state << 25;
        _state ^= _state >> 27;
        return _state * 0x2545F4914F6CDD1DUL;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));
}
