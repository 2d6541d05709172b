using TruthProbe.Common;

namespace TruthProbe.Tokenizers;

/// <summary>
/// A model's tokenizer: text to ids exactly as the model's own (Hugging Face / SentencePiece / llama2.c)
/// tokenizer does it, and ids back to text. Implementations are immutable and safe to share across threads.
/// </summary>
public interface ITokenizer
{
    /// <summary><c>"sentencepiece-bpe"</c>, <c>"byte-level-bpe"</c> or <c>"word-level"</c>.</summary>
    string Kind { get; }
    int VocabSize { get; }
    int? BosId { get; }
    int? EosId { get; }
    /// <summary>Whether the model's tokenizer prepends BOS by default (what <see cref="Encode"/> does with addSpecialTokens).</summary>
    bool AddsBos { get; }

    /// <summary>Token ids of <paramref name="text"/>; with <paramref name="addSpecialTokens"/> the BOS/EOS the
    /// model's tokenizer adds by default are added. Special tokens written in the text are recognised either way
    /// (as Hugging Face does), except for SentencePiece files, whose control pieces never match text.</summary>
    int[] Encode(string text, bool addSpecialTokens = true);

    /// <summary>Text of the ids, special (control) tokens skipped, the leading dummy-prefix space removed.</summary>
    string Decode(ReadOnlySpan<int> ids);

    /// <summary>The raw piece of one id as stored in the vocabulary (for display).</summary>
    string TokenText(int id);

    /// <summary>Everything needed to serialise the tokenizer (GGUF metadata) and rebuild it.</summary>
    TokenizerVocabulary Vocabulary { get; }
}

/// <summary>GGUF token types (<c>tokenizer.ggml.token_type</c>), which equal SentencePiece's piece types.</summary>
public static class TokenType
{
    public const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6;
}

/// <summary>
/// A tokenizer as plain data, named the way GGUF stores it: <see cref="Model"/> is <c>tokenizer.ggml.model</c>
/// ("llama" = SentencePiece BPE with pieces in <c>▁</c> form, "gpt2" = byte-level BPE with GPT-2's byte-to-unicode
/// alphabet), <see cref="Tokens"/>/<see cref="Scores"/>/<see cref="TokenTypes"/> are indexed by id,
/// <see cref="Merges"/> are "left right" lines in rank order (empty for score-merged SentencePiece models),
/// <see cref="PreTokenizer"/> is <c>tokenizer.ggml.pre</c> ("gpt2", "qwen2", "default").
/// The trailing members map to <c>tokenizer.ggml.add_eos_token</c>, <c>add_space_prefix</c> and
/// <c>remove_extra_whitespaces</c>; the last two concern "llama" vocabularies only (a "gpt2" one adds no prefix space).
/// </summary>
public sealed record TokenizerVocabulary(
    string Model,
    string[] Tokens,
    float[] Scores,
    int[] TokenTypes,
    string[] Merges,
    int? BosId,
    int? EosId,
    int? UnknownId,
    int? PaddingId,
    bool AddBos,
    string? PreTokenizer,
    bool AddEos = false,
    bool AddSpacePrefix = true,
    bool RemoveExtraWhitespaces = false)
{
    /// <summary>
    /// The ids <paramref name="encodeText"/> appends, after BOS and before EOS when this vocabulary adds them
    /// and the caller asks for special tokens.
    /// </summary>
    public int[] EncodeWithSpecialTokens(bool addSpecialTokens, int capacity, Action<List<int>> encodeText)
    {
        var ids = new List<int>(capacity);
        if (addSpecialTokens && AddBos && BosId is int bos) ids.Add(bos);
        encodeText(ids);
        if (addSpecialTokens && AddEos && EosId is int eos) ids.Add(eos);
        return [.. ids];
    }

    /// <summary>The error for an id past <see cref="Tokens"/>: a model whose vocabulary is larger than its tokenizer's
    /// (padded embeddings, a tokenizer from another model) can emit one, and there is no text to give it.</summary>
    internal static UserError IdOutsideVocabulary(string source, int id, int size) =>
        new($"{source}: token id {id} is outside the tokenizer's vocabulary of {size}; the model's vocabulary is larger than its tokenizer's, use the tokenizer that came with the model");
}
