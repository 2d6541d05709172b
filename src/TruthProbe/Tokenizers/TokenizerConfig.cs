using System.Text.Json;
using TruthProbe.Common;

namespace TruthProbe.Tokenizers;

/// <summary>
/// The special-token settings transformers keeps beside a tokenizer: <c>tokenizer_config.json</c> (add_bos_token,
/// add_eos_token, bos/eos/pad tokens as strings or <c>{"content": ...}</c>), with <c>special_tokens_map.json</c> as
/// the fallback for the token names.
/// </summary>
internal sealed record TokenizerConfig(bool? AddBos, bool? AddEos, string? BosToken, string? EosToken, string? PadToken, string Source)
{
    /// <summary>The settings in <paramref name="dir"/>, or null when it has neither file.</summary>
    public static TokenizerConfig? Read(string dir)
    {
        string configPath = Path.Combine(dir, "tokenizer_config.json"), mapPath = Path.Combine(dir, "special_tokens_map.json");
        bool hasConfig = File.Exists(configPath), hasMap = File.Exists(mapPath);
        if (!hasConfig && !hasMap) return null;
        using var config = hasConfig ? TokenizerFiles.ReadJson(configPath) : null;
        using var map = hasMap ? TokenizerFiles.ReadJson(mapPath) : null;
        string? Token(string name)
        {
            foreach (var (doc, file) in new[] { (config, configPath), (map, mapPath) })
            {
                if (doc == null || !doc.RootElement.TryGetProperty(name, out var t)) continue;
                if (t.ValueKind == JsonValueKind.String) return t.GetString();
                if (t.ValueKind == JsonValueKind.Object && t.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String) return c.GetString();
                if (t.ValueKind != JsonValueKind.Null) throw new UserError($"{file}: \"{name}\" must be a string, {{\"content\": ...}} or null");
            }
            return null;
        }
        bool? Flag(string name)
        {
            if (config == null || !config.RootElement.TryGetProperty(name, out var f) || f.ValueKind == JsonValueKind.Null) return null;
            return f.ValueKind is JsonValueKind.True or JsonValueKind.False ? f.GetBoolean()
                : throw new UserError($"{configPath}: \"{name}\" must be true or false");
        }
        return new TokenizerConfig(Flag("add_bos_token"), Flag("add_eos_token"), Token("bos_token"), Token("eos_token"), Token("pad_token"),
            hasConfig ? configPath : mapPath);
    }

    /// <summary>Id of a configured token name; a name the tokenizer lacks is an error naming both files.</summary>
    public int? IdOf(string? token, string field, Func<string, int?> lookup, string tokenizerPath)
    {
        if (token == null) return null;
        return lookup(token) ?? throw new UserError($"{Source}: {field} \"{token}\" is not a token of {tokenizerPath}");
    }

    /// <summary>The vocabulary with these settings applied over what the tokenizer file itself said.</summary>
    public TokenizerVocabulary ApplyTo(TokenizerVocabulary v, string tokenizerPath)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < v.Tokens.Length; id++) ids.TryAdd(v.Tokens[id], id);
        int? Lookup(string token) => ids.TryGetValue(token, out int id) ? id : null;
        return v with
        {
            AddBos = AddBos ?? v.AddBos,
            AddEos = AddEos ?? v.AddEos,
            BosId = IdOf(BosToken, "bos_token", Lookup, tokenizerPath) ?? v.BosId,
            EosId = IdOf(EosToken, "eos_token", Lookup, tokenizerPath) ?? v.EosId,
            PaddingId = IdOf(PadToken, "pad_token", Lookup, tokenizerPath) ?? v.PaddingId,
        };
    }
}
