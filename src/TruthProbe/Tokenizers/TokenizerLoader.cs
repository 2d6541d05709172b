using TruthProbe.Common;

namespace TruthProbe.Tokenizers;

/// <summary>Finds and loads a model's tokenizer from its files, or rebuilds one from a <see cref="TokenizerVocabulary"/>.</summary>
public static class TokenizerLoader
{
    /// <summary>The tokenizer of a model folder: <c>tokenizer.json</c> (with <c>tokenizer_config.json</c> and
    /// <c>special_tokens_map.json</c> beside it), else <c>tokenizer.model</c>, else llama2.c's <c>tokenizer.bin</c>
    /// (these two also take add_bos_token/add_eos_token and the special token names from those files);
    /// null when the folder has none (the model can still run from token ids).</summary>
    public static ITokenizer? FromModelDirectory(string dir)
    {
        if (!Directory.Exists(dir)) throw new UserError($"{dir}: model folder does not exist");
        foreach (string name in (string[])["tokenizer.json", "tokenizer.model", "tokenizer.bin"])
        {
            string path = Path.Combine(dir, name);
            if (!File.Exists(path)) continue;
            var tokenizer = FromFile(path);
            // tokenizer.json reads the config itself; a bare SentencePiece file takes add_bos_token etc. from it here.
            if (tokenizer is SentencePieceBpeTokenizer sentencePiece && TokenizerConfig.Read(dir) is { } config)
                return sentencePiece.WithVocabulary(config.ApplyTo(sentencePiece.Vocabulary, path));
            return tokenizer;
        }
        return null;
    }

    /// <summary>A tokenizer file by its kind: <c>.json</c> (Hugging Face), <c>.model</c> (SentencePiece),
    /// <c>.bin</c> (llama2.c), <c>.vocab</c> (SentencePiece text export).</summary>
    public static ITokenizer FromFile(string path)
    {
        if (!File.Exists(path)) throw new UserError($"{path}: tokenizer file does not exist");
        return Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".json" => HfTokenizerJson.Load(path),
            ".model" => SentencePieceModelFile.Load(path),
            ".bin" => Llama2cTokenizerFile.LoadBin(path),
            ".vocab" => Llama2cTokenizerFile.LoadVocab(path),
            _ => throw new UserError($"{path}: unknown tokenizer file type; expected tokenizer.json, a SentencePiece .model or .vocab, or a llama2.c tokenizer.bin"),
        };
    }

    /// <summary>Rebuilds a tokenizer from its vocabulary (as stored in GGUF).</summary>
    public static ITokenizer FromVocabulary(TokenizerVocabulary v)
    {
        ArgumentNullException.ThrowIfNull(v);
        const string source = "tokenizer vocabulary";
        if (v.Tokens.Length == 0 || v.Scores.Length != v.Tokens.Length || v.TokenTypes.Length != v.Tokens.Length)
            throw new UserError($"{source}: {v.Tokens.Length} tokens, {v.Scores.Length} scores and {v.TokenTypes.Length} token types; expected equal, non-zero counts");
        foreach (var (name, id) in new[] { ("BOS", v.BosId), ("EOS", v.EosId), ("unknown", v.UnknownId), ("padding", v.PaddingId) })
            if (id is int i && (uint)i >= (uint)v.Tokens.Length)
                throw new UserError($"{source}: {name} id {i} is outside the {v.Tokens.Length} tokens");
        return v.Model switch
        {
            "llama" => SentencePieceVocabulary.Build(v, byteFallback: v.TokenTypes.Contains(TokenType.Byte), source),
            "gpt2" => ByteLevelBpeTokenizer.FromVocabulary(v, source),
            _ => throw new UserError($"tokenizer model '{v.Model}' is not supported; expected 'llama' (SentencePiece BPE) or 'gpt2' (byte-level BPE)"),
        };
    }
}
