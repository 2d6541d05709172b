using System.Runtime.InteropServices;

namespace TruthProbe.Model;

/// <summary>How a weight matrix stores its numbers. 16-bit types stay 16-bit and are widened inside the kernels.
/// A new type needs a case in <see cref="WeightMatrix.RowBytesFor"/> and in <c>Kernels.Widen</c> (and may add a fused dot).</summary>
public enum WeightDType
{
    F32,
    F16,
    BF16,
    /// <summary>ggml's Q8_0: blocks of 32 values, each an fp16 scale d then 32 int8 q (34 bytes); value = d * q.</summary>
    Q8_0,
}

/// <summary>
/// A row-major [Rows, Cols] matrix used as y = W x (Rows = outputs, Cols = inputs), as PyTorch's
/// <c>nn.Linear.weight</c> and llama2.c store it. The bytes live elsewhere (a memory-mapped checkpoint or a
/// pinned array): <see cref="Owner"/> keeps them alive, and nothing copies them.
/// </summary>
public sealed unsafe class WeightMatrix
{
    public int Rows { get; }
    public int Cols { get; }
    public WeightDType DType { get; }
    /// <summary>First byte of row 0; row r starts at <c>Data + r * RowBytes</c>.</summary>
    public byte* Data { get; }
    /// <summary>Whatever must stay alive for <see cref="Data"/> to stay valid (a mapped file, a pinned array).</summary>
    public object Owner { get; }

    public WeightMatrix(int rows, int cols, WeightDType dtype, byte* data, object owner)
    {
        RowBytesFor(dtype, cols); // rejects a row length the dtype cannot hold
        Rows = rows;
        Cols = cols;
        DType = dtype;
        Data = data;
        Owner = owner;
    }

    public long RowBytes => RowBytesFor(DType, Cols);
    public long ByteLength => RowBytes * Rows;
    public byte* Row(int r) => Data + r * RowBytes;

    public const int Q8_0Block = 32;

