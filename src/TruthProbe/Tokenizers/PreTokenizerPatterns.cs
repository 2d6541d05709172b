using System.Text;

namespace TruthProbe.Tokenizers;

/// <summary>
/// The GPT-2, Qwen2 and Llama-3 pre-split regexes written out as scanners over code points, as llama.cpp does.
/// .NET's Regex sees UTF-16 units, so a letter or digit outside the BMP (𝐀, 𝟘, CJK extension B) would not count as
/// \p{L}/\p{N} there, and words would split where Hugging Face's engine does not. Each scanner returns where the word
/// starting at <c>i</c> ends, following the pattern's alternatives in order (leftmost alternative wins, as in a regex).
/// </summary>
internal static class PreTokenizerPatterns
{
    public enum Kind { Gpt2, Qwen2, Llama3 }

    /// <summary>The scanner for a known pattern, or null when the pattern must run through Regex.</summary>
    public static Kind? Recognise(string pattern) =>
        pattern == ByteLevelBpeTokenizer.KnownPatterns["gpt2"] ? Kind.Gpt2
        : pattern == ByteLevelBpeTokenizer.KnownPatterns["qwen2"] ? Kind.Qwen2
        : pattern == ByteLevelBpeTokenizer.KnownPatterns["llama-bpe"] ? Kind.Llama3
        : null;

    private enum Class : byte { Letter, Number, Space, Other }

    private static (Class Class, int Length) At(ReadOnlySpan<char> s, int i)
    {
        if (i >= s.Length) return (Class.Other, 0);
        Rune.DecodeFromUtf16(s[i..], out Rune rune, out int length);
        var c = Rune.IsLetter(rune) ? Class.Letter : Rune.IsNumber(rune) ? Class.Number : Rune.IsWhiteSpace(rune) ? Class.Space : Class.Other;
        return (c, length);
    }

    private static bool Is(ReadOnlySpan<char> s, int i, Class c) => i < s.Length && At(s, i).Class == c;

    private static int SkipWhile(ReadOnlySpan<char> s, int i, Class c)
    {
        while (i < s.Length)
        {
            var (k, length) = At(s, i);
            if (k != c) break;
            i += length;
        }
        return i;
    }

    public static int NextWordEnd(Kind kind, ReadOnlySpan<char> s, int i) => kind == Kind.Gpt2 ? Gpt2(s, i) : Qwen2(s, i, kind == Kind.Llama3 ? 3 : 1);

    /// <summary><c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c></summary>
    private static int Gpt2(ReadOnlySpan<char> s, int i)
    {
        if (Contraction(s, i, ignoreCase: false) is int c and > 0) return i + c;
        int afterSpace = s[i] == ' ' ? i + 1 : i;
        var (first, _) = At(s, afterSpace);
        if (afterSpace < s.Length)
        {
            if (first == Class.Letter) return SkipWhile(s, afterSpace, Class.Letter);
            if (first == Class.Number) return SkipWhile(s, afterSpace, Class.Number);
            if (first == Class.Other) return SkipWhile(s, afterSpace, Class.Other);
        }
        return Whitespace(s, i);
    }

    /// <summary><c>(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,n}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</c></summary>
    private static int Qwen2(ReadOnlySpan<char> s, int i, int maxDigits)
    {
        if (Contraction(s, i, ignoreCase: true) is int c and > 0) return i + c;
        var (first, firstLength) = At(s, i);
        if (first == Class.Letter) return SkipWhile(s, i, Class.Letter);
        if (first != Class.Number && s[i] != '\r' && s[i] != '\n' && Is(s, i + firstLength, Class.Letter))
            return SkipWhile(s, i + firstLength, Class.Letter);
        if (first == Class.Number)
        {
            int end = i;
            for (int n = 0; n < maxDigits && Is(s, end, Class.Number); n++) end += At(s, end).Length;
            return end;
        }
        int afterSpace = s[i] == ' ' ? i + 1 : i;
        if (Is(s, afterSpace, Class.Other))
        {
            int end = SkipWhile(s, afterSpace, Class.Other);
            while (end < s.Length && s[end] is '\r' or '\n') end++;
            return end;
        }
        // \s*[\r\n]+ : the whitespace run up to and including its last line break.
        int runEnd = SkipWhile(s, i, Class.Space);
        for (int k = runEnd - 1; k >= i; k--)
            if (s[k] is '\r' or '\n') return k + 1;
        return Whitespace(s, i);
    }

    /// <summary><c>\s+(?!\S)|\s+</c> at a whitespace character: the run, less its last character when a word follows
    /// (that space then leads the next word), unless the run is a single character.</summary>
    private static int Whitespace(ReadOnlySpan<char> s, int i)
    {
        int end = SkipWhile(s, i, Class.Space);
        if (end == i) return i + Math.Max(1, At(s, i).Length); // not reached: every class is handled above
        if (end < s.Length)
        {
            int lastStart = end - 1;
            if (char.IsLowSurrogate(s[lastStart]) && lastStart > i) lastStart--;
            if (lastStart > i) return lastStart;
        }
        return end;
    }

    /// <summary>Length of the contraction ('s 't 're 've 'm 'll 'd) at <paramref name="i"/>, or 0.</summary>
    private static int Contraction(ReadOnlySpan<char> s, int i, bool ignoreCase)
    {
        if (s[i] != '\'' || i + 1 >= s.Length) return 0;
        char a = Fold(s[i + 1], ignoreCase), b = i + 2 < s.Length ? Fold(s[i + 2], ignoreCase) : '\0';
        if (a is 's' or 't' or 'm' or 'd') return 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
        return 0;
    }

    /// <summary>Unicode simple case folding for the few letters the contractions use (ſ, U+017F, folds to s).</summary>
    private static char Fold(char c, bool ignoreCase) => !ignoreCase ? c : c == '\u017f' ? 's' : c is >= 'A' and <= 'Z' ? (char)(c + 32) : c;
}
