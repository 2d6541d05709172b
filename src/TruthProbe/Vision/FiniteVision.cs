using System.Globalization;
using TruthProbe.Common;
using TruthProbe.Model;
using TruthProbe.Numerics;

namespace TruthProbe.Vision;

/// <summary>
/// NaN and infinity on the image path, found before they reach the language model. A NaN in a tower or projector
/// weight makes every image row spliced into the decoder NaN, which the decoder's own checks would then blame on an
/// overflow of its finite weights. The same checks as the decoder's under the same switch (the language model's
/// <see cref="Transformer.AllowNonFinite"/>, <c>--allow-nonfinite</c>): the weights a forward reads, scanned in their
/// stored dtype at the first encoding, then each encoding's pixels, the vision hooks it captured and its image features.
/// </summary>
internal sealed class FiniteVision(string source, Func<IEnumerable<(string Name, WeightMatrix? Matrix, float[]? Vector)>> weights)
{
    private int _weightsChecked;

    /// <summary>Before an encoding: its pixels, and the first time the weights.</summary>
    public void RequireInputs(ReadOnlySpan<float> pixels)
    {
        int at = NonFinite.IndexOf(pixels);
        if (at >= 0)
            throw new UserError($"{source}: pixel value {at} is {Text(pixels[at])}; the image's preprocessing produced a non-finite value") { Field = FiniteWeights.AllowField };
        if (Volatile.Read(ref _weightsChecked) != 0) return;
        foreach (var (name, matrix, vector) in weights())
        {
            if (matrix != null) FiniteWeights.Matrix(matrix, name, source);
            else FiniteWeights.Vector(vector!, name, source);
        }
        Volatile.Write(ref _weightsChecked, 1);
    }

    /// <summary>
    /// After it: the captured hooks in the order the encoder recorded them (so the first layer that overflowed is the
    /// one named), then the image features [image tokens, <paramref name="width"/>].
    /// </summary>
    public void RequireOutputs(ReadOnlySpan<float> features, int width, VisionCapture? capture)
    {
        if (capture != null)
            foreach (var (name, activation) in capture.Results) Require(activation.Data, name, activation.Shape[^1]);
        Require(features, HookNames.Name(HookKind.ImageFeatures, -1), width);
    }

    private void Require(ReadOnlySpan<float> values, string name, int width)
    {
        int at = NonFinite.IndexOf(values);
        if (at >= 0)
            throw new UserError($"{source}: {name} is {Text(values[at])} at row {at / width}, index {at % width}, although the vision weights and pixels are finite: an activation overflowed float32 (an extreme weight or vision_config value)") { Field = FiniteWeights.AllowField };
    }

