using System.Text.Json.Nodes;
using TruthProbe.Tests.Common;
using TruthProbe.Tokenizers;

namespace TruthProbe.Tests.Tokenizers;

/// <summary>
/// Hugging Face tokenizer.json in the Llama-2 layout (merges by rank, byte fallback), built from the real tok512
/// vocabulary as transformers' converter does, compared with Hugging Face tokenizers itself (Tokenizers.DotNet).
/// </summary>
public class HfJsonSentencePieceTests
{
    private static string[] Texts => [.. SentencePieceTokenizerTests.VariedTexts.Where(t => t.Length > 0),
        "<s>Hello</s> world", "a<s> b", "<unk>", "  <s>  spaced  </s>  ", "x\u00a0y\u3000z"];

    private static TokenizerVocabulary Tok512() =>
        TokenizerLoader.FromFile(SharedData.Path("models", "stories260K", "tok512.model")).Vocabulary;

    private static void AssertSameAsHuggingFace(string path, ITokenizer ours, IEnumerable<string> texts)
    {
        using var hf = new global::Tokenizers.DotNet.Tokenizer(path);
        var mismatches = texts
            .Select(text => (text, expected: hf.Encode(text).Select(id => (int)id).ToArray(), actual: ours.Encode(text)))
            .Where(r => !r.expected.SequenceEqual(r.actual))
            .Select(r => $"\"{r.text}\": HF {string.Join(' ', r.expected)} vs ours {string.Join(' ', r.actual)}")
            .ToList();
        Assert.True(mismatches.Count == 0, string.Join('\n', mismatches));
    }

    [SkippableFact]
    public void LegacyPrependReplaceNormalizer_MatchesHuggingFaceTokenizers()
    {
        using var dir = new TempDir();
        string path = HfJsonBuilder.Write(dir.Path, HfJsonBuilder.LlamaStyle(Tok512(), metaspace: false));
        var ours = TokenizerLoader.FromFile(path);
        Assert.Equal("sentencepiece-bpe", ours.Kind);
        Assert.True(ours.AddsBos);
        Assert.Equal(1, ours.BosId);
        AssertSameAsHuggingFace(path, ours, Texts.Concat([MixedTextSample()]));
    }

    [SkippableTheory]
    [InlineData("first", false)]
    [InlineData("always", false)]
    [InlineData("never", false)]
    [InlineData("always", true)]
    [InlineData("first", true)]
    public void MetaspacePreTokenizer_MatchesHuggingFaceTokenizers(string scheme, bool split)
    {
        using var dir = new TempDir();
        string path = HfJsonBuilder.Write(dir.Path, HfJsonBuilder.LlamaStyle(Tok512(), metaspace: true, scheme, split: split));
        AssertSameAsHuggingFace(path, TokenizerLoader.FromFile(path), Texts.Concat([MixedTextSample()]));
    }

    [Theory]
    [InlineData(true, new[] { 0, 1, 0, 4 })]
    [InlineData(false, new[] { 0, 3, 4 })]
    public void MetaspaceSplit_CutsWordsBeforeEveryMetaspace(bool split, int[] expected)
    {
        // Vocabulary ▁=0 a=1 b=2 a▁=3 ▁b=4; merges "a ▁" (rank 0), "▁ b" (rank 1). Text "a  b" becomes "▁a▁▁b".
        // split=false, one word: ▁ a ▁ ▁ b -> (rank 0) ▁ a▁ ▁ b -> (rank 1) ▁ a▁ ▁b = 0 3 4.
        // split=true, words ▁a | ▁ | ▁b (each ▁ starts one): 0 1 | 0 | 4, since a▁ cannot form across a word edge.
        using var dir = new TempDir();
        var json = new JsonObject
        {
            ["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "\u2581", ["prepend_scheme"] = "always", ["split"] = split },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["vocab"] = new JsonObject { ["\u2581"] = 0, ["a"] = 1, ["b"] = 2, ["a\u2581"] = 3, ["\u2581b"] = 4 },
                ["merges"] = new JsonArray("a \u2581", "\u2581 b"),
            },
        };
        string path = HfJsonBuilder.Write(dir.Path, json);
        using var hf = new global::Tokenizers.DotNet.Tokenizer(path);
        Assert.Equal(expected, hf.Encode("a  b").Select(id => (int)id).ToArray());
        Assert.Equal(expected, TokenizerLoader.FromFile(path).Encode("a  b"));
    }

