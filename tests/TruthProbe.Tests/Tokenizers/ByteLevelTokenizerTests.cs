using Microsoft.ML.Tokenizers;
using TruthProbe.Tests.Common;
using TruthProbe.Tokenizers;

namespace TruthProbe.Tests.Tokenizers;

/// <summary>Byte-level BPE against GPT-2's real vocabulary and two independent implementations:
/// Microsoft.ML.Tokenizers' tiktoken GPT-2 and Hugging Face tokenizers itself (through Tokenizers.DotNet).</summary>
public class ByteLevelTokenizerTests
{
    private static readonly Lazy<ITokenizer> Ours = new(() =>
    {
        using var dir = new TempDir();
        return TokenizerLoader.FromFile(Gpt2Reference.WriteTokenizerJson(dir.Path));
    });

    private static string Describe(ITokenizer ours, IReadOnlyList<int> expected, int[] actual)
    {
        int i = 0;
        while (i < expected.Count && i < actual.Length && expected[i] == actual[i]) i++;
        string Around(IEnumerable<int> ids) => string.Join(' ', ids.Skip(Math.Max(0, i - 3)).Take(8).Select(id => $"{id}:'{ours.TokenText(id)}'"));
        return $"first difference at token {i} of {expected.Count}/{actual.Length}: expected {Around(expected)}; ours {Around(actual)}";
    }

    [Fact]
    public void Gpt2_MixedScriptText_MatchesMicrosoftMlTiktokenGpt2()
    {
        var ours = Ours.Value;
        var reference = TiktokenTokenizer.CreateForModel("gpt2");
        string text = MixedText.Generate(200_000, seed: 1);
        var expected = reference.EncodeToIds(text);
        int[] actual = ours.Encode(text);
        Assert.True(expected.SequenceEqual(actual), Describe(ours, expected, actual));
        Assert.Equal(text, ours.Decode(actual));
    }

    [Fact]
    public void Gpt2_MixedScriptText_MatchesHuggingFaceTokenizers()
    {
        var ours = Ours.Value;
        using var dir = new TempDir();
        using var hf = new global::Tokenizers.DotNet.Tokenizer(Gpt2Reference.WriteTokenizerJson(dir.Path));
        string text = MixedText.Generate(100_000, seed: 2) + " <|endoftext|> after the end";
        var expected = hf.Encode(text).Select(id => (int)id).ToArray();
        int[] actual = ours.Encode(text);
        Assert.True(expected.SequenceEqual(actual), Describe(ours, expected, actual));
        Assert.Contains(Gpt2Reference.EndOfText, actual);
    }

    [Fact]
    public void CustomSplitRegex_RunsThroughRegex_AndMatchesHuggingFace()
    {
        // A Split pattern we have no scanner for goes through .NET Regex (exact on BMP text).
        var json = System.Text.Json.Nodes.JsonNode.Parse(Gpt2Reference.TokenizerJson)!.AsObject();
        json["pre_tokenizer"] = System.Text.Json.Nodes.JsonNode.Parse("""
            {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": "\\p{L}+|\\p{N}{1,2}|\\s+|[^\\s\\p{L}\\p{N}]+"}, "behavior": "Isolated", "invert": false},
              {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}
            """);
        using var dir = new TempDir();
        string path = dir.File("tokenizer.json");
        File.WriteAllText(path, json.ToJsonString());
        var ours = TokenizerLoader.FromFile(path);
        Assert.Equal("custom", ours.Vocabulary.PreTokenizer);
        using var hf = new global::Tokenizers.DotNet.Tokenizer(path);
        string text = new(MixedText.Generate(30_000, seed: 7).Where(c => !char.IsSurrogate(c)).ToArray());
        var expected = hf.Encode(text).Select(id => (int)id).ToArray();
        int[] actual = ours.Encode(text);
        Assert.True(expected.SequenceEqual(actual), Describe(ours, expected, actual));
    }

    [Fact]
    public void AddPrefixSpace_MatchesHuggingFace()
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(Gpt2Reference.TokenizerJson)!.AsObject();
        json["pre_tokenizer"]!["add_prefix_space"] = true;
        using var dir = new TempDir();
        string path = dir.File("tokenizer.json");
        File.WriteAllText(path, json.ToJsonString());
        var ours = TokenizerLoader.FromFile(path);
        using var hf = new global::Tokenizers.DotNet.Tokenizer(path);
        foreach (string text in (string[])["Hello world", " already spaced", "\ttab first", "x<|endoftext|>y", "<|endoftext|> z", ""])
            Assert.True(hf.Encode(text).Select(id => (int)id).SequenceEqual(ours.Encode(text)),
                $"\"{text}\": HF {string.Join(' ', hf.Encode(text))} vs ours {string.Join(' ', ours.Encode(text))}");
    }

    [Fact]
    public void Gpt2_Vocabulary_DescribesGgufGpt2Model()
    {
        var ours = Ours.Value;
        Assert.Equal("byte-level-bpe", ours.Kind);
        Assert.Equal(50257, ours.VocabSize);
        Assert.Equal("gpt2", ours.Vocabulary.Model);
        Assert.Equal("gpt2", ours.Vocabulary.PreTokenizer);
        Assert.Equal(50000, ours.Vocabulary.Merges.Length);
        Assert.Equal(TokenType.Control, ours.Vocabulary.TokenTypes[Gpt2Reference.EndOfText]);
        Assert.False(ours.AddsBos);
    }
}
