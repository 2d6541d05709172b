using System.Text;

namespace TruthProbe.Tests.Tokenizers;

/// <summary>A large, seeded mixture of scripts and character classes that stresses pre-splitting and merging.</summary>
internal static class MixedText
{
    private static readonly string[] Fragments =
    [
        "the", "The", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "tokenization", "antidisestablishmentarianism",
        "it's", "IT'S", "we're", "they've", "I'm", "you'll", "he'd", "don't", "O'Neil", "'quoted'", "rock'n'roll",
        ",", ".", "!", "?", "...", ";", ":", "--", "(", ")", "[", "]", "{", "}", "\"", "''", "``", "@", "#", "$", "%", "^", "&", "*",
        "0", "7", "42", "2024", "3.14159", "1,000,000", "-17", "0x1F", "1e-9", "\u0661\u0662\u0663", "\u00bd", "\u2167",
        " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\u00a0", "\u3000", "\u2003", "  \t\n",
        "caf\u00e9", "na\u00efve", "\u00fcber", "Stra\u00dfe", "e\u0301", "\u00c5ngstr\u00f6m", "fa\u00e7ade", "\u0153uvre",
        "\u65e5\u672c\u8a9e", "\u4e2d\u6587\u5b57", "\u6f22\u5b57\u304b\u306a", "\ud55c\uad6d\uc5b4", "\u0e44\u0e17\u0e22",
        "\U0001F600", "\U0001F680\U0001F30D", "\U0001D400\U0001D401\U0001D402", "\U00020000\U00020001", "x\U0001D7D8", "a\U0001D400b", "\u4e2d\U00020000", "\u2764\uFE0F", "\U0001F468\u200D\U0001F469\u200D\U0001F467", "\U0001F44D\U0001F3FD",
        "\u041f\u0440\u0438\u0432\u0435\u0442", "\u043c\u0438\u0440", "\u0395\u03bb\u03bb\u03ac\u03b4\u03b1", "\u05e9\u05dc\u05d5\u05dd",
        "\u0645\u0631\u062d\u0628\u0627", "\u0939\u093f\u0928\u094d\u0926\u0940",
        "def f(x):", "return x**2", "if (a != b) {", "}", "x += 1;", "<div class=\"a\">", "</div>", "a_b_c", "snake_case",
        "CamelCase", "https://example.com/path?q=1&r=2", "user@example.org", "#include <stdio.h>", "//comment", "/* c */",
    ];

    public static string Generate(int length, int seed)
    {
        var random = new Random(seed);
        var sb = new StringBuilder(length + 64);
        while (sb.Length < length)
        {
            sb.Append(Fragments[random.Next(Fragments.Length)]);
            int gap = random.Next(10);
            if (gap < 6) sb.Append(' ');
            else if (gap == 6) sb.Append('\n');
        }
        return sb.ToString();
    }
}