    [SkippableFact]
    public void MergeRanks_EncodeLikeSentencePieceScores_OnTok512()
    {
        // The converter's rank order comes from SentencePiece scores, so both merge orders must agree (text without
        // space runs, which the .model's normaliser collapses and tokenizer.json keeps).
        using var dir = new TempDir();
        string path = HfJsonBuilder.Write(dir.Path, HfJsonBuilder.LlamaStyle(Tok512(), metaspace: false));
        var fromJson = TokenizerLoader.FromFile(path);
        var fromModel = TokenizerLoader.FromFile(SharedData.Path("models", "stories260K", "tok512.model"));
        string text = MixedTextSample().Replace("<s>", "").Replace("</s>", "");
        text = string.Join(' ', text.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(fromModel.Encode(text), fromJson.Encode(text));
    }

    [SkippableFact]
    public void AddedTokensWithStrip_AndConfigAddBosFalse_MatchHuggingFace()
    {
        using var dir = new TempDir();
        var v = Tok512();
        // A user-defined (non-special) token and a special one that swallows spaces on both sides.
        var extra = new JsonArray(HfJsonBuilder.Added(512, "<mark>", special: false), HfJsonBuilder.Added(513, "<|sep|>", lstrip: true, rstrip: true),
            HfJsonBuilder.Added(514, "ok", special: false, singleWord: true));
        var json = HfJsonBuilder.LlamaStyle(v, metaspace: true, "first", extra);
        string path = HfJsonBuilder.Write(dir.Path, json);
        var ours = TokenizerLoader.FromFile(path);
        Assert.Equal(515, ours.VocabSize);
        Assert.Equal(TokenType.UserDefined, ours.Vocabulary.TokenTypes[512]);
        Assert.Equal(TokenType.Control, ours.Vocabulary.TokenTypes[513]);
        AssertSameAsHuggingFace(path, ours, ["a <mark> b", "x  <|sep|>  y", "<|sep|>start", "end<|sep|>", "<mark><mark>", "one<|sep|><mark> two",
            "ok", "look okay ok", "ok.", "(ok)", "_ok", "ok_", "\u00e9ok", "ok1", "ok ok<mark>ok"]);

        // tokenizer_config.json's add_bos_token overrides the template (as transformers' Llama tokenizers do).
        File.WriteAllText(Path.Combine(dir.Path, "tokenizer_config.json"),
            """{"add_bos_token": false, "add_eos_token": true, "bos_token": {"content": "<s>"}, "eos_token": "</s>"}""");
        var configured = TokenizerLoader.FromModelDirectory(dir.Path)!;
        Assert.False(configured.AddsBos);
        Assert.Equal(2, configured.EosId);
        int[] body = ours.Encode("hi there", addSpecialTokens: false);
        Assert.Equal([.. body, 2], configured.Encode("hi there"));
        Assert.Equal(body, configured.Encode("hi there", addSpecialTokens: false));
    }

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void NormalizedAddedTokens_AreMatchedAfterTheNormalizer_AsHuggingFaceDoes(bool metaspace)
    {
        // "normalized": true tokens are looked for in the normaliser's output by their own normalised text: under
        // Prepend/Replace "<mark>" becomes "▁<mark>", so "a <mark> b" -> ▁a, <mark>, ▁b and "x<mark>y" has no match.
        using var dir = new TempDir();
        var extra = new JsonArray(HfJsonBuilder.Added(512, "<mark>", special: false, normalized: true), HfJsonBuilder.Added(513, "[x]", normalized: true));
        string path = HfJsonBuilder.Write(dir.Path, HfJsonBuilder.LlamaStyle(Tok512(), metaspace, "first", extra));
        AssertSameAsHuggingFace(path, TokenizerLoader.FromFile(path),
            ["a <mark> b", " <mark>", "x<mark>y", "<mark>", "<mark> <mark>", "one [x]two", "[x]", "a  [x]  b <s> c"]);
    }

    [SkippableFact]
    public void Decode_ByteFallbackAndDummyPrefix_GiveOriginalText()
    {
        using var dir = new TempDir();
        string path = HfJsonBuilder.Write(dir.Path, HfJsonBuilder.LlamaStyle(Tok512(), metaspace: false));
        var ours = TokenizerLoader.FromFile(path);
        using var hf = new global::Tokenizers.DotNet.Tokenizer(path);
        foreach (string text in (string[])["Hello world", "Caf\u00e9 \u65e5\u672c \U0001F600 end", "line\nbreak"])
        {
            Assert.Equal(text, ours.Decode(ours.Encode(text)));
            Assert.Equal(hf.Decode(hf.Encode(text)), ours.Decode(ours.Encode(text)));
        }
    }

    private static string MixedTextSample() => MixedText.Generate(20_000, seed: 3);
}
