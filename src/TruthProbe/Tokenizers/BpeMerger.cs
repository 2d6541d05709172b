namespace TruthProbe.Tokenizers;

/// <summary>One symbol of a word being merged: a span of the word's text and its token id (-1: not in the vocabulary).</summary>
internal struct BpeSymbol
{
    public int Start, Length, Id, Prev, Next, Version;
    /// <summary>User-defined pieces are atomic: SentencePiece never merges them with neighbours.</summary>
    public bool Frozen;
}

/// <summary>Says whether two adjacent symbols merge, into which id, and how urgently (lower merges first).</summary>
internal interface IBpePairRule
{
    bool TryMerge(ReadOnlySpan<char> text, in BpeSymbol left, in BpeSymbol right, out float priority, out int mergedId);
}

/// <summary>
/// The BPE merge loop shared by every tokenizer here: symbols in a linked list, candidate pairs in a priority
/// queue ordered by (priority, left position), stale candidates skipped by version stamps. This is
/// SentencePiece's <c>bpe_model.cc</c> and Hugging Face's <c>Word::merge_all</c>: the best pair anywhere merges
/// first, ties go to the leftmost; O(n log n) instead of llama2.c's O(n^2) rescans, same result.
/// </summary>
internal sealed class BpeMerger
{
    private readonly record struct Candidate(int Left, int Right, int LeftVersion, int RightVersion, int MergedId);

    private readonly PriorityQueue<Candidate, (float Priority, int Left)> _queue = new();

    /// <summary>Merges <paramref name="symbols"/> (linked by <see cref="Link"/>) in place. Symbol 0 stays the first
    /// live one (a merge always keeps the left symbol); dead symbols have Length -1.</summary>
    public void Merge<TRule>(ReadOnlySpan<char> text, Span<BpeSymbol> symbols, TRule rule) where TRule : IBpePairRule
    {
        _queue.Clear();
        for (int i = 0; i + 1 < symbols.Length; i++) Offer(text, symbols, i, i + 1, rule);
        while (_queue.TryDequeue(out var c, out _))
        {
            ref var left = ref symbols[c.Left];
            ref var right = ref symbols[c.Right];
            if (left.Version != c.LeftVersion || right.Version != c.RightVersion) continue;
            left.Length += right.Length;
            left.Id = c.MergedId;
            left.Version++;
            right.Version++;
            right.Length = -1; // dead
            left.Next = right.Next;
            if (right.Next >= 0) symbols[right.Next].Prev = c.Left;
            if (left.Prev >= 0) Offer(text, symbols, left.Prev, c.Left, rule);
            if (left.Next >= 0) Offer(text, symbols, c.Left, left.Next, rule);
        }
    }

    private void Offer<TRule>(ReadOnlySpan<char> text, Span<BpeSymbol> symbols, int l, int r, TRule rule) where TRule : IBpePairRule
    {
        ref var left = ref symbols[l];
        ref var right = ref symbols[r];
        if (left.Frozen || right.Frozen) return;
        if (rule.TryMerge(text, left, right, out float priority, out int mergedId))
            _queue.Enqueue(new Candidate(l, r, left.Version, right.Version, mergedId), (priority, l));
    }

    /// <summary>Links symbols 0..count-1 into a list in order.</summary>
    public static void Link(Span<BpeSymbol> symbols)
    {
        for (int i = 0; i < symbols.Length; i++)
        {
            symbols[i].Prev = i - 1;
            symbols[i].Next = i + 1 < symbols.Length ? i + 1 : -1;
        }
    }
}
