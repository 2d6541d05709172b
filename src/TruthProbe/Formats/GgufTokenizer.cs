using TruthProbe.Common;
using TruthProbe.Tokenizers;

namespace TruthProbe.Formats;

/// <summary>
/// A tokenizer as GGUF stores it (<c>tokenizer.ggml.*</c>), both ways. llama.cpp needs, for "llama"
/// (SentencePiece): tokens, scores and token types, the byte pieces <c>&lt;0xXX&gt;</c> typed 6 for byte
/// fallback; for "gpt2" (byte-level BPE): tokens, merges (even if empty) and the pre-tokenizer name.
/// A model without a tokenizer is written as <c>no_vocab</c>, llama.cpp's name for that.
/// </summary>
public static class GgufTokenizer
{
    public const string NoVocabulary = "no_vocab";

    /// <summary>
    /// Adds the tokenizer keys. A vocabulary shorter than the embedding (Qwen2.5 pads its matrix past the
    /// tokenizer) is padded with unused <c>[PAD{id}]</c> tokens, as llama.cpp's converter does, because llama.cpp
    /// takes the vocabulary size from the token list.
    /// </summary>
    public static void Write(GgufMetadata m, TokenizerVocabulary? v, int modelVocab, int? bosId, int? eosId)
    {
        if (v != null && v.Tokens.Length != modelVocab) v = Padded(v, modelVocab, m.Source);
        // BOS/EOS are kept even without a vocabulary: generation from token ids still stops at EOS.
        if ((v?.BosId ?? bosId) is int bos) m[GgufKeys.BosId] = GgufValue.Of((uint)bos);
        if ((v?.EosId ?? eosId) is int eos) m[GgufKeys.EosId] = GgufValue.Of((uint)eos);
        if (v == null)
        {
            m[GgufKeys.TokenizerModel] = GgufValue.Of(NoVocabulary);
            return;
        }
        m[GgufKeys.TokenizerModel] = GgufValue.Of(v.Model);
        if (v.Model == "gpt2") m[GgufKeys.TokenizerPre] = GgufValue.Of(v.PreTokenizer ?? "default");
        m[GgufKeys.Tokens] = GgufValue.Of(v.Tokens);
        m[GgufKeys.Scores] = GgufValue.Of(v.Scores);
        m[GgufKeys.TokenTypes] = GgufValue.Of(v.TokenTypes);
        if (v.Model == "gpt2" || v.Merges.Length > 0) m[GgufKeys.Merges] = GgufValue.Of(v.Merges);
        if (v.UnknownId is int unk) m[GgufKeys.UnknownId] = GgufValue.Of((uint)unk);
        if (v.PaddingId is int pad) m[GgufKeys.PaddingId] = GgufValue.Of((uint)pad);
        m[GgufKeys.AddBos] = GgufValue.Of(v.AddBos);
        m[GgufKeys.AddEos] = GgufValue.Of(v.AddEos);
        if (v.Model == "llama")
        {
            m[GgufKeys.AddSpacePrefix] = GgufValue.Of(v.AddSpacePrefix);
            m[GgufKeys.RemoveExtraWhitespaces] = GgufValue.Of(v.RemoveExtraWhitespaces);
        }
    }

    private static TokenizerVocabulary Padded(TokenizerVocabulary v, int size, string source)
    {
        if (v.Tokens.Length > size)
            throw new UserError($"{source}: the tokenizer has {v.Tokens.Length} tokens but the model's embedding only {size} rows; give the model's own tokenizer");
        int extra = size - v.Tokens.Length;
        return v with
        {
            Tokens = [.. v.Tokens, .. Enumerable.Range(v.Tokens.Length, extra).Select(id => $"[PAD{id}]")],
            Scores = [.. v.Scores, .. new float[extra]],
            TokenTypes = [.. v.TokenTypes, .. Enumerable.Repeat(TokenType.Unused, extra)],
        };
    }

    /// <summary>The vocabulary in the metadata, or null when the file has none.</summary>
    public static TokenizerVocabulary? Read(GgufMetadata m)
    {
        string? model = m.StringOrNull(GgufKeys.TokenizerModel);
        if (model is null or NoVocabulary) return null;
        string[] tokens = m.StringsOrNull(GgufKeys.Tokens)
            ?? throw new UserError($"{m.Source}: tokenizer '{model}' has no {GgufKeys.Tokens}");
        float[] scores = m.FloatsOrNull(GgufKeys.Scores) ?? new float[tokens.Length];
        int[] types = m.IntsOrNull(GgufKeys.TokenTypes) ?? Enumerable.Repeat(TokenType.Normal, tokens.Length).ToArray();
        if (scores.Length != tokens.Length || types.Length != tokens.Length)
            throw new UserError($"{m.Source}: {tokens.Length} tokens but {scores.Length} scores and {types.Length} token types; the arrays must have one entry per token");
        int? Id(string key)
        {
            long? id = m.IntegerOrNull(key);
            if (id is null) return null;
            if (id < 0 || id >= tokens.Length)
                throw new UserError($"{m.Source}: {key} is {id}, outside the vocabulary of {tokens.Length} tokens");
            return (int)id;
        }
        return new TokenizerVocabulary(
            Model: model,
            Tokens: tokens,
            Scores: scores,
            TokenTypes: types,
            Merges: m.StringsOrNull(GgufKeys.Merges) ?? [],
            BosId: Id(GgufKeys.BosId),
            EosId: Id(GgufKeys.EosId),
            UnknownId: Id(GgufKeys.UnknownId),
            PaddingId: Id(GgufKeys.PaddingId),
            // llama.cpp's defaults when the keys are absent: SentencePiece adds BOS, byte-level BPE does not.
            AddBos: m.BoolOrNull(GgufKeys.AddBos) ?? model == "llama",
            PreTokenizer: m.StringOrNull(GgufKeys.TokenizerPre),
            AddEos: m.BoolOrNull(GgufKeys.AddEos) ?? false,
            AddSpacePrefix: m.BoolOrNull(GgufKeys.AddSpacePrefix) ?? true,
            RemoveExtraWhitespaces: m.BoolOrNull(GgufKeys.RemoveExtraWhitespaces) ?? false);
    }
}
