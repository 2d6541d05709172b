using System.Text.Json.Nodes;
using System.Text.Json;
using System.Text.RegularExpressions;
using TruthProbe.Common;

namespace TruthProbe.Lab;

/// <summary>
/// The lab world's word-level tokenizer: ids 0-2 are &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, then one id per word. Text is split
/// exactly as the Hugging Face <c>Whitespace</c> pre-tokenizer does (<c>\w+|[^\w\s]+</c>), and the file it
/// writes is a standard <c>tokenizer.json</c> (WordLevel model, BOS added by the post-processor), so any
/// HF-compatible loader reproduces these ids.
/// </summary>
public sealed partial class WordTokenizer
{
    public const int UnknownId = 0, BosId = 1, EosId = 2;
    private static readonly string[] Specials = ["<unk>", "<s>", "</s>"];

    private readonly string[] _words;
    private readonly Dictionary<string, int> _ids;

    public WordTokenizer(IEnumerable<string> words)
    {
        _words = [.. Specials, .. words.Distinct()];
        _ids = _words.Select((w, i) => (w, i)).ToDictionary(x => x.w, x => x.i, StringComparer.Ordinal);
    }

    public static WordTokenizer ForWorld() => new(SyntheticWorld.Words());

    public int VocabSize => _words.Length;
    public string Word(int id) => _words[id];

    [GeneratedRegex(@"\w+|[^\w\s]+")]
    private static partial Regex PreTokenizer();

    /// <summary>The words of <paramref name="text"/> as the pre-tokenizer splits them.</summary>
    public static IEnumerable<string> Split(string text) => PreTokenizer().Matches(text).Select(m => m.Value);

    /// <summary>Ids of the text with BOS first; a word outside the world's vocabulary is an error, not &lt;unk&gt;, so renderers cannot drift silently.</summary>
    public int[] Encode(string text)
    {
        var ids = new List<int> { BosId };
        foreach (Match m in PreTokenizer().Matches(text))
            ids.Add(_ids.TryGetValue(m.Value, out int id) ? id : throw new ArgumentException($"word '{m.Value}' is not in the lab vocabulary"));
        return [.. ids];
    }

    public int Id(string word) => _ids.TryGetValue(word, out int id) ? id : throw new ArgumentException($"word '{word}' is not in the lab vocabulary");

    public void Save(string directory)
    {
        var vocab = new JsonObject();
        for (int i = 0; i < _words.Length; i++) vocab[_words[i]] = i;
        var addedTokens = new JsonArray();
        for (int i = 0; i < Specials.Length; i++)
            addedTokens.Add(new JsonObject
            {
                ["id"] = i, ["content"] = Specials[i], ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = true,
            });
        var tokenizer = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = addedTokens,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "Whitespace" },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(
                    new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                ["pair"] = new JsonArray(
                    new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "B", ["type_id"] = 1 } }),
                ["special_tokens"] = new JsonObject
                {
                    ["<s>"] = new JsonObject { ["id"] = "<s>", ["ids"] = new JsonArray(BosId), ["tokens"] = new JsonArray("<s>") },
                },
            },
            ["decoder"] = new JsonObject { ["type"] = "WordPiece", ["prefix"] = "##", ["cleanup"] = true },
            ["model"] = new JsonObject { ["type"] = "WordLevel", ["vocab"] = vocab, ["unk_token"] = "<unk>" },
        };
        var options = new JsonSerializerOptions { WriteIndented = true };
        AtomicFile.WriteAllText(Path.Combine(directory, "tokenizer.json"), tokenizer.ToJsonString(options));
        var config = new JsonObject
        {
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
            ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["unk_token"] = "<unk>",
            ["add_bos_token"] = true, ["add_eos_token"] = false,
            ["model_max_length"] = 128,
        };
        AtomicFile.WriteAllText(Path.Combine(directory, "tokenizer_config.json"), config.ToJsonString(options));
    }

    /// <summary>Reads back a tokenizer.json written by <see cref="Save"/> (WordLevel model only).</summary>
    public static WordTokenizer Load(string directory)
    {
        string path = Path.Combine(directory, "tokenizer.json");
        if (!File.Exists(path)) throw new UserError($"{path}: not found (a lab model folder has a tokenizer.json)");
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new UserError($"{path}: not valid JSON ({e.Message})"); }
        var model = root?["model"];
        if (model?["type"]?.GetValue<string>() != "WordLevel" || model["vocab"] is not JsonObject vocab)
            throw new UserError($"{path}: expected a WordLevel model with a vocab (written by 'truthprobe lab pretrain')");
        var ordered = vocab.Select(kv => (kv.Key, Id: kv.Value!.GetValue<int>())).OrderBy(x => x.Id).ToList();
        if (ordered.Select(x => x.Id).Where((id, i) => id != i).Any() || ordered.Count < 3 || ordered[0].Key != "<unk>" || ordered[1].Key != "<s>" || ordered[2].Key != "</s>")
            throw new UserError($"{path}: vocab ids must run 0..n-1 starting with <unk>, <s>, </s>");
        return new WordTokenizer(ordered.Skip(3).Select(x => x.Key));
    }
}
