using System.Text.Json;
using TruthProbe.Common;

namespace TruthProbe.Tokenizers;

/// <summary>
/// Hugging Face <c>tokenizer.json</c> with a BPE model, read into one of our two tokenizers: SentencePiece-style
/// (normaliser Prepend("▁")+Replace(" ","▁") or a Metaspace pre-tokenizer; byte_fallback) or byte-level
/// (ByteLevel pre-tokenizer, optionally after a regex Split and an NFC normaliser). BOS/EOS and whether they are
/// added come from <c>tokenizer_config.json</c> / <c>special_tokens_map.json</c> beside it, else from the
/// TemplateProcessing post-processor.
/// </summary>
internal static class HfTokenizerJson
{
    /// <summary>Unused ids tolerated below the largest one whatever the vocabulary's size (padded vocabularies).</summary>
    private const int MaxUnusedIds = 1 << 16;

    private sealed record Added(string Content, int Id, bool Special, bool LStrip, bool RStrip, bool SingleWord, bool Normalized);

    public static ITokenizer Load(string path)
    {
        using var doc = TokenizerFiles.ReadJson(path);
        var root = doc.RootElement;
        var model = Child(root, "model") ?? throw new UserError($"{path}: no \"model\"; expected a Hugging Face tokenizer.json");
        string type = Str(model, "type", path) ?? "BPE";
        if (type is not ("BPE" or "WordLevel")) throw new UserError($"{path}: model.type '{type}' is not supported; expected \"BPE\" or \"WordLevel\"");
        if (Str(model, "continuing_subword_prefix", path) is { Length: > 0 } || Str(model, "end_of_word_suffix", path) is { Length: > 0 })
            throw new UserError($"{path}: BPE with continuing_subword_prefix/end_of_word_suffix is not supported");
        if (Typed(model, "dropout", JsonValueKind.Number, path) is { } dropout && dropout.GetDouble() > 0)
            throw new UserError($"{path}: BPE dropout is not supported (tokenisation would be random)");

        // Vocabulary: model.vocab plus added_tokens (which may extend it).
        var vocabJson = Child(model, "vocab") is { ValueKind: JsonValueKind.Object } v ? v
            : throw new UserError($"{path}: model.vocab is missing or not an object of token -> id");
        var byId = new Dictionary<int, string>();
        foreach (var entry in vocabJson.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
                throw new UserError($"{path}: model.vocab[\"{entry.Name}\"] is not a non-negative integer id");
            byId[id] = entry.Name;
        }
        var added = new List<Added>();
        if (Typed(root, "added_tokens", JsonValueKind.Array, path) is { } addedJson)
        {
            int i = 0;
            foreach (var t in addedJson.EnumerateArray())
            {
                string where = $"added_tokens[{i++}]";
                string content = Str(t, "content", path) ?? throw new UserError($"{path}: {where} has no \"content\"");
                int id = Child(t, "id") is { ValueKind: JsonValueKind.Number } idJson && idJson.TryGetInt32(out int n) && n >= 0 ? n
                    : throw new UserError($"{path}: {where} has no non-negative integer \"id\"");
                added.Add(new Added(content, id, Bool(t, "special", false, path), Bool(t, "lstrip", false, path),
                    Bool(t, "rstrip", false, path), Bool(t, "single_word", false, path), Bool(t, "normalized", true, path)));
                byId[id] = content;
            }
        }
        if (byId.Count == 0) throw new UserError($"{path}: model.vocab is empty");
        int size = byId.Keys.Max() + 1;
        // Ids index arrays sized by the largest one, so a few bytes of JSON could ask for gigabytes; real files number
        // their tokens densely (a few unused ids at most), so more gaps than entries is a corrupt id, not a vocabulary.
        if (size - byId.Count > Math.Max(byId.Count, MaxUnusedIds))
            throw new UserError($"{path}: token id {size - 1} is far past the {byId.Count} tokens given (more than {Math.Max(byId.Count, MaxUnusedIds)} unused ids); expected ids numbered from 0 without large gaps");
        var tokens = new string[size];
        for (int id = 0; id < size; id++) tokens[id] = byId.TryGetValue(id, out string? t) ? t : $"[PAD{id}]";
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < size; id++) ids.TryAdd(tokens[id], id);
        int? IdOf(string? token) => token != null && ids.TryGetValue(token, out int id) ? id : null;

