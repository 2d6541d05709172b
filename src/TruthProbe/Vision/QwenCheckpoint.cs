using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Model;

namespace TruthProbe.Vision;

/// <summary>
/// Where a Qwen vision-language checkpoint keeps its parts: the vision encoder's prefix, the LM's (through
/// <see cref="HfPrefix"/>, still <see cref="CheckpointTensor"/>'s one table of decoder names), and whether the vision
/// blocks store q, k and v apart (Omni) or as one fused <c>attn.qkv</c> (VL).
/// </summary>
public sealed record QwenLayout(string Name, string Vision, HfPrefix Text, bool SplitQkv)
{
    /// <summary>The hub files of Qwen2.5-VL: <c>visual.*</c>, <c>model.*</c>, <c>lm_head.*</c>.</summary>
    public static readonly QwenLayout Hub = new("hub", "visual.", HfPrefix.Decoder, false);
    /// <summary>transformers 4.52 and later re-save: <c>model.visual.*</c>, <c>model.language_model.*</c>, <c>lm_head.*</c>.</summary>
    public static readonly QwenLayout Nested = new("nested", "model.visual.", new HfPrefix("model.language_model.", ""), false);
    /// <summary>Qwen2.5-Omni's thinker inside the whole model: <c>thinker.visual.*</c>, <c>thinker.model.*</c>, <c>thinker.lm_head.*</c>.</summary>
    public static readonly QwenLayout Thinker = new("thinker", "thinker.visual.", new HfPrefix("thinker.model.", "thinker."), true);

    public static readonly QwenLayout[] All = [Hub, Nested, Thinker];
}

/// <summary>Reads (and, for tests and benchmarks, writes) Qwen2.5-VL and Qwen2.5-Omni folders: config.json and safetensors, mapped once.</summary>
public static class QwenCheckpoint
{
    /// <summary>
    /// The vision encoder's tensors with their shapes (names after the layout's prefix): the one table of names the
    /// reader and <see cref="WriteRandom"/> share.
    /// </summary>
    public static IEnumerable<(string Name, long[] Shape)> VisionTensors(QwenVisionConfig v, bool splitQkv)
    {
        int d = v.Hidden, merged = d * v.MergeUnit;
        yield return ("patch_embed.proj.weight", [d, QwenVisionConfig.Channels, v.TemporalPatchSize, v.PatchSize, v.PatchSize]);
        for (int l = 0; l < v.Depth; l++)
        {
            string b = $"blocks.{l}.";
            yield return (b + "norm1.weight", [d]);
            yield return (b + "norm2.weight", [d]);
            if (splitQkv)
                foreach (string p in new[] { "q", "k", "v" })
                {
                    yield return (b + $"attn.{p}.weight", [d, d]);
                    yield return (b + $"attn.{p}.bias", [d]);
                }
            else
            {
                yield return (b + "attn.qkv.weight", [3 * d, d]);
                yield return (b + "attn.qkv.bias", [3 * d]);
            }
            yield return (b + "attn.proj.weight", [d, d]);
            yield return (b + "attn.proj.bias", [d]);
            foreach (string p in new[] { "gate_proj", "up_proj" })
            {
                yield return (b + $"mlp.{p}.weight", [v.Intermediate, d]);
                yield return (b + $"mlp.{p}.bias", [v.Intermediate]);
            }
            yield return (b + "mlp.down_proj.weight", [d, v.Intermediate]);
            yield return (b + "mlp.down_proj.bias", [d]);
        }
        yield return ("merger.ln_q.weight", [d]);
        yield return ("merger.mlp.0.weight", [merged, merged]);
        yield return ("merger.mlp.0.bias", [merged]);
        yield return ("merger.mlp.2.weight", [v.OutHidden, merged]);
        yield return ("merger.mlp.2.bias", [v.OutHidden]);
    }

    /// <summary>Whether <paramref name="path"/> is a model folder whose config.json names a Qwen2.5-VL or Omni architecture.</summary>
    public static bool IsQwenVLFolder(string path) => VisionConfigFile.Names(path, QwenVLConfig.SupportedArchitectures);

