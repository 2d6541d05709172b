namespace TruthProbe.Tokenizers;

/// <summary>
/// Cuts added/special tokens (<c>&lt;s&gt;</c>, <c>&lt;|im_start|&gt;</c>...) out of raw text before the model's
/// normaliser and BPE run, as Hugging Face does: leftmost-longest match, <c>lstrip</c>/<c>rstrip</c> swallow the
/// whitespace beside the token, <c>single_word</c> only matches a token standing alone.
/// </summary>
internal sealed class AddedTokenSplitter
{
    /// <summary>An added token; <see cref="Normalized"/> ones are matched in the normaliser's output, the others in raw text.</summary>
    public readonly record struct AddedToken(string Content, int Id, bool LStrip = false, bool RStrip = false, bool SingleWord = false, bool Normalized = false);

    /// <summary>A piece of the input: an added token (<see cref="TokenId"/> &gt;= 0) or text to tokenise.</summary>
    public readonly record struct Segment(int Start, int Length, int TokenId);

    private readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public AddedTokenSplitter(IEnumerable<AddedToken> tokens)
    {
        _byFirstChar = tokens.Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
    }

    public bool IsEmpty => _byFirstChar.Count == 0;

    /// <summary>
    /// Appends the ids of the added tokens in <paramref name="text"/> to <paramref name="ids"/> and hands each stretch of
    /// other text, in order, to <paramref name="encodeText"/>(start, length), which appends its ids.
    /// </summary>
    public void Encode(ReadOnlySpan<char> text, List<int> ids, Action<int, int> encodeText)
    {
        if (IsEmpty)
        {
            encodeText(0, text.Length);
            return;
        }
        var segments = new List<Segment>();
        Split(text, segments);
        foreach (var segment in segments)
        {
            if (segment.TokenId >= 0) ids.Add(segment.TokenId);
            else encodeText(segment.Start, segment.Length);
        }
    }

    public void Split(ReadOnlySpan<char> text, List<Segment> segments)
    {
        segments.Clear();
        int textStart = 0;
        for (int i = 0; i < text.Length;)
        {
            if (!TryMatchAt(text, i, out var token))
            {
                i++;
                continue;
            }
            int textEnd = i;
            if (token.LStrip)
                while (textEnd > textStart && char.IsWhiteSpace(text[textEnd - 1])) textEnd--;
            if (textEnd > textStart) segments.Add(new Segment(textStart, textEnd - textStart, -1));
            segments.Add(new Segment(i, token.Content.Length, token.Id));
            i += token.Content.Length;
            if (token.RStrip)
                while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
            textStart = i;
        }
        if (textStart < text.Length) segments.Add(new Segment(textStart, text.Length - textStart, -1));
    }

    private bool TryMatchAt(ReadOnlySpan<char> text, int at, out AddedToken match)
    {
        match = default;
        if (!_byFirstChar.TryGetValue(text[at], out var candidates)) return false;
        foreach (var token in candidates)
        {
            if (!text[at..].StartsWith(token.Content, StringComparison.Ordinal)) continue;
            if (token.SingleWord && !StandsAlone(text, at, token.Content.Length)) continue;
            match = token;
            return true;
        }
        return false;
    }

    private static bool StandsAlone(ReadOnlySpan<char> text, int start, int length)
    {
        static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
        bool before = start > 0 && IsWordChar(text[start - 1]);
        bool after = start + length < text.Length && IsWordChar(text[start + length]);
        return !before && !after;
    }
}
