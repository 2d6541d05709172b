using Microsoft.ML.Tokenizers;
using TruthProbe.Tests.Common;
using TruthProbe.Tokenizers;

namespace TruthProbe.Tests.Tokenizers;

/// <summary>
/// SentencePiece BPE on the real llama2.c/BabyLlama vocabularies, against Microsoft.ML.Tokenizers' independent
/// SentencePiece implementation and against stories260K's published generation.
/// </summary>
public class SentencePieceTokenizerTests
{
    // Published greedy output of stories260K from BOS (docs/design.md §8).
    private static readonly int[] Stories260KPublishedIds =
        [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337,
         410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352];
    private const string Stories260KPublishedText =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, r";

    /// <summary>Varied text: words, punctuation, digits, whitespace runs, newlines/tabs, accents, CJK, emoji, Cyrillic
    /// (the last ones exercise byte fallback on these ASCII-trained vocabularies).</summary>
    internal static readonly string[] VariedTexts =
    [
        "Once upon a time, there was a little girl named Lily.",
        "She loved to play outside in the park. One day, she saw a big, red ball!",
        "Hello world",
        " leading space",
        "trailing space ",
        "two  spaces   and    four",
        "   ",
        "",
        "a",
        "line one\nline two\n\nline four\ttabbed",
        "Numbers 0123456789 and 3.14159, 1,000,000 and -42.",
        "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber Stra\u00dfe",
        "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \u4e2d\u6587",
        "emoji \U0001F600\U0001F680 and \u2764\uFE0F",
        "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
        "code: if (x != y) { return a[i] * 2; } // done",
        "quotes \u201clike this\u201d and \u2018these\u2019 \u2014 dashes \u2013 ok\u2026",
        "<s> literal control text </s> and <unk>",
        "\u2581already escaped \u2581\u2581",
    ];

    private static ITokenizer Load(params string[] parts) => TokenizerLoader.FromFile(SharedData.Path(parts));

    [SkippableFact]
    public void Stories260K_PublishedIds_DecodeToPublishedText()
    {
        var tokenizer = Load("models", "stories260K", "tok512.model");
        Assert.Equal(Stories260KPublishedText, tokenizer.Decode(Stories260KPublishedIds));
        // With BOS in front, as generation output starts, BOS is skipped and the dummy space still removed.
        Assert.Equal(Stories260KPublishedText, tokenizer.Decode([1, .. Stories260KPublishedIds]));
    }

    [SkippableFact]
    public void Stories260K_PublishedText_ReencodesToPublishedIds()
    {
        // The published ids are the model's greedy choices, not necessarily canonical BPE; this checks that they are
        // (every one of the 40 tokens is what BPE itself produces for that text).
        var tokenizer = Load("models", "stories260K", "tok512.model");
        Assert.Equal([1, .. Stories260KPublishedIds], tokenizer.Encode(Stories260KPublishedText));
        Assert.Equal(Stories260KPublishedIds, tokenizer.Encode(Stories260KPublishedText, addSpecialTokens: false));
    }

    [SkippableTheory]
    [InlineData("stories260K", "tok512.model")]
    [InlineData("babyllama-128d-tok105", "tok105.model")]
    public void RealModelFile_EncodesLikeMicrosoftMlSentencePiece(string folder, string file)
    {
        string path = SharedData.Path("models", folder, file);
        var ours = TokenizerLoader.FromFile(path);
        using var stream = File.OpenRead(path);
        var reference = LlamaTokenizer.Create(stream, addBeginOfSentence: true, addEndOfSentence: false);
        // Left out, where ML.Tokenizers 2.0.1 departs from SentencePiece itself (covered by the tests below):
        // spaces-only text (normalizer.cc returns nothing, ML emits "▁") and texts under 2 characters (ML returns no
        // ids at all, not even BOS). ML also never fuses a run of <unk>, which sentencepiece_processor.cc does
        // (PopulateSentencePieceText: "Merges continuous run of unknown pieces"), so its runs are fused here.
        int unk = ours.Vocabulary.UnknownId!.Value;
        int[] Reference(string text) => reference.EncodeToIds(text).Where((id, i) => id != unk || i == 0 || reference.EncodeToIds(text)[i - 1] != unk).ToArray();
        var mismatches = VariedTexts.Where(text => text.Trim(' ').Length > 0 && text.Length >= 2)
            .Where(text => !Reference(text).SequenceEqual(ours.Encode(text)))
            .Select(text => $"\"{text}\": ours {string.Join(' ', ours.Encode(text))} vs ML.Tokenizers {string.Join(' ', Reference(text))}")
            .ToList();
        Assert.True(mismatches.Count == 0, string.Join('\n', mismatches));
    }

