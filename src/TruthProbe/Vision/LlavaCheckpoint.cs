using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Model;

namespace TruthProbe.Vision;

/// <summary>
/// Where a llava-hf checkpoint keeps its three parts. The hub files use the names the converter wrote
/// (<see cref="Hub"/>); transformers 4.52 and later re-save under <see cref="Nested"/>. The decoder's own names
/// come from <see cref="CheckpointTensor"/> with <see cref="Text"/> as prefix.
/// </summary>
public sealed record LlavaLayout(string Vision, string Projector, HfPrefix Text)
{
    /// <summary>LLaVA-NeXT's <c>image_newline</c> parameter, beside the projector.</summary>
    public string Newline { get; init; } = "image_newline";
    /// <summary>The projector's two linears (<c>nn.Sequential</c> indices 0 and 2 in the original layout).</summary>
    public string Linear1 { get; init; } = "linear_1";
    public string Linear2 { get; init; } = "linear_2";

    /// <summary>
    /// liuhaotian/llava-v1.5: a plain Llama checkpoint plus <c>model.mm_projector.0/2</c>; the vision tower's
    /// <c>vision_model.*</c> come from the separate CLIP folder.
    /// </summary>
    public static readonly LlavaLayout Original = new("vision_model.", "model.mm_projector.", HfPrefix.Decoder) { Linear1 = "0", Linear2 = "2" };

    /// <summary>The projector tensor <paramref name="name"/> (as <see cref="LlavaCheckpoint.ProjectorTensors"/> names it) in this layout.</summary>
    public string ProjectorName(string name) => Projector + name.Replace("linear_1.", Linear1 + ".", StringComparison.Ordinal).Replace("linear_2.", Linear2 + ".", StringComparison.Ordinal);

    public static readonly LlavaLayout Hub = new("vision_tower.vision_model.", "multi_modal_projector.", new HfPrefix("language_model.model.", "language_model."));
    public static readonly LlavaLayout Nested = new("model.vision_tower.vision_model.", "model.multi_modal_projector.", new HfPrefix("model.language_model.", "")) { Newline = "model.image_newline" };

    public static readonly LlavaLayout[] All = [Hub, Nested];
}

/// <summary>Reads (and, for tests and benchmarks, writes) llava-hf folders: config.json and safetensors, memory-mapped once.</summary>
public static class LlavaCheckpoint
{
    /// <summary>
    /// The vision tower's and projector's tensors with their shapes (names after the layout's prefix), the one table
    /// of names that the reader and <see cref="WriteRandom"/> share. Only the encoder layers that run are listed.
    /// </summary>
    public static IEnumerable<(string Name, long[] Shape)> VisionTensors(LlavaConfig c)
    {
        var v = c.Vision;
        int d = v.Hidden;
        yield return ("embeddings.patch_embedding.weight", [d, v.Channels, v.PatchSize, v.PatchSize]);
        yield return ("embeddings.class_embedding", [d]);
        yield return ("embeddings.position_embedding.weight", [v.Positions, d]);
        yield return ("pre_layrnorm.weight", [d]);
        yield return ("pre_layrnorm.bias", [d]);
        for (int l = 0; l < c.VisionLayersRun; l++)
            foreach (var (name, shape) in LayerTensors(v))
                yield return ($"encoder.layers.{l}.{name}", shape);
    }

    private static IEnumerable<(string Name, long[] Shape)> LayerTensors(ClipVisionConfig v)
    {
        int d = v.Hidden;
        yield return ("layer_norm1.weight", [d]);
        yield return ("layer_norm1.bias", [d]);
        foreach (string proj in new[] { "q_proj", "k_proj", "v_proj", "out_proj" })
        {
            yield return ($"self_attn.{proj}.weight", [d, d]);
            yield return ($"self_attn.{proj}.bias", [d]);
        }
        yield return ("layer_norm2.weight", [d]);
        yield return ("layer_norm2.bias", [d]);
        yield return ("mlp.fc1.weight", [v.Intermediate, d]);
        yield return ("mlp.fc1.bias", [v.Intermediate]);
        yield return ("mlp.fc2.weight", [d, v.Intermediate]);
        yield return ("mlp.fc2.bias", [d]);
    }

    /// <summary>The projector's tensors (names after the layout's projector prefix).</summary>
    public static IEnumerable<(string Name, long[] Shape)> ProjectorTensors(LlavaConfig c)
    {
        int dModel = c.Text.DModel;
        yield return ("linear_1.weight", [dModel, c.Vision.Hidden]);
        if (c.ProjectorBias) yield return ("linear_1.bias", [dModel]);
        yield return ("linear_2.weight", [dModel, dModel]);
        if (c.ProjectorBias) yield return ("linear_2.bias", [dModel]);
    }

