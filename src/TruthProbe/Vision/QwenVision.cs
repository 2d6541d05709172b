using System.Numerics.Tensors;
using TruthProbe.Common;
using TruthProbe.Model;

namespace TruthProbe.Vision;

/// <summary>One Qwen2.5-VL vision block, named after its Hugging Face modules; every linear has a bias.</summary>
public sealed record QwenVisionBlockWeights
{
    public required float[] Norm1 { get; init; }            // norm1 (RMSNorm) [d]
    public required WeightMatrix Q { get; init; }           // attn.qkv rows [0, d) or attn.q [d, d]
    public required WeightMatrix K { get; init; }
    public required WeightMatrix V { get; init; }
    public required float[] QBias { get; init; }
    public required float[] KBias { get; init; }
    public required float[] VBias { get; init; }
    public required WeightMatrix Proj { get; init; }        // attn.proj [d, d]
    public required float[] ProjBias { get; init; }
    public required float[] Norm2 { get; init; }            // norm2 (RMSNorm) [d]
    public required WeightMatrix Gate { get; init; }        // mlp.gate_proj [intermediate, d]
    public required float[] GateBias { get; init; }
    public required WeightMatrix Up { get; init; }          // mlp.up_proj [intermediate, d]
    public required float[] UpBias { get; init; }
    public required WeightMatrix Down { get; init; }        // mlp.down_proj [d, intermediate]
    public required float[] DownBias { get; init; }
}

public sealed record QwenVisionWeights
{
    /// <summary>patch_embed.proj, a Conv3d without bias viewed as [d, C x frames x P x P].</summary>
    public required WeightMatrix PatchEmbed { get; init; }
    /// <summary>The same kernel summed over its frames, [d, C x P x P]: what a still image needs.</summary>
    public required WeightMatrix PatchEmbedStill { get; init; }
    public required QwenVisionBlockWeights[] Blocks { get; init; }
    public required float[] MergerNorm { get; init; }       // merger.ln_q (RMSNorm) [d]
    public required WeightMatrix Merger0 { get; init; }     // merger.mlp.0 [4d, 4d]
    public required float[] Merger0Bias { get; init; }
    public required WeightMatrix Merger2 { get; init; }     // merger.mlp.2 [d_model, 4d]
    public required float[] Merger2Bias { get; init; }
}

/// <summary>
/// The vision side's buffers for one image, grown to the largest image seen (Qwen images vary in size), and one
/// attention workspace per window size met so far (a grid has at most four: whole, right edge, bottom edge, corner).
/// </summary>
public sealed class QwenVisionState
{
    internal float[] Still = [], X = [], Normed = [], Q = [], K = [], V = [], Z = [], Out = [], Gate = [], Up = [], Cos = [], Sin = [],
        Merged = [], MergedHidden = [], ImageFeatures = [];
    internal float[] WindowQ = [], WindowK = [], WindowV = [], WindowZ = [];
    internal readonly Dictionary<int, VisionAttention> Attention = [];
    private (int Rows, int Window) _capacity;

    internal void EnsureCapacity(QwenVisionConfig v, int rows, int largestWindow)
    {
        if (rows <= _capacity.Rows && largestWindow <= _capacity.Window) return;
        int d = v.Hidden, groups = rows / v.MergeUnit;
        Still = new float[rows * QwenVisionConfig.Channels * v.PatchSize * v.PatchSize];
        X = new float[rows * d]; Normed = new float[rows * d]; Q = new float[rows * d]; K = new float[rows * d]; V = new float[rows * d];
        Z = new float[rows * d]; Out = new float[rows * d]; Gate = new float[rows * v.Intermediate]; Up = new float[rows * v.Intermediate];
        Cos = new float[rows * v.HeadDim / 2]; Sin = new float[rows * v.HeadDim / 2];
        Merged = new float[rows * d]; MergedHidden = new float[rows * d]; ImageFeatures = new float[groups * v.OutHidden];
        WindowQ = new float[largestWindow * d]; WindowK = new float[largestWindow * d]; WindowV = new float[largestWindow * d]; WindowZ = new float[largestWindow * d];
        _capacity = (rows, largestWindow);
    }
}

