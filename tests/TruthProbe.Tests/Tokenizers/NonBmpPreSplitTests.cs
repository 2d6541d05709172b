using System.Text.Json.Nodes;
using TruthProbe.Tests.Common;
using TruthProbe.Tokenizers;

namespace TruthProbe.Tests.Tokenizers;

/// <summary>
/// Letters and digits outside the BMP (𝐀 U+1D400, 𝟘 U+1D7D8) are \p{L}/\p{N} for Hugging Face's regex engine but
/// surrogate pairs to .NET's Regex. A tiny byte-level vocabulary whose merges cross such boundaries makes any
/// difference in the pre-split visible in the ids; Hugging Face tokenizers is the reference.
/// </summary>
public class NonBmpPreSplitTests
{
    private static string ByteChar(int b)
    {
        static bool Printable(int x) => x is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
        int shifted = Enumerable.Range(0, b).Count(x => !Printable(x));
        return ((char)(Printable(b) ? b : 256 + shifted)).ToString();
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("qwen2")]
    [InlineData("llama-bpe")]
    public void NonBmpLettersAndDigits_SplitAsHuggingFaceDoes(string pattern)
    {
        var vocab = new JsonObject();
        for (int b = 0; b < 256; b++) vocab[ByteChar(b)] = b;
        // x + first byte of 𝐀 (F0); last byte of 𝐀 (80) + y; last byte of 𝟘 (98) + '!'; two digits' boundary bytes.
        (string Left, string Right)[] merges = [("x", ByteChar(0xF0)), (ByteChar(0x80), "y"), (ByteChar(0x98), "!"), (ByteChar(0x98), ByteChar(0xF0)), (ByteChar(0x80), ByteChar(0xF0))];
        int next = 256;
        foreach (var (l, r) in merges) vocab[l + r] = next++;
        var json = new JsonObject
        {
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = ByteLevelBpeTokenizer.KnownPatterns[pattern] }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false }),
            },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray(merges.Select(m => (JsonNode)(m.Left + " " + m.Right)).ToArray()) },
        };
        using var dir = new TempDir();
        string path = dir.File("tokenizer.json");
        File.WriteAllText(path, json.ToJsonString());
        using var hf = new global::Tokenizers.DotNet.Tokenizer(path);
        var ours = TokenizerLoader.FromFile(path);
        string[] texts = ["x\U0001D400y", "\U0001D7D8!", "x\U0001D7D8", "\U0001D7D8\U0001D7D8\U0001D7D8\U0001D7D8", "\U0001D400\U0001D400 \U0001D400y", "'s\U0001D400y", " \U0001D400", "a \U0001D7D8 \U0001D400", "\u00a0\U0001D400y"];
        var mismatches = texts.Select(t => (t, expected: hf.Encode(t).Select(id => (int)id).ToArray(), actual: ours.Encode(t)))
            .Where(r => !r.expected.SequenceEqual(r.actual))
            .Select(r => $"{r.t}: HF {string.Join(' ', r.expected)} vs ours {string.Join(' ', r.actual)}").ToList();
        Assert.True(mismatches.Count == 0, string.Join('\n', mismatches));
    }
}
