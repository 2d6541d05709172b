using System.Numerics.Tensors;
using TruthProbe.Common;
using TruthProbe.Model;

namespace TruthProbe.Vision;

/// <summary>One CLIP encoder layer, named after its Hugging Face modules; every linear has a bias.</summary>
public sealed record ClipLayerWeights
{
    public required float[] Norm1Weight { get; init; }      // layer_norm1 [d]
    public required float[] Norm1Bias { get; init; }
    public required WeightMatrix Q { get; init; }           // self_attn.q_proj [d, d]
    public required WeightMatrix K { get; init; }
    public required WeightMatrix V { get; init; }
    public required WeightMatrix O { get; init; }           // self_attn.out_proj [d, d]
    public required float[] QBias { get; init; }
    public required float[] KBias { get; init; }
    public required float[] VBias { get; init; }
    public required float[] OBias { get; init; }
    public required float[] Norm2Weight { get; init; }      // layer_norm2 [d]
    public required float[] Norm2Bias { get; init; }
    public required WeightMatrix Fc1 { get; init; }         // mlp.fc1 [intermediate, d]
    public required float[] Fc1Bias { get; init; }
    public required WeightMatrix Fc2 { get; init; }         // mlp.fc2 [d, intermediate]
    public required float[] Fc2Bias { get; init; }
}

/// <summary>
/// The CLIP vision tower as LLaVA uses it: only the layers up to the selected one (<c>post_layernorm</c> normalises the
/// pooled class token only, which LLaVA never reads, so it is not loaded).
/// </summary>
public sealed record ClipWeights
{
    /// <summary>embeddings.patch_embedding, a stride-P convolution without bias viewed as [d, C*P*P].</summary>
    public required WeightMatrix PatchEmbedding { get; init; }
    public required float[] ClassEmbedding { get; init; }      // [d]
    public required float[] PositionEmbedding { get; init; }   // [positions, d]
    public required float[] PreNormWeight { get; init; }       // pre_layrnorm (sic) [d]
    public required float[] PreNormBias { get; init; }
    public required ClipLayerWeights[] Layers { get; init; }
}

/// <summary>multi_modal_projector: linear_1 -> GELU -> linear_2, vision width to the LM's.</summary>
public sealed record ProjectorWeights
{
    public required WeightMatrix Linear1 { get; init; }        // [d_model, vision d]
    public float[]? Bias1 { get; init; }
    public required WeightMatrix Linear2 { get; init; }        // [d_model, d_model]
    public float[]? Bias2 { get; init; }
    /// <summary>LLaVA-NeXT's learned <c>image_newline</c> [d_model], closing each row of the grid's features; null for LLaVA-1.5.</summary>
    public float[]? ImageNewline { get; init; }
}

/// <summary>The vision side's buffers for one image, allocated once at full size (one state per concurrent encoding).</summary>
public sealed class VisionState
{
    internal readonly float[] Patches, X, Normed, Q, K, V, Z, Out, Hidden, Projected, ImageFeatures;
    /// <summary>LLaVA-NeXT: every tile's projected features before packing; empty for LLaVA-1.5.</summary>
    internal readonly float[] TileFeatures;
    internal readonly VisionAttention Attention;

    internal VisionState(LlavaConfig c)
    {
        var v = c.Vision;
        int n = v.Positions, d = v.Hidden, features = c.ImageTokens, dModel = c.Text.DModel;
        Patches = new float[v.Patches * v.PatchValues];
        X = new float[n * d]; Normed = new float[n * d]; Q = new float[n * d]; K = new float[n * d]; V = new float[n * d];
        Z = new float[n * d]; Out = new float[n * d]; Hidden = new float[n * v.Intermediate];
        Projected = new float[features * dModel]; ImageFeatures = new float[AnyresLayout.MaxImageTokens(c) * dModel];
        TileFeatures = c.GridPinpoints.Count == 0 ? [] : new float[AnyresLayout.MaxTiles(c) * features * dModel];
        Attention = new VisionAttention(n, v.Heads, v.HeadDim);
    }
}

/// <summary>
/// CLIP ViT and the LLaVA projector, pixels to the rows that replace the image tokens. Per image: the patches as
/// one im2col GEMM against the convolution kernel, the class token and learned positions, <c>pre_layrnorm</c>, then
/// pre-norm layers (LayerNorm, bidirectional multi-head attention with biases, residual, LayerNorm, MLP with
/// quick-GELU, residual) up to the selected hidden state, the class row dropped or kept, and linear, erf GELU,
/// linear. The matmuls, attention's included, run on the decoder's GEMM.
/// </summary>
public static class ClipVision
{
    /// <summary>
    /// Image features [<see cref="LlavaConfig.ImageTokens"/>, d_model] of <paramref name="pixels"/> ([3, H, W] after
    /// normalisation, H = W = image_size); valid until the state's next encoding.
    /// </summary>
    public static ReadOnlySpan<float> Encode(LlavaConfig c, ClipWeights w, ProjectorWeights projector, VisionState s, ReadOnlySpan<float> pixels, VisionCapture? capture)
    {
        var v = c.Vision;
        int size = v.ImageSize;
        if (pixels.Length != v.Channels * size * size)
            throw new UserError($"pixel values have {pixels.Length} floats but the vision tower takes [{v.Channels}, {size}, {size}] = {v.Channels * size * size}; preprocess the image to {size}x{size}");
        capture?.Begin(0, c.ImageTokens);
        capture?.Record(HookKind.VisionPixelValues, -1, pixels);
        var image = s.ImageFeatures.AsSpan(0, c.ImageTokens * c.Text.DModel);
        EncodeTile(c, w, projector, s, pixels, capture, 0, image);
        capture?.Record(HookKind.ImageFeatures, -1, image);
        return image;
    }

