using TruthProbe.Tests.Common;
using TruthProbe.Tokenizers;

namespace TruthProbe.Tests.Tokenizers;

/// <summary>Loaders for the BabyLlama vocabularies, folder discovery, and rebuilding tokenizers from their vocabulary (GGUF path).</summary>
public class TokenizerLoaderTests
{
    // Published greedy outputs of BabyLlama tok105 and tok361 from BOS (docs/design.md §8).
    private static readonly int[] Tok105PublishedIds =
        [3, 34, 9, 22, 4, 3, 18, 20, 7, 9, 3, 5, 3, 6, 10, 16, 4, 25, 3, 6, 8, 4, 13, 4, 3, 17, 5, 12, 3, 5, 3, 14, 10, 6, 6, 14, 4, 3, 21, 10];
    private static readonly int[] Tok361PublishedIds =
        [259, 290, 265, 278, 260, 259, 274, 276, 263, 265, 259, 261, 259, 262, 266, 272, 260, 281, 259, 262];

    [SkippableFact]
    public void Tok105_PublishedIds_DecodeToPublishedText_FromModelAndVocab()
    {
        var model = TokenizerLoader.FromFile(SharedData.Path("models", "babyllama-128d-tok105", "tok105.model"));
        var vocab = TokenizerLoader.FromFile(SharedData.Path("models", "babyllama-128d-tok105", "tok105.vocab"));
        Assert.Equal(model.Vocabulary.Tokens, vocab.Vocabulary.Tokens);
        Assert.Equal(model.Vocabulary.Scores, vocab.Vocabulary.Scores);
        Assert.Equal(model.Vocabulary.TokenTypes, vocab.Vocabulary.TokenTypes);
        const string published = "Once upon a time, there was a little gi";
        Assert.Equal(published, model.Decode(Tok105PublishedIds));
        Assert.Equal(published, vocab.Decode(Tok105PublishedIds));
        Assert.Equal([1, .. Tok105PublishedIds], model.Encode(published));
        Assert.Equal(model.Encode(published + "rl named Lily."), vocab.Encode(published + "rl named Lily."));
    }

    [SkippableFact]
    public void Tok361Reconstructed_PublishedIds_DecodeAsTheirTok105Counterparts()
    {
        // The reconstructed vocabulary puts 256 byte pieces before tok105's characters: id + 256 is the same character.
        var tok361 = TokenizerLoader.FromFile(SharedData.Path("models", "babyllama-128d-tok361", "tok361_reconstructed.vocab"));
        var tok105 = TokenizerLoader.FromFile(SharedData.Path("models", "babyllama-128d-tok105", "tok105.model"));
        Assert.Equal(361, tok361.VocabSize);
        Assert.Equal(tok105.Decode(Tok361PublishedIds.Select(id => id - 256).ToArray()), tok361.Decode(Tok361PublishedIds));
        Assert.Equal("Once upon a time, t", tok361.Decode(Tok361PublishedIds)); // README: 20 ids of " Once upon a time, there..."
        Assert.Equal([1, .. Tok361PublishedIds], tok361.Encode(tok361.Decode(Tok361PublishedIds)));
        // Byte fallback: a character outside the 102 becomes its UTF-8 bytes (<0xE6><0x97><0xA5> for U+65E5).
        Assert.Equal([259, 3 + 0xE6, 3 + 0x97, 3 + 0xA5], tok361.Encode("\u65e5", addSpecialTokens: false));
    }

    [SkippableFact]
    public void ModelDirectory_FindsTokenizerModelOrNothing()
    {
        using var dir = new TempDir();
        Assert.Null(TokenizerLoader.FromModelDirectory(dir.Path));
        File.Copy(SharedData.Path("models", "stories260K", "tok512.model"), dir.File("tokenizer.model"));
        var tokenizer = TokenizerLoader.FromModelDirectory(dir.Path);
        Assert.NotNull(tokenizer);
        Assert.Equal(512, tokenizer.VocabSize);
        Assert.Equal((1, 2, true), (tokenizer.BosId, tokenizer.EosId, tokenizer.AddsBos));
    }

    [SkippableFact]
    public void ModelDirectory_TokenizerModelTakesAddBosAndEosFromTokenizerConfig()
    {
        using var dir = new TempDir();
        File.Copy(SharedData.Path("models", "stories260K", "tok512.model"), dir.File("tokenizer.model"));
        File.WriteAllText(dir.File("tokenizer_config.json"),
            """{"add_bos_token": false, "add_eos_token": true, "bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": "</s>", "pad_token": null}""");
        var tokenizer = TokenizerLoader.FromModelDirectory(dir.Path)!;
        Assert.False(tokenizer.AddsBos);
        int[] body = tokenizer.Encode("Once upon a time", addSpecialTokens: false);
        Assert.Equal([.. body, 2], tokenizer.Encode("Once upon a time"));
        Assert.Equal(403, body[0]); // "▁Once", the first published stories260K token
    }

    public static TheoryData<string> RoundTripSources => new() { "tok512.model", "tok512.bin", "tok105.model", "gpt2.json", "llama.json" };

    [SkippableTheory]
    [MemberData(nameof(RoundTripSources))]
    public void FromVocabulary_RebuildsTokenizerThatEncodesTheSame(string source)
    {
        using var dir = new TempDir();
        ITokenizer original = source switch
        {
            "tok512.model" or "tok512.bin" => TokenizerLoader.FromFile(SharedData.Path("models", "stories260K", source)),
            "tok105.model" => TokenizerLoader.FromFile(SharedData.Path("models", "babyllama-128d-tok105", source)),
            "gpt2.json" => TokenizerLoader.FromFile(Gpt2Reference.WriteTokenizerJson(dir.Path)),
            _ => TokenizerLoader.FromFile(HfJsonBuilder.Write(dir.Path, HfJsonBuilder.LlamaStyle(
                TokenizerLoader.FromFile(SharedData.Path("models", "stories260K", "tok512.model")).Vocabulary, metaspace: false))),
        };
        var rebuilt = TokenizerLoader.FromVocabulary(original.Vocabulary);
        Assert.Equal(original.Kind, rebuilt.Kind);
        Assert.Equal((original.BosId, original.EosId, original.AddsBos), (rebuilt.BosId, rebuilt.EosId, rebuilt.AddsBos));
        string text = MixedText.Generate(20_000, seed: 6) + " <s> </s> <|endoftext|>  end  ";
        Assert.Equal(original.Encode(text), rebuilt.Encode(text));
        int[] ids = original.Encode(text);
        Assert.Equal(original.Decode(ids), rebuilt.Decode(ids));
    }
}
