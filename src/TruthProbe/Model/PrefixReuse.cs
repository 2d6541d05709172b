namespace TruthProbe.Model;

/// <summary>
/// Prefilling a prompt from another prompt's cached keys and values without changing a bit of its logits.
/// <para>A forward call computes each of its rows independently of the call's other rows: the GEMMs sum every
/// output in the same order whatever the row count, norms, RoPE (by absolute position), biases and interventions
/// go row by row, and attention visits a query's keys in tiles at fixed offsets from the sequence's start. So the
/// positions a prompt shares with an earlier prompt hold the same keys and values in that prompt's cache, and
/// prefilling only the rest gives the whole-prompt logits, provided every call involved takes the same kernels
/// as a whole-prompt call: attention switches kernels below <see cref="FlashAttention.ManyQueries"/> queries
/// (and one token takes the mat-vec), so the rest keeps at least that many tokens (shared ones recomputed if
/// need be), and the earlier prompt must have been that long too. SwiGLU runs over a call's rows in chunks of
/// 256 floats, and a chunk of fewer than 16 floats would take the library's scalar exp: with an FFN width that is
/// a multiple of 16 no chunk is that short, whatever the call's row count.</para>
/// </summary>
internal static class PrefixReuse
{
    /// <summary>Fewest tokens a prefill from a reused prefix runs, and fewest a reusable prompt has.</summary>
    public const int MinRest = FlashAttention.ManyQueries;

    /// <summary>How many leading positions of <paramref name="prompt"/> can be copied from the cache of
    /// <paramref name="earlier"/> (prefilled whole or by this rule): 0 when none can.</summary>
    public static int SharedPositions(ModelConfig config, ReadOnlySpan<int> earlier, ReadOnlySpan<int> prompt)
    {
        if (config.Ffn % 16 != 0 || earlier.Length < MinRest) return 0;
        return Math.Max(0, Math.Min(earlier.CommonPrefixLength(prompt), prompt.Length - MinRest));
    }

    /// <summary>Makes <paramref name="target"/> hold the first <paramref name="positions"/> cache positions of
    /// <paramref name="source"/> and nothing after them (the same state: rewinds it), ready to prefill from there.</summary>
    public static void CopyPrefix(ModelConfig config, RunState source, RunState target, int positions)
    {
        if (positions > source.Position) throw new ArgumentException($"the source holds {source.Position} positions, {positions} asked");
        if (!ReferenceEquals(source, target))
        {
            target.EnsureCapacity(1, positions);
            source.CopyCacheTo(target, positions);
        }
        target.Position = positions;
    }
}
