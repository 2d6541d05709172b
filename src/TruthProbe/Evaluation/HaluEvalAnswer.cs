using System.Text;

namespace TruthProbe.Evaluation;

/// <summary>A reply read as the reference reads it. <see cref="Parseable"/> is false when it started with neither word.</summary>
public readonly record struct HaluEvalParsed(bool SaysYes, bool Parseable)
{
    public string Answer => SaysYes ? "yes" : "no";
}

/// <summary>
/// The reference's parse rule (<c>halueval_process_results</c>): lower-case, strip, then
/// <c>re.match(r"^(yes|no)\b", reply)</c>; only a leading word "yes" counts as yes, everything else - a
/// leading "no", or any reply matching neither ("unknown", "The answer is yes", "") - counts as no.
/// </summary>
public static class HaluEvalAnswer
{
    public static HaluEvalParsed Parse(string reply)
    {
        string text = StripPythonWhitespace(reply).ToLowerInvariant();
        if (StartsWithWord(text, "yes")) return new HaluEvalParsed(true, true);
        if (StartsWithWord(text, "no")) return new HaluEvalParsed(false, true);
        return new HaluEvalParsed(false, false);
    }

    /// <summary><c>^word\b</c>: the word, then the end of the text or a character Python's <c>\w</c> does not match.</summary>
    private static bool StartsWithWord(string text, string word)
    {
        if (!text.StartsWith(word, StringComparison.Ordinal)) return false;
        if (text.Length == word.Length) return true;
        Rune.DecodeFromUtf16(text.AsSpan(word.Length), out Rune next, out _);
        return !IsPythonWordRune(next);
    }

    /// <summary>Python's <c>\w</c> on str: alphanumeric (letters, any numeric character) or underscore.</summary>
    private static bool IsPythonWordRune(Rune r) => Rune.IsLetter(r) || Rune.IsNumber(r) || r.Value == '_';

    /// <summary>Python's <c>str.strip()</c>: .NET's whitespace plus U+001C..U+001F, which Python also strips.</summary>
    private static string StripPythonWhitespace(string s)
    {
        int start = 0, end = s.Length;
        while (start < end && IsPythonSpace(s[start])) start++;
        while (end > start && IsPythonSpace(s[end - 1])) end--;
        return s[start..end];
    }

    private static bool IsPythonSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';
}
