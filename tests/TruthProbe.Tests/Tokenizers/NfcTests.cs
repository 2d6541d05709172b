using TruthProbe.Tokenizers;

namespace TruthProbe.Tests.Tokenizers;

/// <summary>Our managed NFC on cases whose results the Unicode standard fixes (UAX #15 examples and the Hangul algorithm);
/// Qwen2StyleTokenizerTests compares it through Hugging Face tokenizers' own NFC on mixed text.</summary>
public class NfcTests
{
    [Theory]
    [InlineData("cafe\u0301", "caf\u00e9")]                 // e + combining acute composes
    [InlineData("a\u0302\u0323", "\u1ead")]                  // marks reordered by class (220 before 230), then a+dot below+circumflex
    [InlineData("a\u0323\u0302", "\u1ead")]
    [InlineData("\u212b", "\u00c5")]                        // ANGSTROM SIGN is a singleton: never comes back
    [InlineData("\u1100\u1161\u11a8", "\uac01")]            // Hangul L+V+T -> syllable
    [InlineData("\u1100\u1161", "\uac00")]
    [InlineData("\u0958", "\u0915\u093c")]                  // composition exclusion stays decomposed
    [InlineData("\u00e9\u0301", "\u00e9\u0301")]            // a second acute cannot combine further
    [InlineData("plain ASCII stays", "plain ASCII stays")]
    [InlineData("\u0041\u030a\u0301", "\u01fa")]            // A + ring + acute -> A-ring-acute (two-step composition)
    [InlineData("e\u0300\u0301", "\u00e8\u0301")]           // same class: the second is blocked by the first
    public void Normalize_GivesCanonicalComposition(string input, string expected)
    {
        Assert.Equal(expected, Nfc.Normalize(input));
    }
}
