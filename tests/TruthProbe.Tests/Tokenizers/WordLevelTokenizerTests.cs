using TruthProbe.Lab;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Tokenizers;

namespace TruthProbe.Tests.Tokenizers;

/// <summary>WordLevel tokenizer.json files (the lab's models use one) against Hugging Face tokenizers itself.</summary>
public class WordLevelTokenizerTests
{
    private static readonly string[] Texts =
    [
        "Context:\nAlice visits Paris. Bob likes red.\n\nQuestion: What does Bob like?\nAnswer: Bob likes red",
        "  Alice   visits\tParis ...?! ",
        "Zanzibar visits Paris.",            // unknown word -> <unk>
        "<s> Alice </s> Bob",                 // special tokens written in the text
        "",
    ];

    [Fact]
    public void LabTokenizerJson_EncodesAndDecodesLikeHuggingFaceTokenizers()
    {
        using var tmp = new TempDir();
        WordTokenizer.ForWorld().Save(tmp.Path);
        string path = tmp.File("tokenizer.json");
        using var hf = new global::Tokenizers.DotNet.Tokenizer(path);
        var ours = TokenizerLoader.FromModelDirectory(tmp.Path)!;
        Assert.Equal("word-level", ours.Kind);
        foreach (string text in Texts)
        {
            int[] expected = hf.Encode(text).Select(id => (int)id).ToArray();
            Assert.Equal(expected, ours.Encode(text));
            Assert.Equal(hf.Decode(hf.Encode(text)), ours.Decode(expected));
        }
    }

    [Fact]
    public void WhitespaceSplitWithoutDecoder_MatchesHuggingFaceTokenizers()
    {
        using var tmp = new TempDir();
        string path = tmp.File("tokenizer.json");
        File.WriteAllText(path, """
            {"version":"1.0","added_tokens":[{"id":0,"content":"[UNK]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
             "normalizer":null,"pre_tokenizer":{"type":"WhitespaceSplit"},"post_processor":null,"decoder":null,
             "model":{"type":"WordLevel","vocab":{"[UNK]":0,"red.":1,"Bob":2,"likes":3,"red":4},"unk_token":"[UNK]"}}
            """);
        using var hf = new global::Tokenizers.DotNet.Tokenizer(path);
        var ours = TokenizerLoader.FromFile(path);
        foreach (string text in (string[])["Bob likes red.", "Bob  likes red", "Bob likes blue."])
        {
            int[] expected = hf.Encode(text).Select(id => (int)id).ToArray();
            Assert.Equal(expected, ours.Encode(text));
            Assert.Equal(hf.Decode(hf.Encode(text)), ours.Decode(expected));
        }
    }

    [Fact]
    public void LabCheckpointFolder_LoadsWithItsTokenizer_ThroughTheEngine()
    {
        using var tmp = new TempDir();
        WordTokenizer.ForWorld().Save(tmp.Path);
        var config = new ModelConfig { Architecture = "llama", Layers = 1, DModel = 16, Heads = 2, KvHeads = 1, HeadDim = 8, Ffn = 32,
            Vocab = WordTokenizer.ForWorld().VocabSize, MaxContext = 64, RopeTheta = 10000, RmsEps = 1e-5f, TiedEmbeddings = true };
        RandomModel.WriteHf(tmp.Path, config, seed: 1, WeightDType.F32);
        using var model = Transformer.Load(tmp.Path);
        Assert.Equal("word-level", model.Tokenizer!.Kind);
        Assert.Equal(WordTokenizer.ForWorld().Encode("Alice visits Paris ."), model.Encode("Alice visits Paris."));
    }
}