/// <summary>
/// The Qwen2.5-VL vision encoder, pixel rows to the LM's image-token rows. Rows stay in the processor's merge-group
/// order throughout; attention gathers each window's rows in the reference's window order (so the softmax sums keys
/// in the same order), and the merger takes four consecutive rows. Per image: the Conv3d patch embedding as one GEMM,
/// 2D rotary angles per patch, pre-norm blocks (RMSNorm, biased q/k/v, rotary, attention within windows or over the
/// whole image, biased proj; RMSNorm, biased SwiGLU), then the merger (RMSNorm, 4 rows as one, linear, erf GELU, linear).
/// </summary>
public static class QwenVision
{
    /// <summary>Rotary base of the vision encoder (fixed in the reference).</summary>
    private const double RotaryTheta = 10000.0;

    /// <summary>
    /// Merged-token indices window by window, as the reference's get_window_index lists them: windows of
    /// <see cref="QwenVisionConfig.WindowTokens"/> x that many tokens row-major over the merged grid (those at the right
    /// and bottom edges smaller), tokens row-major inside each. Returns the index list and each window's token count.
    /// </summary>
    public static (int[] Order, int[] Sizes) WindowIndex(QwenVisionConfig v, int gridH, int gridW)
    {
        int th = gridH / v.MergeSize, tw = gridW / v.MergeSize, w = v.WindowTokens;
        var order = new List<int>(th * tw);
        var sizes = new List<int>();
        for (int wy = 0; wy < th; wy += w)
            for (int wx = 0; wx < tw; wx += w)
            {
                int before = order.Count;
                for (int y = wy; y < Math.Min(wy + w, th); y++)
                    for (int x = wx; x < Math.Min(wx + w, tw); x++) order.Add(y * tw + x);
                sizes.Add(order.Count - before);
            }
        return ([.. order], [.. sizes]);
    }

    /// <summary>
    /// (row, column) in patches of each pixel row, in merge-group order: the positions the 2D rotary angles use.
    /// </summary>
    public static (int Row, int Column)[] PatchPositions(QwenVisionConfig v, int gridH, int gridW)
    {
        int m = v.MergeSize;
        var result = new (int, int)[gridH * gridW];
        int r = 0;
        for (int by = 0; by < gridH / m; by++)
            for (int bx = 0; bx < gridW / m; bx++)
                for (int iy = 0; iy < m; iy++)
                    for (int ix = 0; ix < m; ix++) result[r++] = (by * m + iy, bx * m + ix);
        return result;
    }