    /// <summary>
    /// One tile ([3, image_size, image_size]) through the tower and projector into <paramref name="projected"/>
    /// ([<see cref="LlavaConfig.ImageTokens"/>, d_model]); the tower's hooks are recorded as tile <paramref name="tile"/>.
    /// </summary>
    internal static void EncodeTile(LlavaConfig c, ClipWeights w, ProjectorWeights projector, VisionState s, ReadOnlySpan<float> pixels, VisionCapture? capture, int tile, Span<float> projected)
    {
        var v = c.Vision;
        int size = v.ImageSize, p = v.PatchSize, grid = v.PatchesPerSide, n = v.Positions, d = v.Hidden;

        // im2col: patch (row, column) in row-major order becomes one row of (channel, y, x) values, the
        // convolution kernel's own flattening, so the embedding is patches x kernel^T.
        var patches = s.Patches.AsSpan();
        for (int py = 0; py < grid; py++)
            for (int px = 0; px < grid; px++)
            {
                var row = patches.Slice((py * grid + px) * v.PatchValues, v.PatchValues);
                for (int ch = 0; ch < v.Channels; ch++)
                    for (int y = 0; y < p; y++)
                        pixels.Slice(ch * size * size + (py * p + y) * size + px * p, p).CopyTo(row.Slice((ch * p + y) * p, p));
            }
        var x = s.X.AsSpan(0, n * d);
        Kernels.MatMul(w.PatchEmbedding, patches, x[d..], v.Patches);
        w.ClassEmbedding.CopyTo(x);
        TensorPrimitives.Add(x, w.PositionEmbedding, x);
        LayerNormRows(x, w.PreNormWeight, w.PreNormBias, v.LayerNormEps, x, n);

        var xn = s.Normed.AsSpan(0, n * d);
        var q = s.Q.AsSpan(0, n * d);
        var k = s.K.AsSpan(0, n * d);
        var val = s.V.AsSpan(0, n * d);
        var z = s.Z.AsSpan(0, n * d);
        var output = s.Out.AsSpan(0, n * d);
        var hidden = s.Hidden.AsSpan(0, n * v.Intermediate);
        for (int l = 0; l < c.VisionLayersRun; l++)
        {
            var layer = w.Layers[l];
            LayerNormRows(x, layer.Norm1Weight, layer.Norm1Bias, v.LayerNormEps, xn, n);
            Linear(layer.Q, layer.QBias, xn, q, n);
            Linear(layer.K, layer.KBias, xn, k, n);
            Linear(layer.V, layer.VBias, xn, val, n);
            s.Attention.Run(q, k, val, z);
            Linear(layer.O, layer.OBias, z, output, n);
            TensorPrimitives.Add(x, output, x);

            LayerNormRows(x, layer.Norm2Weight, layer.Norm2Bias, v.LayerNormEps, xn, n);
            Linear(layer.Fc1, layer.Fc1Bias, xn, hidden, n);
            if (v.HiddenAct == "quick_gelu") VisionKernels.QuickGelu(hidden);
            else VisionKernels.Gelu(hidden);
            Linear(layer.Fc2, layer.Fc2Bias, hidden, output, n);
            TensorPrimitives.Add(x, output, x);
            capture?.Record(HookKind.VisionResidPost, l, x, tile);
        }

        int features = c.ImageTokens;
        var selected = c.Select == FeatureSelect.Default ? x[d..] : x;
        capture?.Record(HookKind.VisionFeatures, -1, selected, tile);
        var mid = s.Projected.AsSpan(0, features * c.Text.DModel);
        Linear(projector.Linear1, projector.Bias1, selected, mid, features);
        VisionKernels.Gelu(mid);
        Linear(projector.Linear2, projector.Bias2, mid, projected, features);
    }

    /// <summary>y = W x + b for each of <paramref name="rows"/> rows.</summary>
    internal static void Linear(WeightMatrix w, float[]? bias, ReadOnlySpan<float> x, Span<float> y, int rows)
    {
        Kernels.MatMul(w, x, y, rows);
        if (bias == null) return;
        for (int r = 0; r < rows; r++) TensorPrimitives.Add(y.Slice(r * w.Rows, w.Rows), bias, y.Slice(r * w.Rows, w.Rows));
    }

    private static void LayerNormRows(ReadOnlySpan<float> x, float[] weight, float[] bias, float eps, Span<float> y, int rows)
    {
        int d = weight.Length;
        for (int r = 0; r < rows; r++) VisionKernels.LayerNorm(x.Slice(r * d, d), weight, bias, eps, y.Slice(r * d, d));
    }
}
