using System.Text.RegularExpressions;
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
}

/// <summary>
/// The architectures truthprobe converts, and how their tensors are named on each side.
/// Hugging Face: <c>model.layers.{l}.self_attn.q_proj.weight</c>; GGUF: <c>blk.{l}.attn_q.weight</c>.
/// </summary>
public static partial class GgufNaming
{
    public static readonly string[] Architectures = ["llama", "qwen2"];

    /// <summary>
    /// llama.cpp's <c>llama</c> graph applies RoPE to consecutive pairs (2i, 2i+1) while Hugging Face Llama
    /// rotates halves (i, i + d/2); the converter therefore permutes q/k rows for <c>llama</c>.
    /// <c>qwen2</c> uses the half-split (NeoX) form in both, so nothing moves.
    /// </summary>
    public static bool PermutesQK(string arch) => arch == "llama";

    public static string CheckArchitecture(string arch, string source) =>
        Architectures.Contains(arch) ? arch
        : throw new UserError($"{source}: GGUF architecture '{arch}' is not supported (expected {string.Join(" or ", Architectures)})");

    private static readonly (string Hf, string Gguf)[] Globals =
    [
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ];

    private static readonly (string Hf, string Gguf)[] PerLayer =
    [
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"),
        ("input_layernorm", "attn_norm"),
        ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
        ("post_attention_layernorm", "ffn_norm"),
    ];

    [GeneratedRegex(@"^model\.layers\.(\d+)\.(.+)\.(weight|bias)$")]
    private static partial Regex HfLayerTensor();

    [GeneratedRegex(@"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$")]
    private static partial Regex GgufLayerTensor();

    /// <summary>The GGUF name of a Hugging Face tensor, or null when the name is not one of a decoder's.</summary>
    public static string? HfToGguf(string hfName)
    {
        foreach (var (hf, gguf) in Globals) if (hf == hfName) return gguf;
        var m = HfLayerTensor().Match(hfName);
        if (!m.Success) return null;
        foreach (var (hf, gguf) in PerLayer)
            if (hf == m.Groups[2].Value) return $"blk.{m.Groups[1].Value}.{gguf}.{m.Groups[3].Value}";
        return null;
    }

    /// <summary>The Hugging Face name of a GGUF tensor, or null when the name is not one of a decoder's.</summary>
    public static string? GgufToHf(string ggufName)
    {
        foreach (var (hf, gguf) in Globals) if (gguf == ggufName) return hf;
        var m = GgufLayerTensor().Match(ggufName);
        if (!m.Success) return null;
        foreach (var (hf, gguf) in PerLayer)
            if (gguf == m.Groups[2].Value) return $"model.layers.{m.Groups[1].Value}.{hf}.{m.Groups[3].Value}";
        return null;
    }

    /// <summary>How many heads a q or k tensor (weight or bias) is split into, or 0 for tensors never permuted.</summary>
    public static int RopeHeads(string ggufName, int heads, int kvHeads)
    {
        var m = GgufLayerTensor().Match(ggufName);
        if (!m.Success) return 0;
        return m.Groups[2].Value switch { "attn_q" => heads, "attn_k" => kvHeads, _ => 0 };
    }
}

/// <summary>
/// The q/k row permutation between the two RoPE layouts. Within each head of <c>headDim</c> rows, Hugging Face
/// row <c>j*headDim/2 + i</c> (half j of pair i) is GGUF row <c>2i + j</c>. Rows are moved whole, as bytes,
/// so the same code serves every element type (a bias is a tensor of one-element rows).
/// </summary>
public static class RopePermutation
{
    public static void HfToGguf(ReadOnlySpan<byte> hf, Span<byte> gguf, int heads, long rowBytes) =>
        Permute(hf, gguf, heads, rowBytes, toInterleaved: true);

    public static void GgufToHf(ReadOnlySpan<byte> gguf, Span<byte> hf, int heads, long rowBytes) =>
        Permute(gguf, hf, heads, rowBytes, toInterleaved: false);

    private static void Permute(ReadOnlySpan<byte> source, Span<byte> destination, int heads, long rowBytes, bool toInterleaved)
    {
        if (source.Length != destination.Length) throw new ArgumentException("source and destination differ in length");
        long rows = source.Length / rowBytes;
        if (rows * rowBytes != source.Length || rows % (2L * heads) != 0)
            throw new ArgumentException($"{rows} rows cannot be split into {heads} heads of pairs");
        int headDim = (int)(rows / heads), half = headDim / 2, row = (int)rowBytes;
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++)
                {
                    int halfSplit = h * headDim + j * half + i, interleaved = h * headDim + 2 * i + j;
                    var (from, to) = toInterleaved ? (halfSplit, interleaved) : (interleaved, halfSplit);
                    source.Slice(from * row, row).CopyTo(destination.Slice(to * row, row));
                }
    }
}