    /// <summary>
    /// Image features [grid_h x grid_w / 4, d_model] of one still image's <paramref name="pixels"/> ([grid_h x grid_w,
    /// 3 x frames x P x P], the processor's rows); valid until the state's next encoding. <paramref name="capture"/> keeps
    /// the pixel rows, each block's output (rows in merge-group order) and the image features, as asked.
    /// </summary>
    public static ReadOnlySpan<float> Encode(QwenVisionConfig v, QwenVisionWeights w, QwenVisionState s, ReadOnlySpan<float> pixels, int gridH, int gridW,
        VisionCapture? capture = null)
    {
        int m = v.MergeSize;
        if (gridH <= 0 || gridW <= 0 || gridH % m != 0 || gridW % m != 0)
            throw new UserError($"image grid {gridH}x{gridW} patches must be positive multiples of the merge size {m}; preprocess the image with the model's image processor");
        int n = gridH * gridW, d = v.Hidden, hd = v.HeadDim, groups = n / v.MergeUnit;
        if (pixels.Length != n * v.PatchValues)
            throw new UserError($"pixel values have {pixels.Length} floats but a {gridH}x{gridW}-patch image needs [{n}, {v.PatchValues}] = {n * v.PatchValues}");
        capture?.Begin();
        capture?.Record(HookKind.VisionPixelValues, -1, pixels, [n, v.PatchValues]);
        var (order, sizes) = WindowIndex(v, gridH, gridW);
        s.EnsureCapacity(v, n, n);
        var x = s.X.AsSpan(0, n * d);
        Embed(v, w, s, pixels, n, x);
        RotaryTables(v, gridH, gridW, s.Cos.AsSpan(0, n * hd / 2), s.Sin.AsSpan(0, n * hd / 2));

        // Rows of each window in the reference's order: a window's tokens in order, each token's 4 consecutive patch rows.
        var rows = new int[n];
        for (int t = 0; t < order.Length; t++)
            for (int u = 0; u < v.MergeUnit; u++) rows[t * v.MergeUnit + u] = order[t] * v.MergeUnit + u;
        int[] windowRows = [.. sizes.Where(z => z > 0).Select(z => z * v.MergeUnit)];

        var xn = s.Normed.AsSpan(0, n * d);
        var q = s.Q.AsSpan(0, n * d);
        var k = s.K.AsSpan(0, n * d);
        var val = s.V.AsSpan(0, n * d);
        var z = s.Z.AsSpan(0, n * d);
        var output = s.Out.AsSpan(0, n * d);
        var gate = s.Gate.AsSpan(0, n * v.Intermediate);
        var up = s.Up.AsSpan(0, n * v.Intermediate);
        for (int l = 0; l < v.Depth; l++)
        {
            var block = w.Blocks[l];
            RmsNormRows(x, block.Norm1, xn, n);
            ClipVision.Linear(block.Q, block.QBias, xn, q, n);
            ClipVision.Linear(block.K, block.KBias, xn, k, n);
            ClipVision.Linear(block.V, block.VBias, xn, val, n);
            Kernels.RopeRows(q, d, k, d, hd, s.Cos, s.Sin, n);
            if (v.FullAttentionBlocks.Contains(l)) Attend(v, s, q, k, val, z, rows, [n]);
            else Attend(v, s, q, k, val, z, rows, windowRows);
            ClipVision.Linear(block.Proj, block.ProjBias, z, output, n);
            Kernels.AddRows(x, output, n, d);

            RmsNormRows(x, block.Norm2, xn, n);
            ClipVision.Linear(block.Gate, block.GateBias, xn, gate, n);
            ClipVision.Linear(block.Up, block.UpBias, xn, up, n);
            Kernels.SwiGluRows(gate, up, n, v.Intermediate);
            ClipVision.Linear(block.Down, block.DownBias, gate, output, n);
            Kernels.AddRows(x, output, n, d);
            capture?.Record(HookKind.VisionResidPost, l, x, [n, d]);
        }

        // Merger: each row normalised, then a merge group's 4 consecutive rows read as one row of 4d.
        var merged = s.Merged.AsSpan(0, n * d);
        RmsNormRows(x, w.MergerNorm, merged, n);
        var hidden = s.MergedHidden.AsSpan(0, n * d);
        ClipVision.Linear(w.Merger0, w.Merger0Bias, merged, hidden, groups);
        VisionKernels.Gelu(hidden);
        var image = s.ImageFeatures.AsSpan(0, groups * v.OutHidden);
        ClipVision.Linear(w.Merger2, w.Merger2Bias, hidden, image, groups);
        capture?.Record(HookKind.ImageFeatures, -1, image, [groups, v.OutHidden]);
        return image;
    }