    /// <summary>Whether <paramref name="path"/> is a model folder whose config.json names a LLaVA architecture.</summary>
    public static bool IsLlavaFolder(string path) => VisionConfigFile.Names(path, LlavaConfig.SupportedArchitectures)
        || VisionConfigFile.Names(path, new Dictionary<string, string> { [LlavaConfig.OriginalArchitecture] = "llava" });

    /// <summary>
    /// Opens a llava-hf folder: the decoder through the ordinary Hugging Face reader under the layout's prefix,
    /// the tower and projector from the same mapped files; for the original layout the tower from
    /// <paramref name="visionTower"/>'s files. The caller owns the returned files.
    /// </summary>
    public static (LlavaConfig Config, LlavaLayout Layout, ModelWeights Text, ClipWeights Vision, ProjectorWeights Projector, IReadOnlyList<SafetensorsFile> Files) Load(string folder, string? visionTower = null)
    {
        var config = LlavaConfig.FromHfConfig(Path.Combine(folder, "config.json"), visionTower);
        var files = HfCheckpoint.OpenTensorFiles(folder);
        try
        {
            var tensors = HfCheckpoint.Index(files);
            var visionTensors = tensors;
            string visionFolder = folder;
            if (config.Original)
            {
                visionFolder = visionTower!;
                var towerFiles = HfCheckpoint.OpenTensorFiles(visionFolder);
                files.AddRange(towerFiles);
                visionTensors = HfCheckpoint.Index(towerFiles);
            }
            var layout = config.Original ? LlavaLayout.Original
                : LlavaLayout.All.FirstOrDefault(l => tensors.Keys.Any(n => n.StartsWith(l.Vision, StringComparison.Ordinal)))
                ?? throw new UserError($"{folder}: no vision tower tensors ({string.Join(" or ", LlavaLayout.All.Select(l => l.Vision + "*"))}); a LLaVA checkpoint holds its CLIP tower beside the language model");
            var text = HfCheckpoint.ReadWeights(config.Text, tensors, folder, layout.Text);

            var visionShapes = VisionTensors(config).ToDictionary(t => t.Name, t => t.Shape);
            WeightMatrix VisionMatrix(string name) => HfCheckpoint.Matrix(visionTensors, layout.Vision + name, visionShapes[name], visionFolder);
            float[] VisionVector(string name) => HfCheckpoint.Vector(visionTensors, layout.Vision + name, visionShapes[name], visionFolder);
            var layers = new ClipLayerWeights[config.VisionLayersRun];
            for (int l = 0; l < layers.Length; l++)
            {
                WeightMatrix M(string name) => VisionMatrix($"encoder.layers.{l}.{name}");
                float[] V(string name) => VisionVector($"encoder.layers.{l}.{name}");
                layers[l] = new ClipLayerWeights
                {
                    Norm1Weight = V("layer_norm1.weight"), Norm1Bias = V("layer_norm1.bias"),
                    Q = M("self_attn.q_proj.weight"), K = M("self_attn.k_proj.weight"), V = M("self_attn.v_proj.weight"), O = M("self_attn.out_proj.weight"),
                    QBias = V("self_attn.q_proj.bias"), KBias = V("self_attn.k_proj.bias"), VBias = V("self_attn.v_proj.bias"), OBias = V("self_attn.out_proj.bias"),
                    Norm2Weight = V("layer_norm2.weight"), Norm2Bias = V("layer_norm2.bias"),
                    Fc1 = M("mlp.fc1.weight"), Fc1Bias = V("mlp.fc1.bias"), Fc2 = M("mlp.fc2.weight"), Fc2Bias = V("mlp.fc2.bias"),
                };
            }
            var vision = new ClipWeights
            {
                PatchEmbedding = VisionMatrix("embeddings.patch_embedding.weight"),
                ClassEmbedding = VisionVector("embeddings.class_embedding"),
                PositionEmbedding = VisionVector("embeddings.position_embedding.weight"),
                PreNormWeight = VisionVector("pre_layrnorm.weight"),
                PreNormBias = VisionVector("pre_layrnorm.bias"),
                Layers = layers,
            };

            var projectorShapes = ProjectorTensors(config).ToDictionary(t => t.Name, t => t.Shape);
            float[]? Bias(string name) => config.ProjectorBias ? HfCheckpoint.Vector(tensors, layout.ProjectorName(name), projectorShapes[name], folder) : null;
            var projector = new ProjectorWeights
            {
                Linear1 = HfCheckpoint.Matrix(tensors, layout.ProjectorName("linear_1.weight"), projectorShapes["linear_1.weight"], folder),
                Bias1 = Bias("linear_1.bias"),
                Linear2 = HfCheckpoint.Matrix(tensors, layout.ProjectorName("linear_2.weight"), projectorShapes["linear_2.weight"], folder),
                Bias2 = Bias("linear_2.bias"),
                ImageNewline = config.Architecture == "llava_next" ? HfCheckpoint.Vector(tensors, layout.Newline, [config.Text.DModel], folder) : null,
            };
            return (config, layout, text, vision, projector, files);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes a llava-hf folder of seeded random weights in <paramref name="layout"/> (config.json with every field
    /// explicit). Values depend on the seed and the tensor's name within its part only, so both layouts hold the same
    /// model, and its decoder equals <see cref="RandomModel.WriteHf"/>'s for the same text config and seed. Tensors of
    /// vision layers past the selected one are written too, as a real checkpoint has them.
    /// </summary>
    public static void WriteRandom(string folder, LlavaConfig c, LlavaLayout layout, ulong seed, WeightDType dtype)
    {
        Directory.CreateDirectory(folder);
        var full = c with { FeatureLayer = c.Vision.Layers };
        var list = RandomModel.DecoderTensors(c.Text, seed, dtype, layout.Text).ToList();
        foreach (var (name, shape) in VisionTensors(full))
        {
            string key = LlavaLayout.Hub.Vision + name;
            if (shape.Length > 1) list.Add(RandomModel.Matrix(layout.Vision + name, key, shape, MathF.Sqrt(3f / (shape.Aggregate(1L, (a, b) => a * b) / shape[0])), seed, dtype));
            else if (name.Contains("norm")) list.Add(RandomModel.Vector(layout.Vision + name, key, (int)shape[0], 1f, 0.2f, seed, dtype));
            else list.Add(RandomModel.Vector(layout.Vision + name, key, (int)shape[0], 0f, name.Contains("embedding") ? 1f : 0.5f, seed, dtype));
        }
        foreach (var (name, shape) in ProjectorTensors(c))
        {
            string key = LlavaLayout.Hub.Projector + name;
            list.Add(shape.Length > 1 ? RandomModel.Matrix(layout.Projector + name, key, shape, MathF.Sqrt(3f / shape[1]), seed, dtype)
                : RandomModel.Vector(layout.Projector + name, key, (int)shape[0], 0f, 0.5f, seed, dtype));
        }
        if (c.Architecture == "llava_next") list.Add(RandomModel.Vector(layout.Newline, LlavaLayout.Hub.Newline, c.Text.DModel, 0f, 1f, seed, dtype));
        SafetensorsWriter.Write(Path.Combine(folder, HfCheckpoint.SingleFile), list, new Dictionary<string, string> { ["format"] = "pt", ["seed"] = seed.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        AtomicFile.WriteAllText(Path.Combine(folder, "config.json"), ConfigJson(c));
    }

    /// <summary>The config.json of <paramref name="c"/>, every field written.</summary>
    public static string ConfigJson(LlavaConfig c)
    {
        var v = c.Vision;
        var root = new JsonObject
        {
            ["architectures"] = new JsonArray(LlavaConfig.SupportedArchitectures.First(kv => kv.Value == c.Architecture).Key),
            ["model_type"] = c.Architecture,
            ["image_token_index"] = c.ImageTokenId,
            ["projector_hidden_act"] = "gelu",
            ["vision_feature_layer"] = c.FeatureLayer,
            ["vision_feature_select_strategy"] = c.Select == FeatureSelect.Default ? "default" : "full",
            ["multimodal_projector_bias"] = c.ProjectorBias,
            ["text_config"] = JsonNode.Parse(c.Text.ToHfConfigJson()),
            ["vision_config"] = new JsonObject
            {
                ["model_type"] = "clip_vision_model", ["hidden_size"] = v.Hidden, ["intermediate_size"] = v.Intermediate,
                ["num_hidden_layers"] = v.Layers, ["num_attention_heads"] = v.Heads, ["num_channels"] = v.Channels,
                ["image_size"] = v.ImageSize, ["patch_size"] = v.PatchSize, ["hidden_act"] = v.HiddenAct, ["layer_norm_eps"] = v.LayerNormEps,
            },
        };
        if (c.Architecture == "llava_next")
            root["image_grid_pinpoints"] = new JsonArray(c.GridPinpoints.Select(p => (JsonNode)new JsonArray(p.Height, p.Width)).ToArray());
        return root.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
    }
}
