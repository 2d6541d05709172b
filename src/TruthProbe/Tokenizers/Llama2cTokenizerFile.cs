using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using TruthProbe.Common;

namespace TruthProbe.Tokenizers;

/// <summary>
/// llama2.c's <c>tokenizer.bin</c> (int32 max_token_length, then per token: float32 score, int32 byte length, UTF-8
/// bytes) and SentencePiece's <c>.vocab</c> text export (piece TAB score per line, line = id). Pieces are brought back
/// to SentencePiece form (llama2.c exported ▁ as ' ' and BOS/EOS as "\n&lt;s&gt;\n"), so every loader of one model
/// yields the same vocabulary.
/// </summary>
internal static class Llama2cTokenizerFile
{
    /// <summary>llama2.c's <c>encode</c> adds the dummy prefix and does not collapse spaces.</summary>
    public static SentencePieceBpeTokenizer LoadBin(string path)
    {
        byte[] data = TokenizerFiles.ReadAll(path);
        if (data.Length < 4) throw new UserError($"{path}: too short for a llama2.c tokenizer.bin (expected int32 max_token_length first)");
        int maxTokenLength = BinaryPrimitives.ReadInt32LittleEndian(data);
        if (maxTokenLength <= 0 || maxTokenLength > 1 << 16)
            throw new UserError($"{path}: max_token_length {maxTokenLength} is not plausible; expected a llama2.c tokenizer.bin");
        var tokens = new List<string>();
        var scores = new List<float>();
        int at = 4;
        while (at < data.Length)
        {
            if (data.Length - at < 8) throw new UserError($"{path}: truncated at token {tokens.Count} (byte {at}): expected float32 score and int32 length");
            float score = BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(at));
            int length = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(at + 4));
            at += 8;
            if (length < 0 || length > maxTokenLength || length > data.Length - at)
                throw new UserError($"{path}: token {tokens.Count} (byte {at - 4}) has length {length}; expected 0..{maxTokenLength} within the file (truncated?)");
            string piece = Encoding.UTF8.GetString(data, at, length);
            at += length;
            tokens.Add(tokens.Count is 1 or 2 ? piece.Trim('\n') : piece.Replace(' ', SentencePieceBpeTokenizer.Metaspace));
            scores.Add(score);
        }
        return FromPieces(path, tokens, scores, removeExtraWhitespaces: false);
    }

    /// <summary>A .vocab export comes from a SentencePiece model whose normaliser defaults hold (dummy prefix, collapsed spaces).</summary>
    public static SentencePieceBpeTokenizer LoadVocab(string path)
    {
        string[] lines = TokenizerFiles.ReadAllLines(path);
        var tokens = new List<string>();
        var scores = new List<float>();
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].Length == 0 && i == lines.Length - 1) break;
            int tab = lines[i].LastIndexOf('\t');
            if (tab <= 0 || !float.TryParse(lines[i].AsSpan(tab + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out float score))
                throw new UserError($"{path}:{i + 1}: expected 'piece<TAB>score' (SentencePiece .vocab), got \"{lines[i]}\"");
            tokens.Add(lines[i][..tab]);
            scores.Add(score);
        }
        return FromPieces(path, tokens, scores, removeExtraWhitespaces: true);
    }

    private static SentencePieceBpeTokenizer FromPieces(string path, List<string> tokens, List<float> scores, bool removeExtraWhitespaces)
    {
        if (tokens.Count < 3) throw new UserError($"{path}: {tokens.Count} tokens; expected a vocabulary starting with <unk>, <s>, </s>");
        string[] pieces = tokens.ToArray();
        int[] types = SentencePieceVocabulary.InferTypes(pieces);
        var vocab = new TokenizerVocabulary("llama", pieces, scores.ToArray(), types, [], BosId: 1, EosId: 2, UnknownId: 0,
            PaddingId: null, AddBos: true, PreTokenizer: "default", AddEos: false, AddSpacePrefix: true,
            RemoveExtraWhitespaces: removeExtraWhitespaces);
        return SentencePieceVocabulary.Build(vocab, byteFallback: types.Contains(TokenType.Byte), path);
    }
}