    /// <summary>
    /// The Conv3d as a GEMM. A still image's frames are equal, so each row's first frame against the kernel summed over
    /// frames gives the same result at half the cost; rows whose frames differ take the whole kernel.
    /// </summary>
    private static void Embed(QwenVisionConfig v, QwenVisionWeights w, QwenVisionState s, ReadOnlySpan<float> pixels, int n, Span<float> x)
    {
        int frames = v.TemporalPatchSize, area = v.PatchSize * v.PatchSize, still = QwenVisionConfig.Channels * area;
        var first = s.Still.AsSpan(0, n * still);
        for (int r = 0; r < n; r++)
        {
            var row = pixels.Slice(r * v.PatchValues, v.PatchValues);
            for (int c = 0; c < QwenVisionConfig.Channels; c++)
            {
                var frame0 = row.Slice(c * frames * area, area);
                for (int f = 1; f < frames; f++)
                    if (!frame0.SequenceEqual(row.Slice((c * frames + f) * area, area)))
                    {
                        Kernels.MatMul(w.PatchEmbed, pixels, x, n);
                        return;
                    }
                frame0.CopyTo(first.Slice(r * still + c * area, area));
            }
        }
        Kernels.MatMul(w.PatchEmbedStill, first, x, n);
    }

    /// <summary>
    /// cos and sin [rows, head_dim / 2] of the 2D rotary angles: the first half row x theta_i, the second column x theta_i,
    /// theta_i = 10000^(-2i / (head_dim / 2)) in float32 as the reference's inv_freq, angles rounded to float32 as its
    /// outer product. <see cref="Kernels.Rope"/> rotates pairs (i, i + head_dim / 2) by angle i.
    /// </summary>
    private static void RotaryTables(QwenVisionConfig v, int gridH, int gridW, Span<float> cos, Span<float> sin)
    {
        int half = v.HeadDim / 2, quarter = half / 2;
        Span<float> inv = stackalloc float[quarter];
        for (int i = 0; i < quarter; i++) inv[i] = (float)(1.0 / Math.Pow(RotaryTheta, (float)(2 * i) / half));
        var positions = PatchPositions(v, gridH, gridW);
        for (int r = 0; r < positions.Length; r++)
            for (int i = 0; i < half; i++)
            {
                float angle = (i < quarter ? positions[r].Row : positions[r].Column) * inv[i % quarter];
                cos[r * half + i] = (float)Math.Cos(angle);
                sin[r * half + i] = (float)Math.Sin(angle);
            }
    }

    /// <summary>
    /// Bidirectional attention of each head within consecutive groups of <paramref name="rows"/> (one group per window,
    /// or one for the whole image): gathered into contiguous buffers, run as two GEMMs per head, scattered back.
    /// </summary>
    private static void Attend(QwenVisionConfig v, QwenVisionState s, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> val, Span<float> z,
        int[] rows, int[] groupSizes)
    {
        int d = v.Hidden, start = 0;
        foreach (int size in groupSizes)
        {
            var group = rows.AsSpan(start, size);
            Span<float> wq = s.WindowQ.AsSpan(0, size * d), wk = s.WindowK.AsSpan(0, size * d), wv = s.WindowV.AsSpan(0, size * d), wz = s.WindowZ.AsSpan(0, size * d);
            for (int i = 0; i < size; i++)
            {
                q.Slice(group[i] * d, d).CopyTo(wq.Slice(i * d, d));
                k.Slice(group[i] * d, d).CopyTo(wk.Slice(i * d, d));
                val.Slice(group[i] * d, d).CopyTo(wv.Slice(i * d, d));
            }
            if (!s.Attention.TryGetValue(size, out var attention)) s.Attention[size] = attention = new VisionAttention(size, v.Heads, v.HeadDim);
            attention.Run(wq, wk, wv, wz);
            for (int i = 0; i < size; i++) wz.Slice(i * d, d).CopyTo(z.Slice(group[i] * d, d));
            start += size;
        }
    }

    private static void RmsNormRows(ReadOnlySpan<float> x, float[] weight, Span<float> y, int rows) => Kernels.RmsNormRows(x, weight, QwenVisionConfig.RmsEps, y, rows);
}
