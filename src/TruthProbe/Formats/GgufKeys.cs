using TruthProbe.Common;

namespace TruthProbe.Formats;

/// <summary>
/// The metadata keys llama.cpp reads (names as in llama.cpp's gguf-py <c>constants.py</c>); per-architecture
/// keys are prefixed with the value of <c>general.architecture</c>.
/// </summary>
public static class GgufKeys
{
    public const string Architecture = "general.architecture";
    public const string Name = "general.name";
    public const string Alignment = "general.alignment";
    public const string FileType = "general.file_type";

    public static string ContextLength(string arch) => $"{arch}.context_length";
    public static string EmbeddingLength(string arch) => $"{arch}.embedding_length";
    public static string BlockCount(string arch) => $"{arch}.block_count";
    public static string FeedForwardLength(string arch) => $"{arch}.feed_forward_length";
    public static string VocabSize(string arch) => $"{arch}.vocab_size";
    public static string HeadCount(string arch) => $"{arch}.attention.head_count";
    public static string HeadCountKv(string arch) => $"{arch}.attention.head_count_kv";
    public static string KeyLength(string arch) => $"{arch}.attention.key_length";
    public static string ValueLength(string arch) => $"{arch}.attention.value_length";
    public static string RmsNormEpsilon(string arch) => $"{arch}.attention.layer_norm_rms_epsilon";
    public static string SlidingWindow(string arch) => $"{arch}.attention.sliding_window";
    public static string RopeFreqBase(string arch) => $"{arch}.rope.freq_base";
    public static string RopeDimensionCount(string arch) => $"{arch}.rope.dimension_count";
    public static string RopeScalingType(string arch) => $"{arch}.rope.scaling.type";
    public static string RopeScalingFactor(string arch) => $"{arch}.rope.scaling.factor";

    public const string TokenizerModel = "tokenizer.ggml.model";
    public const string TokenizerPre = "tokenizer.ggml.pre";
    public const string Tokens = "tokenizer.ggml.tokens";
    public const string Scores = "tokenizer.ggml.scores";
    public const string TokenTypes = "tokenizer.ggml.token_type";
    public const string Merges = "tokenizer.ggml.merges";
    public const string BosId = "tokenizer.ggml.bos_token_id";
    public const string EosId = "tokenizer.ggml.eos_token_id";
    public const string UnknownId = "tokenizer.ggml.unknown_token_id";
    public const string PaddingId = "tokenizer.ggml.padding_token_id";
    public const string AddBos = "tokenizer.ggml.add_bos_token";
    public const string AddEos = "tokenizer.ggml.add_eos_token";
    public const string AddSpacePrefix = "tokenizer.ggml.add_space_prefix";
    public const string RemoveExtraWhitespaces = "tokenizer.ggml.remove_extra_whitespaces";
}

/// <summary>The GGUF architectures truthprobe reads and writes, and how their q/k rows are laid out.</summary>
public static class GgufArchitectures
{
    public static readonly string[] Supported = ["llama", "qwen2"];

    /// <summary>
    /// llama.cpp's <c>llama</c> graph applies RoPE to consecutive pairs (2i, 2i+1) while Hugging Face Llama
    /// rotates halves (i, i + d/2); the converter therefore permutes q/k rows for <c>llama</c>.
    /// <c>qwen2</c> uses the half-split (NeoX) form in both, so nothing moves.
    /// </summary>
    public static bool PermutesQK(string arch) => arch == "llama";

    public static string CheckArchitecture(string arch, string source) =>
        Supported.Contains(arch) ? arch
        : throw new UserError($"{source}: GGUF architecture '{arch}' is not supported (expected {string.Join(" or ", Supported)})");
}