    [SkippableFact]
    public void EmptyAndOneCharacterText_GiveBosAndThePiece()
    {
        var tokenizer = Load("models", "stories260K", "tok512.model");
        Assert.Equal([1], tokenizer.Encode(""));
        Assert.Equal([1, 261], tokenizer.Encode("a")); // 261 is "▁a" (" a" in the published ids above)
        Assert.Equal("\u2581a", tokenizer.TokenText(261));
    }

    [SkippableFact]
    public void Tok105_RunOfUnknownCharacters_IsOneUnknownToken()
    {
        // tok105 has no byte fallback; SentencePiece fuses consecutive unknown pieces into one <unk> (id 0).
        var tokenizer = Load("models", "babyllama-128d-tok105", "tok105.model");
        int space = Array.IndexOf(tokenizer.Vocabulary.Tokens, "\u2581");
        int a = Array.IndexOf(tokenizer.Vocabulary.Tokens, "a");
        Assert.Equal([1, space, 0, space, a], tokenizer.Encode("\u65e5\u672c\u8a9e a"));
        Assert.Equal([space, a, 0], tokenizer.Encode("a\u00ae\u00ae", addSpecialTokens: false));
    }

    [SkippableFact]
    public void AllSpaces_EncodeToNothing_AsSentencePieceNormalizerDoes()
    {
        // normalizer.cc with remove_extra_whitespaces: leading spaces are dropped, and an input that is then empty
        // yields no pieces at all (no dummy prefix). tokenizer.bin follows llama2.c, which adds the prefix and keeps spaces.
        var model = Load("models", "stories260K", "tok512.model");
        Assert.Equal([1], model.Encode("   "));
        var bin = Load("models", "stories260K", "tok512.bin");
        int spaceId = Array.IndexOf(bin.Vocabulary.Tokens, "\u2581");
        Assert.True(spaceId > 0, "tok512 has a lone ▁ piece");
        Assert.Equal([1, .. bin.Encode("   ", addSpecialTokens: false)], bin.Encode("   "));
        Assert.All(bin.Encode("   ", addSpecialTokens: false), id => Assert.Contains(bin.TokenText(id), (string[])["\u2581", "\u2581\u2581", "\u2581\u2581\u2581", "\u2581\u2581\u2581\u2581"]));
    }

    [SkippableFact]
    public void Tok512_BinAndModel_HaveSameVocabularyAndEncodings()
    {
        var fromModel = Load("models", "stories260K", "tok512.model");
        var fromBin = Load("models", "stories260K", "tok512.bin");
        Assert.Equal(fromModel.Vocabulary.Tokens, fromBin.Vocabulary.Tokens);
        Assert.Equal(fromModel.Vocabulary.Scores, fromBin.Vocabulary.Scores);
        Assert.Equal(fromModel.Vocabulary.TokenTypes, fromBin.Vocabulary.TokenTypes);
        // tokenizer.bin follows llama2.c's run.c, which keeps whitespace runs that the .model's normaliser collapses;
        // on text without leading, trailing or repeated spaces the two must agree.
        foreach (string text in VariedTexts.Where(t => t.Trim(' ') == t && !t.Contains("  ", StringComparison.Ordinal) && t.Length > 0))
            Assert.Equal(fromModel.Encode(text), fromBin.Encode(text));
    }
}