        if (type == "WordLevel") return WordLevel(root, model, path, tokens, byId, added, IdOf);

        string[] merges = ReadMerges(model, path);
        string? unkToken = Str(model, "unk_token", path);
        bool byteFallback = Bool(model, "byte_fallback", false, path);
        bool fuseUnk = Bool(model, "fuse_unk", false, path);
        bool ignoreMerges = Bool(model, "ignore_merges", false, path);

        var (addBos, addEos, bosId, eosId, padId) = SpecialTokens(root, path, IdOf);
        var pre = PreTokenizer.Read(root, path);
        bool byteLevel = pre.ByteLevel;

        var types = new int[size];
        var scores = new float[size];
        for (int id = 0; id < size; id++)
            types[id] = !byId.ContainsKey(id) ? TokenType.Unused
                : tokens[id] == unkToken ? TokenType.Unknown
                : !byteLevel && byteFallback && SentencePieceBpeTokenizer.TryParseBytePiece(tokens[id], out _) ? TokenType.Byte
                : TokenType.Normal;
        foreach (var a in added) types[a.Id] = a.Special ? TokenType.Control : TokenType.UserDefined;
        // Scores for consumers that merge by score (llama.cpp's SentencePiece path): earlier merges score higher.
        for (int rank = merges.Length - 1; rank >= 0; rank--)
            if (IdOf(merges[rank].Replace(" ", "")) is int merged) scores[merged] = -(rank + 1);

