using System.Text.RegularExpressions;

namespace TruthProbe.Evaluation;

/// <summary>
/// Splits a caption into words the way NLTK's <c>word_tokenize</c> does, which CHAIR's reference uses
/// (and whose token count is CHAIR's "Len"): sentences first (Punkt), then the NLTK/Treebank word rules
/// on each sentence. The word rules below are those of NLTK 3.8 <c>NLTKWordTokenizer</c>, in its order.
/// Sentence splitting follows Punkt's decision for lower-cased text: a token ending in '.', '?' or '!'
/// (and any closing quotes or brackets) followed by white space ends a sentence unless it is a number, a
/// single letter (an initial) or a known abbreviation; Punkt's trained abbreviation list is not available
/// here, so only common ones are listed. On the 6,000 "Less is More" captions this gives NLTK's tokens
/// (untrained Punkt) except for 5 abbreviations ("st.", "co.") that the trained model knows.
/// </summary>
public static class CaptionTokenizer
{
    private const RegexOptions Opts = RegexOptions.Compiled | RegexOptions.CultureInvariant;

    private static readonly (Regex Pattern, string Replacement)[] StartingQuotes =
    [
        (new Regex("([«“‘„]|[`]+)", Opts), " $1 "),
        (new Regex("^\"", Opts), "``"),
        (new Regex("(``)", Opts), " $1 "),
        (new Regex("([ \\(\\[{<])(\"|'{2})", Opts), "$1 `` "),
        (new Regex(@"(?i)(')(?!re|ve|ll|m|t|s|d|n)(\w)\b", Opts), "$1 $2"),
    ];

    private static readonly (Regex Pattern, string Replacement)[] Punctuation =
    [
        (new Regex("([^\\.])(\\.)([\\]\\)}>\"'»”’ ]*)\\s*$", Opts), "$1 $2 $3 "),
        (new Regex(@"([:,])([^\d])", Opts), " $1 $2"),
        (new Regex("([:,])$", Opts), " $1 "),
        (new Regex(@"\.{2,}", Opts), " $0 "),
        (new Regex("[;@#$%&]", Opts), " $0 "),
        (new Regex("([^\\.])(\\.)([\\]\\)}>\"']*)\\s*$", Opts), "$1 $2$3 "),
        (new Regex("[?!]", Opts), " $0 "),
        (new Regex("([^'])' ", Opts), "$1 ' "),
        (new Regex("[*]", Opts), " $0 "),
    ];

    private static readonly Regex ParensBrackets = new(@"[\]\[\(\)\{\}\<\>]", Opts);
    private static readonly Regex DoubleDashes = new("--", Opts);

    private static readonly (Regex Pattern, string Replacement)[] EndingQuotes =
    [
        (new Regex("([»”’])", Opts), " $1 "),
        (new Regex("''", Opts), " '' "),
        (new Regex("\"", Opts), " '' "),
        (new Regex("([^' ])('[sS]|'[mM]|'[dD]|') ", Opts), "$1 $2 "),
        (new Regex("([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", Opts), "$1 $2 "),
    ];

    private static readonly Regex[] Contractions =
    [
        new(@"(?i)\b(can)(not)\b", Opts),
        new(@"(?i)\b(d)('ye)\b", Opts),
        new(@"(?i)\b(gim)(me)\b", Opts),
        new(@"(?i)\b(gon)(na)\b", Opts),
        new(@"(?i)\b(got)(ta)\b", Opts),
        new(@"(?i)\b(lem)(me)\b", Opts),
        new(@"(?i)\b(more)('n)\b", Opts),
        new(@"(?i)\b(wan)(na)(?=\s)", Opts),
        new(@"(?i) ('t)(is)\b", Opts),
        new(@"(?i) ('t)(was)\b", Opts),
    ];

    private static readonly char[] Space = [' ', '\t', '\n', '\r', '\f', '\v'];

    private static readonly HashSet<string> Abbreviations = new(StringComparer.Ordinal)
    {
        "mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "u.s", "inc", "ltd", "co", "approx",
    };

    /// <summary>The words of <paramref name="text"/>, appended to <paramref name="words"/>.</summary>
    public static void Tokenize(string text, List<string> words)
    {
        foreach (var sentence in Sentences(text))
            WordTokenize(sentence, words);
    }

    public static List<string> Tokenize(string text)
    {
        var words = new List<string>();
        Tokenize(text, words);
        return words;
    }

    /// <summary>NLTK's word rules on one sentence.</summary>
    public static void WordTokenize(string sentence, List<string> words)
    {
        string text = sentence;
        foreach (var (p, r) in StartingQuotes) text = p.Replace(text, r);
        foreach (var (p, r) in Punctuation) text = p.Replace(text, r);
        text = ParensBrackets.Replace(text, " $0 ");
        text = DoubleDashes.Replace(text, " -- ");
        text = " " + text + " ";
        foreach (var (p, r) in EndingQuotes) text = p.Replace(text, r);
        foreach (var p in Contractions) text = p.Replace(text, " $1 $2 ");
        words.AddRange(text.Split(Space, StringSplitOptions.RemoveEmptyEntries));
    }

    /// <summary>Punkt-style sentence boundaries (see the class comment).</summary>
    public static IEnumerable<string> Sentences(string text)
    {
        int start = 0;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c != '.' && c != '?' && c != '!') continue;
            // Closing quotes and brackets after the mark stay with the sentence it ends (Punkt realigns them).
            int end = i + 1;
            while (end < text.Length && Closers.Contains(text[end])) end++;
            if (end >= text.Length || !char.IsWhiteSpace(text[end]) || !EndsSentence(text, i)) continue;
            string sentence = text[start..end].Trim();
            if (sentence.Length > 0) yield return sentence;
            start = end;
            i = end - 1;
        }
        string rest = text[start..].Trim();
        if (rest.Length > 0) yield return rest;
    }

    private const string Closers = "\"')]}”’";

    /// <summary>
    /// Punkt's non-word characters: it classifies the part of a token after them ("6:30." -> "30.").
    /// An apostrophe starts a Punkt token instead ("man's." -> "'s.", no initial), so it is not listed.
    /// </summary>
    private const string PunktNonWord = ")\";}]*:@({[!?";

    private static bool EndsSentence(string text, int end)
    {
        if (text[end] != '.') return true;
        int begin = end;
        while (begin > 0 && !char.IsWhiteSpace(text[begin - 1]) && !PunktNonWord.Contains(text[begin - 1])) begin--;
        var word = text.AsSpan(begin, end - begin);
        if (word.IsEmpty) return true;
        // Punkt keeps numbers ("2.", "6:30.") and initials ("j.") inside the sentence when the next word is lower-case.
        if (char.IsDigit(word[^1]) && double.TryParse(word, System.Globalization.NumberStyles.Float,
                System.Globalization.CultureInfo.InvariantCulture, out _)) return !NextIsLower(text, end);
        if (word.Length == 1 && char.IsLetter(word[0])) return !NextIsLower(text, end);
        return !Abbreviations.GetAlternateLookup<ReadOnlySpan<char>>().Contains(word);
    }

    private static bool NextIsLower(string text, int end)
    {
        int j = end + 1;
        while (j < text.Length && char.IsWhiteSpace(text[j])) j++;
        return j < text.Length && char.IsLower(text[j]);
    }
}