    /// <summary>
    /// Opens a Qwen2.5-VL or Omni folder: the LM through the ordinary Hugging Face reader under the layout's prefix, the
    /// vision encoder from the same mapped files. An Omni file's talker, token2wav and audio tensors are mapped with the
    /// rest but never read. The caller owns the returned files.
    /// </summary>
    public static (QwenVLConfig Config, QwenLayout Layout, ModelWeights Text, QwenVisionWeights Vision, IReadOnlyList<SafetensorsFile> Files) Load(string folder)
    {
        var config = QwenVLConfig.FromHfConfig(Path.Combine(folder, "config.json"));
        var files = HfCheckpoint.OpenTensorFiles(folder);
        try
        {
            var tensors = HfCheckpoint.Index(files);
            var found = QwenLayout.All.FirstOrDefault(l => tensors.Keys.Any(n => n.StartsWith(l.Vision, StringComparison.Ordinal)))
                ?? throw new UserError($"{folder}: no vision encoder tensors ({string.Join(" or ", QwenLayout.All.Select(l => l.Vision + "*"))}); a Qwen2.5-VL or Omni checkpoint holds its vision encoder beside the language model");
            if ((found == QwenLayout.Thinker) != config.IsOmni)
                throw new UserError(config.IsOmni
                    ? $"{folder}: config.json describes a Qwen2.5-Omni model but the weights are a Qwen2.5-VL checkpoint's ({found.Vision}*, no thinker.*); give the Omni folder, or the VL folder's own config.json"
                    : $"{folder}: config.json describes a Qwen2.5-VL model but the weights are a Qwen2.5-Omni thinker's (thinker.*); give the VL folder, or the Omni folder's own config.json");
            var text = HfCheckpoint.ReadWeights(config.Text, tensors, folder, found.Text);
            return (config, found, text, ReadVision(config.Vision, found, tensors, folder), files);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    private static unsafe QwenVisionWeights ReadVision(QwenVisionConfig v, QwenLayout layout, Dictionary<string, (SafetensorsFile File, SafetensorInfo Info)> tensors, string folder)
    {
        var shapes = VisionTensors(v, layout.SplitQkv).ToDictionary(t => t.Name, t => t.Shape);
        WeightMatrix M(string name) => HfCheckpoint.Matrix(tensors, layout.Vision + name, shapes[name], folder);
        float[] V(string name) => HfCheckpoint.Vector(tensors, layout.Vision + name, shapes[name], folder);
        int d = v.Hidden;
        var blocks = new QwenVisionBlockWeights[v.Depth];
        for (int l = 0; l < v.Depth; l++)
        {
            string b = $"blocks.{l}.";
            WeightMatrix q, k, val;
            float[] qb, kb, vb;
            if (layout.SplitQkv)
            {
                (q, k, val) = (M(b + "attn.q.weight"), M(b + "attn.k.weight"), M(b + "attn.v.weight"));
                (qb, kb, vb) = (V(b + "attn.q.bias"), V(b + "attn.k.bias"), V(b + "attn.v.bias"));
            }
            else
            {
                // The fused rows are [q; k; v] (transformers reshapes the output to [3, heads, head_dim]): three views, no copy.
                var qkv = M(b + "attn.qkv.weight");
                WeightMatrix Rows(int part) => new(d, d, qkv.DType, qkv.Row(part * d), qkv.Owner);
                (q, k, val) = (Rows(0), Rows(1), Rows(2));
                var bias = V(b + "attn.qkv.bias");
                (qb, kb, vb) = (bias[..d], bias[d..(2 * d)], bias[(2 * d)..]);
            }
            blocks[l] = new QwenVisionBlockWeights
            {
                Norm1 = V(b + "norm1.weight"), Norm2 = V(b + "norm2.weight"),
                Q = q, K = k, V = val, QBias = qb, KBias = kb, VBias = vb,
                Proj = M(b + "attn.proj.weight"), ProjBias = V(b + "attn.proj.bias"),
                Gate = M(b + "mlp.gate_proj.weight"), GateBias = V(b + "mlp.gate_proj.bias"),
                Up = M(b + "mlp.up_proj.weight"), UpBias = V(b + "mlp.up_proj.bias"),
                Down = M(b + "mlp.down_proj.weight"), DownBias = V(b + "mlp.down_proj.bias"),
            };
        }
        var patch = M("patch_embed.proj.weight");
        return new QwenVisionWeights
        {
            PatchEmbed = patch,
            PatchEmbedStill = FoldFrames(patch, v),
            Blocks = blocks,
            MergerNorm = V("merger.ln_q.weight"),
            Merger0 = M("merger.mlp.0.weight"), Merger0Bias = V("merger.mlp.0.bias"),
            Merger2 = M("merger.mlp.2.weight"), Merger2Bias = V("merger.mlp.2.bias"),
        };
    }

    /// <summary>
    /// The Conv3d kernel [d, C, frames, P, P] summed over its frames, [d, C x P x P]: on a still image (every frame the
    /// same) the convolution equals this one on a single frame, a GEMM half as long.
    /// </summary>
    private static WeightMatrix FoldFrames(WeightMatrix kernel, QwenVisionConfig v)
    {
        int frames = v.TemporalPatchSize, area = v.PatchSize * v.PatchSize, cols = QwenVisionConfig.Channels * area;
        var folded = new float[kernel.Rows * cols];
        var row = new float[kernel.Cols];
        for (int o = 0; o < kernel.Rows; o++)
        {
            kernel.ReadRow(o, row);
            var dest = folded.AsSpan(o * cols, cols);
            for (int c = 0; c < QwenVisionConfig.Channels; c++)
                for (int f = 0; f < frames; f++)
                    System.Numerics.Tensors.TensorPrimitives.Add(dest.Slice(c * area, area), row.AsSpan((c * frames + f) * area, area), dest.Slice(c * area, area));
        }
        return WeightMatrix.FromSingles(folded, kernel.Rows, cols);
    }

    /// <summary>
    /// Writes a folder of seeded random weights in <paramref name="layout"/> (config.json with every field explicit).
    /// Values depend on the seed and the tensor's hub name only, so every layout holds the same model: the Omni
    /// thinker's q, k and v are the row blocks of the VL file's fused qkv. The LM equals <see cref="RandomModel.WriteHf"/>'s
    /// for the same text config and seed.
    /// </summary>
    public static void WriteRandom(string folder, QwenVLConfig c, QwenLayout layout, ulong seed, WeightDType dtype)
    {
        Directory.CreateDirectory(folder);
        var list = RandomModel.DecoderTensors(c.Text, seed, dtype, layout.Text).ToList();
        int d = c.Vision.Hidden;
        foreach (var (name, shape) in VisionTensors(c.Vision, splitQkv: false))
        {
            string key = QwenLayout.Hub.Vision + name;
            var tensor = name.Contains("norm") || name.Contains("ln_q") ? RandomModel.Vector(layout.Vision + name, key, (int)shape[0], 1f, 0.2f, seed, dtype)
                : shape.Length == 1 ? RandomModel.Vector(layout.Vision + name, key, (int)shape[0], 0f, 0.5f, seed, dtype)
                : RandomModel.Matrix(layout.Vision + name, key, shape, MathF.Sqrt(3f / (shape.Aggregate(1L, (a, b) => a * b) / shape[0])), seed, dtype);
            if (!layout.SplitQkv || !name.Contains("attn.qkv")) { list.Add(tensor); continue; }
            using var bytes = new MemoryStream();
            tensor.WriteData(bytes);
            byte[] all = bytes.ToArray();
            int part = all.Length / 3;
            string stem = name.Replace("attn.qkv", "attn.{0}", StringComparison.Ordinal);
            long[] partShape = shape.Length == 1 ? [d] : [d, d];
            for (int i = 0; i < 3; i++)
            {
                int offset = i * part;
                list.Add(new SafetensorToWrite(layout.Vision + string.Format(System.Globalization.CultureInfo.InvariantCulture, stem, "qkv"[i]), tensor.DType, partShape, s => s.Write(all, offset, part)));
            }
        }
        SafetensorsWriter.Write(Path.Combine(folder, HfCheckpoint.SingleFile), list, new Dictionary<string, string> { ["format"] = "pt", ["seed"] = seed.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        AtomicFile.WriteAllText(Path.Combine(folder, "config.json"), ConfigJson(c, textNested: layout != QwenLayout.Hub));
    }

    /// <summary>
    /// The config.json of <paramref name="c"/>, every field written: VL with its text settings at the top level
    /// (<paramref name="textNested"/> false, the older hub files) or in <c>text_config</c>; Omni inside <c>thinker_config</c>.
    /// </summary>
    public static string ConfigJson(QwenVLConfig c, bool textNested)
    {
        var v = c.Vision;
        var text = JsonNode.Parse(c.Text.ToHfConfigJson())!.AsObject();
        text.Remove("architectures");
        text["model_type"] = c.IsOmni ? "qwen2_5_omni_text" : "qwen2_5_vl_text";
        text["rope_scaling"] = new JsonObject { ["type"] = "mrope", ["mrope_section"] = new JsonArray(c.MropeSection.Select(s => (JsonNode)s).ToArray()) };
        var vision = new JsonObject
        {
            ["depth"] = v.Depth, ["hidden_size"] = v.Hidden, ["hidden_act"] = "silu", ["intermediate_size"] = v.Intermediate, ["num_heads"] = v.Heads,
            ["in_channels"] = QwenVisionConfig.Channels, ["patch_size"] = v.PatchSize, ["spatial_merge_size"] = v.MergeSize,
            ["temporal_patch_size"] = v.TemporalPatchSize, ["window_size"] = v.WindowSize, ["out_hidden_size"] = v.OutHidden,
            ["fullatt_block_indexes"] = new JsonArray(v.FullAttentionBlocks.Select(i => (JsonNode)i).ToArray()),
        };
        var model = new JsonObject
        {
            ["image_token_id"] = c.ImageTokenId, ["vision_start_token_id"] = c.VisionStartTokenId, ["vision_end_token_id"] = c.VisionEndTokenId,
            ["vision_config"] = vision,
        };
        if (textNested || c.IsOmni) model["text_config"] = text;
        else foreach (var (key, value) in text) model[key] = value?.DeepClone();
        var root = c.IsOmni
            ? new JsonObject { ["architectures"] = new JsonArray("Qwen2_5OmniModel"), ["model_type"] = "qwen2_5_omni", ["thinker_config"] = model }
            : model;
        if (!c.IsOmni)
        {
            root["architectures"] = new JsonArray("Qwen2_5_VLForConditionalGeneration");
            root["model_type"] = "qwen2_5_vl";
        }
        return root.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
    }
}
