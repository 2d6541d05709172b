using System.Text.Json.Nodes;
using System.Text.Json;
using TruthProbe.Tokenizers;

namespace TruthProbe.Tests.Tokenizers;

/// <summary>Writes Hugging Face tokenizer.json files from test code, the way transformers' converters lay them out.</summary>
internal static class HfJsonBuilder
{
    /// <summary>transformers' LlamaConverter / SentencePieceExtractor: merges are every split of a piece into two pieces,
    /// ordered by the merged piece's score (descending, stable), ties inside one piece by the parts' ids.</summary>
    public static List<(string Left, string Right)> MergesFromScores(string[] pieces, float[] scores)
    {
        var id = new Dictionary<string, int>();
        for (int i = 0; i < pieces.Length; i++) id.TryAdd(pieces[i], i);
        var merges = new List<(string Left, string Right, float Score)>();
        for (int p = 0; p < pieces.Length; p++)
        {
            string piece = pieces[p];
            var local = new List<(string, string, float)>();
            for (int cut = 1; cut < piece.Length; cut++)
            {
                string l = piece[..cut], r = piece[cut..];
                if (id.ContainsKey(l) && id.ContainsKey(r)) local.Add((l, r, scores[p]));
            }
            merges.AddRange(local.OrderBy(m => id[m.Item1]).ThenBy(m => id[m.Item2]));
        }
        return merges.OrderByDescending(m => m.Score).Select(m => (m.Left, m.Right)).ToList();
    }

    public static JsonObject Added(int id, string content, bool special = true, bool lstrip = false, bool rstrip = false, bool normalized = false, bool singleWord = false) => new()
    {
        ["id"] = id, ["content"] = content, ["single_word"] = singleWord, ["lstrip"] = lstrip, ["rstrip"] = rstrip,
        ["normalized"] = normalized, ["special"] = special,
    };

    /// <summary>A Llama-2 style tokenizer.json over a SentencePiece vocabulary: BPE with byte_fallback and fuse_unk,
    /// &lt;s&gt; prepended by TemplateProcessing, and either the legacy normaliser (Prepend+Replace) or Metaspace.</summary>
    public static JsonObject LlamaStyle(TokenizerVocabulary v, bool metaspace, string prependScheme = "first", JsonArray? extraAdded = null, bool split = false)
    {
        var vocab = new JsonObject();
        for (int i = 0; i < v.Tokens.Length; i++) vocab[v.Tokens[i]] = i;
        var merges = new JsonArray(MergesFromScores(v.Tokens, v.Scores).Select(m => (JsonNode)new JsonArray(m.Left, m.Right)).ToArray());
        var added = new JsonArray(Added(0, "<unk>"), Added(1, "<s>"), Added(2, "</s>"));
        foreach (var a in extraAdded ?? []) added.Add(a!.DeepClone());
        JsonNode? normalizer = metaspace ? null : new JsonObject
        {
            ["type"] = "Sequence",
            ["normalizers"] = new JsonArray(
                new JsonObject { ["type"] = "Prepend", ["prepend"] = "\u2581" },
                new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "\u2581" }),
        };
        JsonNode? preTokenizer = metaspace
            ? new JsonObject { ["type"] = "Metaspace", ["replacement"] = "\u2581", ["prepend_scheme"] = prependScheme, ["split"] = split }
            : null;
        JsonNode decoder = metaspace
            ? new JsonObject { ["type"] = "Metaspace", ["replacement"] = "\u2581", ["prepend_scheme"] = prependScheme, ["split"] = false }
            : new JsonObject
            {
                ["type"] = "Sequence",
                ["decoders"] = new JsonArray(
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "\u2581" }, ["content"] = " " },
                    new JsonObject { ["type"] = "ByteFallback" },
                    new JsonObject { ["type"] = "Fuse" },
                    new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 }),
            };
        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = normalizer,
            ["pre_tokenizer"] = preTokenizer,
            ["post_processor"] = BosTemplate("<s>", 1),
            ["decoder"] = decoder,
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = "<unk>", ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = true, ["byte_fallback"] = true, ["ignore_merges"] = false,
                ["vocab"] = vocab, ["merges"] = merges,
            },
        };
    }

    public static JsonObject BosTemplate(string bos, int bosId) => new()
    {
        ["type"] = "TemplateProcessing",
        ["single"] = new JsonArray(
            new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = bos, ["type_id"] = 0 } },
            new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
        ["pair"] = new JsonArray(
            new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = bos, ["type_id"] = 0 } },
            new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } },
            new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = bos, ["type_id"] = 1 } },
            new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "B", ["type_id"] = 1 } }),
        ["special_tokens"] = new JsonObject
        {
            [bos] = new JsonObject { ["id"] = bos, ["ids"] = new JsonArray(bosId), ["tokens"] = new JsonArray(bos) },
        },
    };

    public static string Write(string dir, JsonObject json, string name = "tokenizer.json")
    {
        string path = Path.Combine(dir, name);
        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
        return path;
    }
}