    /// <summary>Bytes of one row of <paramref name="cols"/> values (a block-quantised type adds its case here).</summary>
    public static long RowBytesFor(WeightDType t, int cols) => t switch
    {
        WeightDType.F32 => 4L * cols,
        WeightDType.F16 or WeightDType.BF16 => 2L * cols,
        WeightDType.Q8_0 => cols % Q8_0Block == 0 ? cols / Q8_0Block * 34L : throw new ArgumentException($"Q8_0 rows need a multiple of {Q8_0Block} values, got {cols}"),
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>Copies [rows * cols] floats into a pinned array of its own.</summary>
    public static WeightMatrix FromSingles(ReadOnlySpan<float> values, int rows, int cols)
    {
        if (values.Length != (long)rows * cols) throw new ArgumentException($"{values.Length} values for a [{rows}, {cols}] matrix");
        byte[] bytes = GC.AllocateUninitializedArray<byte>(values.Length * 4, pinned: true);
        MemoryMarshal.AsBytes(values).CopyTo(bytes);
        return new WeightMatrix(rows, cols, WeightDType.F32, (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(bytes, 0), bytes);
    }

    /// <summary>Row r widened to float32.</summary>
    public void ReadRow(int r, Span<float> destination) => Kernels.WidenRow(this, r, destination);

    /// <summary>The whole matrix as float32 (tests, conversions; never on a hot path).</summary>
    public float[] ToSingles()
    {
        var result = new float[(long)Rows * Cols];
        for (int r = 0; r < Rows; r++) ReadRow(r, result.AsSpan(r * Cols, Cols));
        return result;
    }
}

/// <summary>One decoder layer's tensors, named after their Hugging Face modules.</summary>
public sealed record LayerWeights
{
    public required float[] InputNorm { get; init; }            // input_layernorm [d_model]
    public required WeightMatrix Q { get; init; }               // q_proj [H*d_head, d_model]
    public required WeightMatrix K { get; init; }               // k_proj [H_kv*d_head, d_model]
    public required WeightMatrix V { get; init; }               // v_proj [H_kv*d_head, d_model]
    public required WeightMatrix O { get; init; }               // o_proj [d_model, H*d_head]
    public float[]? QBias { get; init; }
    public float[]? KBias { get; init; }
    public float[]? VBias { get; init; }
    public float[]? OBias { get; init; }
    public required float[] PostAttentionNorm { get; init; }    // post_attention_layernorm [d_model]
    public required WeightMatrix Gate { get; init; }            // mlp.gate_proj [ffn, d_model] (llama2.c w1)
    public required WeightMatrix Up { get; init; }              // mlp.up_proj [ffn, d_model] (llama2.c w3)
    public required WeightMatrix Down { get; init; }            // mlp.down_proj [d_model, ffn] (llama2.c w2)
}

/// <summary>
/// All tensors of a model in the Hugging Face layout: q/k rows ordered for half-split RoPE (rotating
/// x[i] with x[i + d_head/2]). Checkpoints stored for interleaved RoPE (llama2.c, GGUF llama) are
/// converted at load with <see cref="RopeLayout"/>. Norm weights and biases are small float32 copies;
/// matrices stay in the checkpoint's dtype. With tied embeddings, <see cref="Classifier"/> is the very
/// same object as <see cref="TokenEmbedding"/>.
/// </summary>
public sealed record ModelWeights
{
    public required WeightMatrix TokenEmbedding { get; init; }   // embed_tokens [vocab, d_model]
    public required LayerWeights[] Layers { get; init; }
    public required float[] FinalNorm { get; init; }             // model.norm [d_model]
    public required WeightMatrix Classifier { get; init; }       // lm_head [vocab, d_model]

    public IEnumerable<WeightMatrix> Matrices()
    {
        yield return TokenEmbedding;
        foreach (var l in Layers)
        {
            yield return l.Q; yield return l.K; yield return l.V; yield return l.O;
            yield return l.Gate; yield return l.Up; yield return l.Down;
        }
        if (!ReferenceEquals(Classifier, TokenEmbedding)) yield return Classifier;
    }
}

/// <summary>
/// RoPE pairs differ between layouts: llama2.c and GGUF <c>llama</c> rotate consecutive pairs
/// (x[2i], x[2i+1]); Hugging Face rotates halves (x[i], x[i + d/2]). Reordering the q/k output rows inside
/// each head turns one into the other: half-split row c*d/2 + i holds interleaved row 2i + c.
/// </summary>
public static class RopeLayout
{
    /// <summary>Interleaved-pair rows -> half-split rows, head by head. Rows are opaque byte blocks of <paramref name="rowBytes"/>.</summary>
    public static void InterleavedToHalfSplit(ReadOnlySpan<byte> source, Span<byte> destination, int heads, int headDim, int rowBytes)
    {
        int half = headDim / 2;
        for (int h = 0; h < heads; h++)
            for (int c = 0; c < 2; c++)
                for (int i = 0; i < half; i++)
                {
                    int from = h * headDim + 2 * i + c, to = h * headDim + c * half + i;
                    source.Slice(from * rowBytes, rowBytes).CopyTo(destination.Slice(to * rowBytes, rowBytes));
                }
    }

    /// <summary>Half-split rows -> interleaved-pair rows (the inverse, what HF -> GGUF conversion does for llama).</summary>
    public static void HalfSplitToInterleaved(ReadOnlySpan<byte> source, Span<byte> destination, int heads, int headDim, int rowBytes)
    {
        int half = headDim / 2;
        for (int h = 0; h < heads; h++)
            for (int c = 0; c < 2; c++)
                for (int i = 0; i < half; i++)
                {
                    int from = h * headDim + c * half + i, to = h * headDim + 2 * i + c;
                    source.Slice(from * rowBytes, rowBytes).CopyTo(destination.Slice(to * rowBytes, rowBytes));
                }
    }
}
