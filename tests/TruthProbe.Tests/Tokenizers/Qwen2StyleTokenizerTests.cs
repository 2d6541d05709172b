using System.Text.Json.Nodes;
using TruthProbe.Tests.Common;
using TruthProbe.Tokenizers;

namespace TruthProbe.Tests.Tokenizers;

/// <summary>
/// The Qwen2 tokenizer.json layout (NFC normaliser, Split on Qwen2's regex, ByteLevel without its own regex, chat
/// special tokens) over GPT-2's real vocabulary: hand-derived pre-splits, and Hugging Face tokenizers on mixed text.
/// </summary>
public class Qwen2StyleTokenizerTests
{
    private const int ImStart = 50257, ImEnd = 50258;

    private static readonly Lazy<string> Json = new(() =>
    {
        var json = JsonNode.Parse(Gpt2Reference.TokenizerJson)!.AsObject();
        json["normalizer"] = new JsonObject { ["type"] = "NFC" };
        json["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
                new JsonObject
                {
                    ["type"] = "Split",
                    ["pattern"] = new JsonObject { ["Regex"] = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+" },
                    ["behavior"] = "Isolated",
                    ["invert"] = false,
                },
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false }),
        };
        var added = json["added_tokens"]!.AsArray();
        added.Add(HfJsonBuilder.Added(ImStart, "<|im_start|>"));
        added.Add(HfJsonBuilder.Added(ImEnd, "<|im_end|>"));
        return json.ToJsonString();
    });

    private static string WriteJson(TempDir dir)
    {
        string path = dir.File("tokenizer.json");
        File.WriteAllText(path, Json.Value);
        return path;
    }

    private static readonly Lazy<ITokenizer> Ours = new(() =>
    {
        using var dir = new TempDir();
        return TokenizerLoader.FromFile(WriteJson(dir));
    });

    /// <summary>Id of a single vocabulary token written in plain text (mapped to GPT-2's byte alphabet: ' ' = 'Ġ', '\n' = 'Ċ').</summary>
    private static int Id(string plain)
    {
        string piece = plain.Replace(' ', '\u0120').Replace('\n', '\u010a');
        int id = Array.IndexOf(Ours.Value.Vocabulary.Tokens, piece);
        Assert.True(id >= 0, $"'{piece}' is a GPT-2 token");
        return id;
    }

    [Fact]
    public void Qwen2Regex_SplitsDigitsOneByOne()
    {
        // \p{N} alone: "12345" is five words, each one byte token. (GPT-2's " ?\p{N}+" would keep them together.)
        Assert.Equal(["1", "2", "3", "4", "5"], "12345".Select(c => c.ToString()).ToArray());
        Assert.Equal("12345".Select(c => Id(c.ToString())), Ours.Value.Encode("12345"));
        Assert.Equal([Id("x"), Id("1"), Id("2")], Ours.Value.Encode("x12"));
    }

    [Fact]
    public void Qwen2Regex_WhitespaceRunBeforeWord_LeavesOneSpaceForTheWord()
    {
        // "a   b": \s+(?!\S) takes two spaces (not the third, which is followed by 'b'); then "[^\r\n\p{L}\p{N}]?\p{L}+"
        // takes " b". Words: "a", "  ", " b"; GPT-2 has no multi-space token, so "  " is two " " tokens.
        Assert.Equal([Id("a"), Id(" "), Id(" "), Id(" b")], Ours.Value.Encode("a   b"));
        // Trailing spaces: \s+(?!\S) matches all of them at the end.
        Assert.Equal([Id("a"), Id(" "), Id(" ")], Ours.Value.Encode("a  "));
        // Newlines: "\s*[\r\n]+" takes " \n\n" as one word, which BPE cuts into " " + "\n\n".
        Assert.Equal([Id("Hello"), Id(" "), Id("\n\n"), Id("world")], Ours.Value.Encode("Hello \n\nworld"));
    }

    [Fact]
    public void Qwen2Regex_ContractionsAreCaseInsensitive()
    {
        // Qwen2's "(?i:'s|...)" cuts "'Sam" into "'S" + "am"; GPT-2's case-sensitive list does not, so there "'" and
        // "Sam" are words. The two tokenizers share the vocabulary, so the difference is the pre-split alone.
        var qwen = Ours.Value;
        using var dir = new TempDir();
        var gpt2 = TokenizerLoader.FromFile(Gpt2Reference.WriteTokenizerJson(dir.Path));
        Assert.Equal([.. qwen.Encode("'S"), .. qwen.Encode("am")], qwen.Encode("'Sam"));
        Assert.Equal([Id("'"), Id("Sam")], gpt2.Encode("'Sam"));
        Assert.NotEqual(gpt2.Encode("'Sam"), qwen.Encode("'Sam"));
    }

    [Fact]
    public void Nfc_ComposesBeforeTokenising()
    {
        Assert.Equal(Ours.Value.Encode("caf\u00e9"), Ours.Value.Encode("cafe\u0301"));
    }

    [Fact]
    public void ChatSpecialTokens_AreCutOutBeforeBpe()
    {
        int[] ids = Ours.Value.Encode("<|im_start|>user\nhi<|im_end|>");
        Assert.Equal([ImStart, Id("user"), Id("\n"), Id("hi"), ImEnd], ids);
        Assert.Equal("user\nhi", Ours.Value.Decode(ids)); // special tokens skipped, as HF's decode does by default
        Assert.Equal("qwen2", Ours.Value.Vocabulary.PreTokenizer);
    }

    [Fact]
    public void NfcOfRandomCombiningSequences_MatchesHuggingFaceTokenizers()
    {
        // Seeded random letters followed by 0-3 combining marks of mixed classes, precomposed Latin/Greek/Vietnamese
        // letters, and Hangul jamo runs: any NFC difference changes the bytes BPE sees, hence the ids.
        var random = new Random(5);
        int[] marks = [0x300, 0x301, 0x302, 0x303, 0x304, 0x306, 0x307, 0x308, 0x30A, 0x30B, 0x30C, 0x31B, 0x323, 0x324, 0x325,
                       0x327, 0x328, 0x32D, 0x330, 0x331, 0x338, 0x342, 0x345, 0x5B0, 0x5B4, 0x5BC, 0x5C1, 0x93C, 0x3099, 0x309A];
        string bases = "aeiouyAEIOUYcCnNsSzZgGkKrRwWxXαεηιουωΑאשकかハ";
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < 4000; i++)
        {
            int kind = random.Next(4);
            if (kind <= 1)
            {
                sb.Append(bases[random.Next(bases.Length)]);
                for (int m = random.Next(4); m > 0; m--) sb.Append((char)marks[random.Next(marks.Length)]);
            }
            else if (kind == 2) sb.Append((char)random.Next(0xC0, 0x250)).Append((char)random.Next(0x1E00, 0x1F00));
            else
            {
                sb.Append((char)(0x1100 + random.Next(19))).Append((char)(0x1161 + random.Next(21)));
                if (random.Next(2) == 0) sb.Append((char)(0x11A8 + random.Next(27)));
            }
            if (random.Next(5) == 0) sb.Append(' ');
        }
        string text = sb.ToString();
        using var dir = new TempDir();
        using var hf = new global::Tokenizers.DotNet.Tokenizer(WriteJson(dir));
        var expected = hf.Encode(text).Select(id => (int)id).ToArray();
        int[] actual = Ours.Value.Encode(text);
        int i2 = 0;
        while (i2 < expected.Length && i2 < actual.Length && expected[i2] == actual[i2]) i2++;
        Assert.True(expected.SequenceEqual(actual), $"first difference at {i2}: HF {string.Join(' ', expected.Skip(i2).Take(6))} vs ours {string.Join(' ', actual.Skip(i2).Take(6))}");
    }

    [Fact]
    public void MixedScriptText_MatchesHuggingFaceTokenizers()
    {
        using var dir = new TempDir();
        using var hf = new global::Tokenizers.DotNet.Tokenizer(WriteJson(dir));
        string text = "<|im_start|>system\n" + MixedText.Generate(100_000, seed: 4) + "<|im_end|>\n<|im_start|>cafe\u0301 \u1100\u1161<|endoftext|>";
        var expected = hf.Encode(text).Select(id => (int)id).ToArray();
        int[] actual = Ours.Value.Encode(text);
        int i = 0;
        while (i < expected.Length && i < actual.Length && expected[i] == actual[i]) i++;
        Assert.True(expected.SequenceEqual(actual), $"first difference at {i}: HF {string.Join(' ', expected.Skip(i).Take(6))} vs ours {string.Join(' ', actual.Skip(i).Take(6))}");
    }
}