    private static string Text(float value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>A LLaVA model's CLIP layers that run and its projector, by their names in the checkpoint's layout.</summary>
    public static FiniteVision Llava(LlavaModel m) => new(m.Language.Source, () => LlavaWeights(m.Layout, m.Vision, m.Projector));

    private static IEnumerable<(string, WeightMatrix?, float[]?)> LlavaWeights(LlavaLayout layout, ClipWeights w, ProjectorWeights p)
    {
        string v = layout.Vision;
        yield return (v + "embeddings.patch_embedding.weight", w.PatchEmbedding, null);
        yield return (v + "embeddings.class_embedding", null, w.ClassEmbedding);
        yield return (v + "embeddings.position_embedding.weight", null, w.PositionEmbedding);
        yield return (v + "pre_layrnorm.weight", null, w.PreNormWeight);
        yield return (v + "pre_layrnorm.bias", null, w.PreNormBias);
        for (int l = 0; l < w.Layers.Length; l++)
        {
            var layer = w.Layers[l];
            string b = $"{v}encoder.layers.{l}.";
            yield return (b + "layer_norm1.weight", null, layer.Norm1Weight);
            yield return (b + "layer_norm1.bias", null, layer.Norm1Bias);
            yield return (b + "self_attn.q_proj.weight", layer.Q, null);
            yield return (b + "self_attn.q_proj.bias", null, layer.QBias);
            yield return (b + "self_attn.k_proj.weight", layer.K, null);
            yield return (b + "self_attn.k_proj.bias", null, layer.KBias);
            yield return (b + "self_attn.v_proj.weight", layer.V, null);
            yield return (b + "self_attn.v_proj.bias", null, layer.VBias);
            yield return (b + "self_attn.out_proj.weight", layer.O, null);
            yield return (b + "self_attn.out_proj.bias", null, layer.OBias);
            yield return (b + "layer_norm2.weight", null, layer.Norm2Weight);
            yield return (b + "layer_norm2.bias", null, layer.Norm2Bias);
            yield return (b + "mlp.fc1.weight", layer.Fc1, null);
            yield return (b + "mlp.fc1.bias", null, layer.Fc1Bias);
            yield return (b + "mlp.fc2.weight", layer.Fc2, null);
            yield return (b + "mlp.fc2.bias", null, layer.Fc2Bias);
        }
        yield return (layout.ProjectorName("linear_1.weight"), p.Linear1, null);
        if (p.Bias1 != null) yield return (layout.ProjectorName("linear_1.bias"), null, p.Bias1);
        yield return (layout.ProjectorName("linear_2.weight"), p.Linear2, null);
        if (p.Bias2 != null) yield return (layout.ProjectorName("linear_2.bias"), null, p.Bias2);
        if (p.ImageNewline != null) yield return (layout.Newline, null, p.ImageNewline);
    }

    /// <summary>A Qwen2.5-VL / Omni vision encoder with its merger, by their names in the checkpoint's layout.</summary>
    public static FiniteVision Qwen(QwenVLModel m) => new(m.Language.Source, () => QwenWeights(m.Layout, m.Vision));

    private static IEnumerable<(string, WeightMatrix?, float[]?)> QwenWeights(QwenLayout layout, QwenVisionWeights w)
    {
        string v = layout.Vision;
        yield return (v + "patch_embed.proj.weight", w.PatchEmbed, null);
        for (int l = 0; l < w.Blocks.Length; l++)
        {
            var block = w.Blocks[l];
            string b = $"{v}blocks.{l}.";
            yield return (b + "norm1.weight", null, block.Norm1);
            if (layout.SplitQkv)
            {
                yield return (b + "attn.q.weight", block.Q, null);
                yield return (b + "attn.k.weight", block.K, null);
                yield return (b + "attn.v.weight", block.V, null);
                yield return (b + "attn.q.bias", null, block.QBias);
                yield return (b + "attn.k.bias", null, block.KBias);
                yield return (b + "attn.v.bias", null, block.VBias);
            }
            else
            {
                // Q, K and V are row views of the fused tensor, back to back from its first row: scanned as one, rows
                // are the file's.
                yield return (b + "attn.qkv.weight", Fused(block.Q), null);
                yield return (b + "attn.qkv.bias", null, [.. block.QBias, .. block.KBias, .. block.VBias]);
            }
            yield return (b + "attn.proj.weight", block.Proj, null);
            yield return (b + "attn.proj.bias", null, block.ProjBias);
            yield return (b + "norm2.weight", null, block.Norm2);
            yield return (b + "mlp.gate_proj.weight", block.Gate, null);
            yield return (b + "mlp.gate_proj.bias", null, block.GateBias);
            yield return (b + "mlp.up_proj.weight", block.Up, null);
            yield return (b + "mlp.up_proj.bias", null, block.UpBias);
            yield return (b + "mlp.down_proj.weight", block.Down, null);
            yield return (b + "mlp.down_proj.bias", null, block.DownBias);
        }
        yield return (v + "merger.ln_q.weight", null, w.MergerNorm);
        yield return (v + "merger.mlp.0.weight", w.Merger0, null);
        yield return (v + "merger.mlp.0.bias", null, w.Merger0Bias);
        yield return (v + "merger.mlp.2.weight", w.Merger2, null);
        yield return (v + "merger.mlp.2.bias", null, w.Merger2Bias);
    }

    private static unsafe WeightMatrix Fused(WeightMatrix q) => new(3 * q.Rows, q.Cols, q.DType, q.Data, q.Owner);
}
