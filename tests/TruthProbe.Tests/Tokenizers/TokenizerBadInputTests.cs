using TruthProbe.Common;
using TruthProbe.Tests.Common;
using TruthProbe.Tokenizers;

namespace TruthProbe.Tests.Tokenizers;

/// <summary>Missing, truncated and malformed tokenizer files fail with one UserError that names the file and what was expected.</summary>
public class TokenizerBadInputTests
{
    private static UserError Fails(string path, string expectedFragment)
    {
        var error = Assert.Throws<UserError>(() => TokenizerLoader.FromFile(path));
        Assert.Contains(path, error.Message);
        Assert.Contains(expectedFragment, error.Message, StringComparison.OrdinalIgnoreCase);
        return error;
    }

    [Fact]
    public void MissingFile_NamesIt()
    {
        using var dir = new TempDir();
        Fails(dir.File("tokenizer.model"), "does not exist");
        var error = Assert.Throws<UserError>(() => TokenizerLoader.FromModelDirectory(dir.File("no-such-model")));
        Assert.Contains("no-such-model", error.Message);
    }

    [Fact]
    public void UnknownExtension_SaysWhichKindsAreRead()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("tok.txt"), "x");
        Fails(dir.File("tok.txt"), "expected tokenizer.json");
    }

    [SkippableFact]
    public void TruncatedTokenizerBin_SaysTruncated()
    {
        using var dir = new TempDir();
        byte[] bytes = File.ReadAllBytes(SharedData.Path("models", "stories260K", "tok512.bin"));
        File.WriteAllBytes(dir.File("tokenizer.bin"), bytes[..(bytes.Length - 3)]);
        Fails(dir.File("tokenizer.bin"), "truncated");
        File.WriteAllBytes(dir.File("short.bin"), [1, 2]);
        Fails(dir.File("short.bin"), "max_token_length");
        File.WriteAllBytes(dir.File("wrong.bin"), [0xFF, 0xFF, 0xFF, 0x7F, 0, 0]);
        Fails(dir.File("wrong.bin"), "max_token_length");
    }

    [SkippableFact]
    public void TruncatedOrGarbageSentencePieceModel_SaysNotValid()
    {
        using var dir = new TempDir();
        byte[] bytes = File.ReadAllBytes(SharedData.Path("models", "stories260K", "tok512.model"));
        File.WriteAllBytes(dir.File("cut.model"), bytes[..(bytes.Length / 2)]);
        Fails(dir.File("cut.model"), "not a valid SentencePiece model");
        File.WriteAllBytes(dir.File("garbage.model"), Enumerable.Range(0, 100).Select(i => (byte)(i * 37 + 11)).ToArray());
        Fails(dir.File("garbage.model"), "SentencePiece");
        File.WriteAllBytes(dir.File("empty.model"), []);
        Fails(dir.File("empty.model"), "no pieces");
    }

    [Fact]
    public void UnigramSentencePieceModel_IsRefusedByName()
    {
        // ModelProto { pieces { piece: "a" score: 0 } trainer_spec { model_type: UNIGRAM (1) } }
        using var dir = new TempDir();
        byte[] piece = [0x0A, 0x01, (byte)'a', 0x15, 0, 0, 0, 0];
        byte[] model = [0x0A, (byte)piece.Length, .. piece, 0x12, 0x02, 0x18, 0x01];
        File.WriteAllBytes(dir.File("unigram.model"), model);
        Fails(dir.File("unigram.model"), "expected BPE");
    }

    [Fact]
    public void MalformedVocabLine_NamesTheLine()
    {
        using var dir = new TempDir();
        File.WriteAllLines(dir.File("bad.vocab"), ["<unk>\t0", "<s>\t0", "</s>\t0", "no tab here"]);
        Fails(dir.File("bad.vocab"), "bad.vocab:4");
    }

    [Theory]
    [InlineData("{ not json", "not valid JSON")]
    [InlineData("""{"model": {"type": "WordPiece", "vocab": {"a": 0}}}""", "expected \"BPE\"")]
    [InlineData("""{"model": {"type": "BPE"}}""", "model.vocab is missing")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": "zero"}}}""", "non-negative integer id")]
    [InlineData("""{"pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"]}}""", "not in the vocabulary")]
    [InlineData("""{"pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": [3]}}""", "model.merges[0]")]
    [InlineData("""{"pre_tokenizer": {"type": "Whitespace"}, "model": {"type": "BPE", "vocab": {"a": 0}}}""", "Whitespace")]
    [InlineData("""{"normalizer": {"type": "NFKC"}, "pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {"a": 0}}}""", "NFKC")]
    [InlineData("""{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0}}}""", "byte-level token for byte 0x00")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}}}""", "not supported")]
    [InlineData("""{"added_tokens": [{"content": "<s>"}], "pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {"a": 0}}}""", "added_tokens[0]")]
    [InlineData("""{"pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {"a": 0, "b": 100000000}}}""", "token id 100000000")]
    [InlineData("""{"pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {"a": 0, "b": 2000000000}}}""", "token id 2000000000")]
    [InlineData("""{"added_tokens": [{"content": "<s>", "id": 1500000000}], "pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {"a": 0}}}""", "token id 1500000000")]
    [InlineData("""{"pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {"a": 0, "b": 1.5}}}""", "model.vocab[\"b\"]")]
    [InlineData("""{"pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {"a": 0, "b": 1e10}}}""", "model.vocab[\"b\"]")]
    [InlineData("""{"added_tokens": [{"content": "<s>", "id": 1.5}], "pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {"a": 0}}}""", "added_tokens[0]")]
    [InlineData("""{"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "a"}}, {"Sequence": {}}], "special_tokens": {"a": {"ids": ["x"]}}}, "pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {"a": 0}}}""", "exactly one id")]
    [InlineData("""{"pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {"a": 0, "b\ud800": 1}}}""", "lone UTF-16 surrogate")]
    [InlineData("""{"pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {"a": 0}, "unk_token": "\udfff"}}""", "field 'model.unk_token'")]
    public void MalformedTokenizerJson_SaysWhatIsWrong(string json, string expected)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("tokenizer.json"), json);
        Fails(dir.File("tokenizer.json"), expected);
    }

    [Theory]
    [InlineData("""{"pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {"a": 0, "\u2581": 1}}}""")]
    [InlineData("""{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {{BYTES}}}}""")]
    [InlineData("""{"pre_tokenizer": {"type": "Whitespace"}, "model": {"type": "WordLevel", "vocab": {"a": 0}}}""")]
    public void DecodingAnIdPastTheTokenizer_SaysTheModelIsLarger(string json)
    {
        // A model with a padded (larger) vocabulary than its tokenizer can emit such an id while generating.
        using var dir = new TempDir();
        string bytes = string.Join(", ", Enumerable.Range(0, 256).Select(b => $"\"\\u{(int)ByteLevelAlphabet.CharOf[b]:X4}\": {b}"));
        File.WriteAllText(dir.File("tokenizer.json"), json.Replace("{BYTES}", bytes));
        var tokenizer = TokenizerLoader.FromFile(dir.File("tokenizer.json"));
        var error = Assert.Throws<UserError>(() => tokenizer.Decode([0, tokenizer.VocabSize + 3]));
        Assert.Contains(dir.File("tokenizer.json"), error.Message);
        Assert.Contains($"token id {tokenizer.VocabSize + 3}", error.Message);
    }

    [Fact]
    public void ConfigNamingAnUnknownBosToken_NamesTheConfigFile()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("tokenizer.json"), """{"pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {"a": 0, "\u2581": 1}}}""");
        File.WriteAllText(dir.File("tokenizer_config.json"), """{"bos_token": "<s>"}""");
        var error = Assert.Throws<UserError>(() => TokenizerLoader.FromModelDirectory(dir.Path));
        Assert.Contains("tokenizer_config.json", error.Message);
        Assert.Contains("<s>", error.Message);
    }

    [Fact]
    public void InconsistentVocabulary_IsRefused()
    {
        var lengths = new TokenizerVocabulary("llama", ["<unk>", "<s>"], [0], [2, 3], [], 1, null, 0, null, true, "default");
        Assert.Contains("scores", Assert.Throws<UserError>(() => TokenizerLoader.FromVocabulary(lengths)).Message);
        var bos = new TokenizerVocabulary("llama", ["<unk>", "<s>"], [0, 0], [2, 3], [], 7, null, 0, null, true, "default");
        Assert.Contains("BOS id 7", Assert.Throws<UserError>(() => TokenizerLoader.FromVocabulary(bos)).Message);
    }

    [Fact]
    public void UnknownVocabularyModel_IsRefused()
    {
        var v = new TokenizerVocabulary("bert", ["a"], [0], [1], [], null, null, null, null, false, null);
        Assert.Contains("bert", Assert.Throws<UserError>(() => TokenizerLoader.FromVocabulary(v)).Message);
    }
}