        // "normalized": true tokens are matched in the normaliser's output, by their own normalised text (HF builds
        // that trie from normalised contents: "<x>" is looked for as "▁<x>" under Prepend). Only the ▁ normaliser
        // changes anything here; under Metaspace (no normaliser) or NFC (ASCII token text) raw matching is the same.
        var splitter = added.Select(a => a.Normalized && pre.NormalizerRewritesSpaces
            ? new AddedTokenSplitter.AddedToken(pre.NormalizeLikeTheNormalizer(a.Content), a.Id, a.LStrip, a.RStrip, a.SingleWord, Normalized: true)
            : new AddedTokenSplitter.AddedToken(a.Content, a.Id, a.LStrip, a.RStrip, a.SingleWord));
        var unknownId = IdOf(unkToken);
        if (byteLevel)
        {
            var vocab = new TokenizerVocabulary("gpt2", tokens, scores, types, merges, bosId, eosId, unknownId, padId,
                addBos, pre.Name, addEos, AddSpacePrefix: pre.AddPrefixSpace, RemoveExtraWhitespaces: false);
            return new ByteLevelBpeTokenizer(vocab, pre.Pattern!, pre.Nfc, pre.AddPrefixSpace, ignoreMerges, splitter, path);
        }
        var spVocab = new TokenizerVocabulary("llama", tokens, scores, types, merges, bosId, eosId, unknownId, padId,
            addBos, "default", addEos, AddSpacePrefix: pre.Prefix != SentencePieceBpeTokenizer.DummyPrefix.None, RemoveExtraWhitespaces: false);
        var options = new SentencePieceBpeTokenizer.Options(pre.Prefix, RemoveExtraWhitespaces: false, pre.SplitAtMetaspace,
            MergeByRank: true, byteFallback, fuseUnk, ignoreMerges);
        return new SentencePieceBpeTokenizer(spVocab, options, splitter, path);
    }

    private static WordLevelTokenizer WordLevel(JsonElement root, JsonElement model, string path, string[] tokens,
        Dictionary<int, string> byId, List<Added> added, Func<string?, int?> idOf)
    {
        string? unkToken = Str(model, "unk_token", path);
        int? unknownId = idOf(unkToken);
        if (unkToken != null && unknownId == null) throw new UserError($"{path}: model.unk_token \"{unkToken}\" is not in the vocabulary");
        if (Child(root, "normalizer") != null) throw new UserError($"{path}: a normalizer with a WordLevel model is not supported");
        string preType = Child(root, "pre_tokenizer") is { } pre ? Str(pre, "type", path) ?? "" : "";
        bool splitPunctuation = preType switch
        {
            "Whitespace" => true,
            "WhitespaceSplit" => false,
            _ => throw new UserError($"{path}: WordLevel with pre_tokenizer '{preType}' is not supported; expected Whitespace or WhitespaceSplit"),
        };
        var decoder = Child(root, "decoder") is { } d
            ? Str(d, "type", path) == "WordPiece"
                ? new WordLevelTokenizer.DecoderSpec(true, Str(d, "prefix", path) ?? "##", Bool(d, "cleanup", true, path))
                : throw new UserError($"{path}: WordLevel with decoder '{Str(d, "type", path)}' is not supported; expected none or WordPiece")
            : new WordLevelTokenizer.DecoderSpec(false);
        var (addBos, addEos, bosId, eosId, padId) = SpecialTokens(root, path, idOf);
        var types = new int[tokens.Length];
        for (int id = 0; id < tokens.Length; id++)
            types[id] = !byId.ContainsKey(id) ? TokenType.Unused : id == unknownId ? TokenType.Unknown : TokenType.Normal;
        foreach (var a in added) types[a.Id] = a.Special ? TokenType.Control : TokenType.UserDefined;
        var vocabulary = new TokenizerVocabulary("word-level", tokens, new float[tokens.Length], types, [], bosId, eosId, unknownId, padId,
            addBos, splitPunctuation ? "whitespace" : "whitespace-split", addEos, AddSpacePrefix: false);
        return new WordLevelTokenizer(vocabulary, splitPunctuation, decoder,
            added.Select(a => new AddedTokenSplitter.AddedToken(a.Content, a.Id, a.LStrip, a.RStrip, a.SingleWord)), path);
    }

    private static string[] ReadMerges(JsonElement model, string path)
    {
        if (Typed(model, "merges", JsonValueKind.Array, path) is not { } mergesJson) return [];
        var merges = new List<string>();
        foreach (var m in mergesJson.EnumerateArray())
        {
            // Old files store "left right", newer ones ["left", "right"].
            if (m.ValueKind == JsonValueKind.String) merges.Add(m.GetString()!);
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2
                && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
                merges.Add(m[0].GetString() + " " + m[1].GetString());
            else throw new UserError($"{path}: model.merges[{merges.Count}] is neither \"left right\" nor [\"left\", \"right\"]");
        }
        return merges.ToArray();
    }

    /// <summary>What the normaliser and pre-tokenizer do, reduced to the cases our tokenizers implement.</summary>
    private sealed class PreTokenizer
    {
        public bool ByteLevel, Nfc, AddPrefixSpace, SplitAtMetaspace;
        private bool _normalizerPrepends, _normalizerReplaces;

        public bool NormalizerRewritesSpaces => _normalizerPrepends || _normalizerReplaces;

        /// <summary>The Prepend("▁")/Replace(" ", "▁") normaliser applied to a short text.</summary>
        public string NormalizeLikeTheNormalizer(string text) =>
            (_normalizerPrepends && text.Length > 0 ? "▁" : "") + (_normalizerReplaces ? text.Replace(' ', '▁') : text);
        public string? Pattern, Name;
        public SentencePieceBpeTokenizer.DummyPrefix Prefix = SentencePieceBpeTokenizer.DummyPrefix.None;
        private bool _replacesSpaces;

        public static PreTokenizer Read(JsonElement root, string path)
        {
            var pre = new PreTokenizer();
            foreach (var n in Flatten(Child(root, "normalizer"), "normalizers", path))
            {
                string type = Str(n, "type", path) ?? "";
                switch (type)
                {
                    case "NFC": pre.Nfc = true; break;
                    case "Prepend" when Str(n, "prepend", path) == "▁":
                        pre.Prefix = SentencePieceBpeTokenizer.DummyPrefix.Always;
                        pre._normalizerPrepends = true;
                        break;
                    case "Replace" when Child(n, "pattern") is { } p && Str(p, "String", path) == " " && Str(n, "content", path) == "▁":
                        pre._replacesSpaces = pre._normalizerReplaces = true;
                        break;
                    default: throw new UserError($"{path}: normalizer {Describe(n)} is not supported; expected NFC, Prepend(\"▁\") or Replace(\" \", \"▁\")");
                }
            }
            foreach (var p in Flatten(Child(root, "pre_tokenizer"), "pretokenizers", path))
            {
                string type = Str(p, "type", path) ?? "";
                switch (type)
                {
                    case "Split":
                        string behavior = Str(p, "behavior", path) ?? "";
                        if (behavior != "Isolated" || Bool(p, "invert", false, path) || Child(p, "pattern") is not { } pattern || Str(pattern, "Regex", path) is not string regex)
                            throw new UserError($"{path}: pre-tokenizer {Describe(p)} is not supported; expected Split with a Regex pattern, behavior Isolated, invert false");
                        pre.Pattern = regex;
                        break;
                    case "ByteLevel":
                        pre.ByteLevel = true;
                        pre.AddPrefixSpace = Bool(p, "add_prefix_space", false, path);
                        if (Bool(p, "use_regex", true, path))
                        {
                            if (pre.Pattern != null) throw new UserError($"{path}: pre-tokenizer has both a Split regex and ByteLevel use_regex; expected one");
                            pre.Pattern = ByteLevelBpeTokenizer.KnownPatterns["gpt2"];
                        }
                        break;
                    case "Metaspace":
                        if ((Str(p, "replacement", path) ?? "▁") != "▁") throw new UserError($"{path}: Metaspace replacement must be \"▁\"");
                        pre._replacesSpaces = true;
                        string scheme = Str(p, "prepend_scheme", path) ?? (Bool(p, "add_prefix_space", true, path) ? "always" : "never");
                        pre.Prefix = scheme switch
                        {
                            "always" => SentencePieceBpeTokenizer.DummyPrefix.UnlessSpace,
                            "first" => SentencePieceBpeTokenizer.DummyPrefix.FirstSegmentUnlessSpace,
                            "never" => SentencePieceBpeTokenizer.DummyPrefix.None,
                            _ => throw new UserError($"{path}: Metaspace prepend_scheme '{scheme}' is not one of always, first, never"),
                        };
                        pre.SplitAtMetaspace = Bool(p, "split", true, path);
                        break;
                    default:
                        throw new UserError($"{path}: pre-tokenizer {Describe(p)} is not supported; expected ByteLevel, Split(Regex) or Metaspace");
                }
            }
            if (pre.ByteLevel)
            {
                if (pre.Pattern == null) throw new UserError($"{path}: ByteLevel pre-tokenizer without a regex split is not supported");
                if (pre._replacesSpaces || pre.Prefix != SentencePieceBpeTokenizer.DummyPrefix.None)
                    throw new UserError($"{path}: mixes ByteLevel with ▁ (SentencePiece) rules; expected one or the other");
                pre.Name = ByteLevelBpeTokenizer.KnownPatterns.FirstOrDefault(kv => kv.Value == pre.Pattern).Key ?? "custom";
            }
            else
            {
                if (pre.Pattern != null || pre.Nfc) throw new UserError($"{path}: a regex Split or NFC without ByteLevel is not supported");
                if (!pre._replacesSpaces)
                    throw new UserError($"{path}: neither ByteLevel nor ▁ handling of spaces (Replace/Metaspace) found; this BPE tokenizer is not supported");
            }
            return pre;
        }

        private static IEnumerable<JsonElement> Flatten(JsonElement? element, string listName, string path)
        {
            if (element is not { ValueKind: JsonValueKind.Object } e) yield break;
            if (Str(e, "type", path) == "Sequence")
            {
                if (Child(e, listName) is not { ValueKind: JsonValueKind.Array } list)
                    throw new UserError($"{path}: Sequence without a \"{listName}\" array");
                foreach (var item in list.EnumerateArray())
                    foreach (var inner in Flatten(item, listName, path)) yield return inner;
            }
            else yield return e;
        }

        private static string Describe(JsonElement e) => e.GetRawText() is { Length: > 120 } s ? s[..120] + "..." : e.GetRawText();
    }

    /// <summary>BOS/EOS ids and whether they are added: tokenizer_config.json's add_bos_token/add_eos_token win (as
    /// transformers' Llama tokenizers rebuild their post-processor from them), else TemplateProcessing decides.</summary>
    private static (bool AddBos, bool AddEos, int? Bos, int? Eos, int? Pad) SpecialTokens(JsonElement root, string path, Func<string?, int?> idOf)
    {
        var config = TokenizerConfig.Read(Path.GetDirectoryName(Path.GetFullPath(path))!);
        int? bos = config?.IdOf(config.BosToken, "bos_token", t => idOf(t), path);
        int? eos = config?.IdOf(config.EosToken, "eos_token", t => idOf(t), path);
        int? pad = config?.IdOf(config.PadToken, "pad_token", t => idOf(t), path);

        // TemplateProcessing "single": [SpecialToken?, Sequence A, SpecialToken?].
        int? templateBos = null, templateEos = null;
        foreach (var post in Processors(Child(root, "post_processor"), path))
        {
            if (Str(post, "type", path) != "TemplateProcessing") continue;
            if (Typed(post, "single", JsonValueKind.Array, path) is not { } single) continue;
            bool seenSequence = false;
            foreach (var item in single.EnumerateArray())
            {
                if (Child(item, "Sequence") != null) { seenSequence = true; continue; }
                if (Child(item, "SpecialToken") is not { } special) continue;
                string name = Str(special, "id", path) ?? "";
                int id = TemplateTokenId(post, name, path) ?? idOf(name)
                    ?? throw new UserError($"{path}: post_processor special token \"{name}\" is not in the vocabulary");
                if (seenSequence) templateEos = id; else templateBos = id;
            }
        }
        bool addBos = config?.AddBos ?? templateBos != null;
        bool addEos = config?.AddEos ?? templateEos != null;
        return (addBos, addEos, bos ?? templateBos, eos ?? templateEos, pad);
    }

    private static int? TemplateTokenId(JsonElement post, string name, string path)
    {
        if (Typed(post, "special_tokens", JsonValueKind.Object, path) is { } specials
            && Child(specials, name) is { } entry && Typed(entry, "ids", JsonValueKind.Array, path) is { } ids)
        {
            if (ids.GetArrayLength() != 1 || ids[0].ValueKind != JsonValueKind.Number || !ids[0].TryGetInt32(out int id))
                throw new UserError($"{path}: post_processor special token \"{name}\" must map to exactly one id");
            return id;
        }
        return null;
    }

    private static IEnumerable<JsonElement> Processors(JsonElement? post, string path)
    {
        if (post is not { ValueKind: JsonValueKind.Object } p) yield break;
        if (Str(p, "type", path) == "Sequence" && Typed(p, "processors", JsonValueKind.Array, path) is { } list)
        {
            foreach (var item in list.EnumerateArray()) yield return item;
        }
        else yield return p;
    }

    private static JsonElement? Child(JsonElement e, string name)
    {
        if (e.ValueKind != JsonValueKind.Object) return null;
        return e.TryGetProperty(name, out var child) && child.ValueKind != JsonValueKind.Null ? child : null;
    }

    /// <summary>The child when it has the JSON kind <paramref name="kind"/>; null when absent or null; a wrong kind is a
    /// UserError (an added_tokens or merges of the wrong type was read as empty).</summary>
    private static JsonElement? Typed(JsonElement e, string name, JsonValueKind kind, string path) => Child(e, name) switch
    {
        null => null,
        { } c when c.ValueKind == kind => c,
        { } c => throw new UserError($"{path}: \"{name}\" must be {(kind == JsonValueKind.Number ? "a number" : $"an {kind.ToString().ToLowerInvariant()}")}, got {JsonFields.Echo(c)}"),
    };

    private static string? Str(JsonElement e, string name, string path) => Child(e, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } s => s.GetString(),
        _ => throw new UserError($"{path}: \"{name}\" must be a string"),
    };

    private static bool Bool(JsonElement e, string name, bool fallback, string path) => Child(e, name) switch
    {
        null => fallback,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        _ => throw new UserError($"{path}: \"{name}\" must be true or false"),
    };
}
