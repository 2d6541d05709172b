using System.Text.Json.Nodes;
using System.Text.Json;
using TruthProbe.Common;
using TruthProbe.Model;

namespace TruthProbe.Vision;

/// <summary>Which rows of the selected vision layer become image features.</summary>
public enum FeatureSelect
{
    /// <summary>"default": the patch rows, the class token dropped.</summary>
    Default,
    /// <summary>"full": the class token row too.</summary>
    Full,
}

/// <summary>A CLIP vision transformer (transformers' <c>CLIPVisionConfig</c>): square images cut into square patches.</summary>
public sealed record ClipVisionConfig
{
    public required int Hidden { get; init; }
    public required int Intermediate { get; init; }
    public required int Layers { get; init; }
    public required int Heads { get; init; }
    public required int Channels { get; init; }
    public required int ImageSize { get; init; }
    public required int PatchSize { get; init; }
    /// <summary>"quick_gelu" (x sigmoid(1.702 x), CLIP's own) or "gelu" (erf).</summary>
    public required string HiddenAct { get; init; }
    public required float LayerNormEps { get; init; }

    public int HeadDim => Hidden / Heads;
    public int PatchesPerSide => ImageSize / PatchSize;
    public int Patches => PatchesPerSide * PatchesPerSide;
    /// <summary>Rows through the encoder: the class token, then the patches in row-major order.</summary>
    public int Positions => Patches + 1;
    /// <summary>Values of one flattened patch, (channel, y, x) order: a column of the im2col GEMM.</summary>
    public int PatchValues => Channels * PatchSize * PatchSize;
}

/// <summary>
/// A LLaVA checkpoint's config (<c>LlavaForConditionalGeneration</c>, <c>LlavaNextForConditionalGeneration</c> in
/// the llava-hf layout). The hub files are sparse: every field they omit takes the class default of transformers'
/// <c>LlavaConfig</c> / <c>LlavaNextConfig</c>, <c>CLIPVisionConfig</c> and the text model's config class, as
/// transformers itself fills them, so a missing <c>hidden_size</c> means CLIP's 768, not an error.
/// </summary>
public sealed partial record LlavaConfig
{
    /// <summary>"llava" or "llava_next".</summary>
    public required string Architecture { get; init; }
    public required ClipVisionConfig Vision { get; init; }
    public required ModelConfig Text { get; init; }
    /// <summary>The id of <c>&lt;image&gt;</c>, whose positions receive the image features.</summary>
    public required int ImageTokenId { get; init; }
    /// <summary>hidden_states index of the vision layer used: 0 = the embeddings after <c>pre_layrnorm</c>, i = layer i's output, negative from the end.</summary>
    public required int FeatureLayer { get; init; }
    public required FeatureSelect Select { get; init; }
    public required bool ProjectorBias { get; init; }
    /// <summary>LLaVA-NeXT's anyres candidates as (height, width), transformers' reading; empty for LLaVA-1.5.</summary>
    public IReadOnlyList<(int Height, int Width)> GridPinpoints { get; init; } = [];

    /// <summary>Encoder layers that must run to reach <see cref="FeatureLayer"/> (23 of CLIP-L's 24 for -2).</summary>
    public int VisionLayersRun => FeatureLayer < 0 ? Vision.Layers + 1 + FeatureLayer : FeatureLayer;

    /// <summary>Image features per image (= <c>&lt;image&gt;</c> tokens after expansion): 576 for CLIP-L/14 at 336 with "default". For LLaVA-NeXT, per tile (the image's count: <see cref="AnyresLayout"/>).</summary>
    public int ImageTokens => Vision.Patches + (Select == FeatureSelect.Full ? 1 : 0);

    public static readonly IReadOnlyDictionary<string, string> SupportedArchitectures = new Dictionary<string, string>
    {
        ["LlavaForConditionalGeneration"] = "llava",
        ["LlavaNextForConditionalGeneration"] = "llava_next",
    };

    /// <summary>The vision tower both LLaVA config classes build when <c>vision_config</c> is absent (CLIP ViT-L/14 at 336).</summary>
    private static readonly JsonObject LlavaVisionFallback = new()
    {
        ["hidden_size"] = 1024, ["intermediate_size"] = 4096, ["num_hidden_layers"] = 24, ["num_attention_heads"] = 16,
        ["image_size"] = 336, ["patch_size"] = 14,
    };

    /// <summary><c>CLIPVisionConfig</c>'s own defaults (those of openai/clip-vit-base-patch32).</summary>
    private static readonly JsonObject ClipVisionDefaults = new()
    {
        ["hidden_size"] = 768, ["intermediate_size"] = 3072, ["num_hidden_layers"] = 12, ["num_attention_heads"] = 12,
        ["num_channels"] = 3, ["image_size"] = 224, ["patch_size"] = 32, ["hidden_act"] = "quick_gelu", ["layer_norm_eps"] = 1e-5,
    };

    /// <summary>Defaults of the text config classes a LLaVA may nest, with the architecture the decoder reader expects.</summary>
    private static readonly IReadOnlyDictionary<string, JsonObject> TextDefaults = new Dictionary<string, JsonObject>
    {
        ["llama"] = new()
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"), ["vocab_size"] = 32000, ["hidden_size"] = 4096, ["intermediate_size"] = 11008,
            ["num_hidden_layers"] = 32, ["num_attention_heads"] = 32, ["max_position_embeddings"] = 2048, ["rms_norm_eps"] = 1e-6,
            ["rope_theta"] = 10000.0, ["tie_word_embeddings"] = false, ["bos_token_id"] = 1, ["eos_token_id"] = 2,
        },
        ["mistral"] = new()
        {
            ["architectures"] = new JsonArray("MistralForCausalLM"), ["vocab_size"] = 32000, ["hidden_size"] = 4096, ["intermediate_size"] = 14336,
            ["num_hidden_layers"] = 32, ["num_attention_heads"] = 32, ["num_key_value_heads"] = 8, ["max_position_embeddings"] = 4096 * 32,
            ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 10000.0, ["sliding_window"] = 4096, ["tie_word_embeddings"] = false,
            ["bos_token_id"] = 1, ["eos_token_id"] = 2,
        },
    };

    /// <summary>The default grid of <c>LlavaNextConfig</c>.</summary>
    private static readonly int[][] NextPinpointDefaults = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]];

    /// <param name="visionTower">the CLIP folder the original LLaVA layout (<see cref="OriginalArchitecture"/>) takes its tower from.</param>
    public static LlavaConfig FromHfConfig(string path, string? visionTower = null)
    {
        var root = VisionConfigFile.Read(path, "a LLaVA model folder");
        return IsOriginal(root) ? FromOriginal(root, path, visionTower) : FromJson(root, path);
    }

    public static LlavaConfig FromJson(JsonObject root, string path)
    {
        string[] archs = VisionConfigFile.Architectures(root);
        string? architecture = archs.Select(x => SupportedArchitectures.GetValueOrDefault(x)).FirstOrDefault(x => x != null);
        if (architecture == null)
            throw new UserError($"{path}: field 'architectures' is [{string.Join(", ", archs)}]; supported vision-language models: {string.Join(", ", SupportedArchitectures.Keys)}");

        var vision = VisionFromJson(root["vision_config"], path);
        var text = TextFromJson(root["text_config"], $"{path} (text_config)");

        int featureLayer = root["vision_feature_layer"] switch
        {
            null => -2,
            JsonArray list => throw new UserError($"{path}: field 'vision_feature_layer' is a list ({list.ToJsonString()}); features concatenated from several layers are not supported, only a single layer index"),
            var v => IntOf(v, "vision_feature_layer", path),
        };
        if (featureLayer < -(vision.Layers + 1) || featureLayer > vision.Layers)
            throw new UserError($"{path}: field 'vision_feature_layer' is {featureLayer}, outside the {vision.Layers}-layer vision tower's hidden states [{-(vision.Layers + 1)}, {vision.Layers}]");

        string strategy = StringOf(root, "vision_feature_select_strategy", "default", path);
        var select = strategy switch
        {
            "default" => FeatureSelect.Default,
            "full" => FeatureSelect.Full,
            _ => throw new UserError($"{path}: field 'vision_feature_select_strategy' is '{strategy}'; supported: default, full"),
        };
        string act = StringOf(root, "projector_hidden_act", "gelu", path);
        if (act != "gelu") throw new UserError($"{path}: field 'projector_hidden_act' is '{act}'; supported: gelu");

        // Newer transformers writes image_token_id (an alias of image_token_index).
        int imageToken = root["image_token_index"] is { } it ? IntOf(it, "image_token_index", path)
            : root["image_token_id"] is { } id ? IntOf(id, "image_token_id", path) : 32000;
        // An id past the embedding table is legal in transformers (the class defaults themselves pair 32000 with a
        // 32000-row vocabulary); the decoder rejects such ids when they reach it.
        if (imageToken < 0) throw new UserError($"{path}: image token id {imageToken} is negative");

        var pinpoints = architecture != "llava_next" ? [] : Pinpoints(root["image_grid_pinpoints"], path);
        if (architecture == "llava_next") CheckAnyres(pinpoints, vision, select, path);
        return new LlavaConfig
        {
            Architecture = architecture,
            Vision = vision,
            Text = text,
            ImageTokenId = imageToken,
            FeatureLayer = featureLayer,
            Select = select,
            ProjectorBias = root["multimodal_projector_bias"] is not { } bias || BoolOf(bias, "multimodal_projector_bias", path),
            GridPinpoints = pinpoints,
        };
    }

    private static ClipVisionConfig VisionFromJson(JsonNode? node, string path)
    {
        string source = $"{path} (vision_config)";
        if (node is not (null or JsonObject)) throw new UserError($"{source}: expected a JSON object");
        var given = node as JsonObject ?? LlavaVisionFallback;
        string type = given["model_type"] is { } t ? StringOf(given, "model_type", "", source) : "clip_vision_model";
        if (type != "clip_vision_model") throw new UserError($"{source}: field 'model_type' is '{type}'; supported vision towers: clip_vision_model");
        var v = Completed(given, ClipVisionDefaults);
        int Int(string field) => IntOf(v[field]!, field, source);
        var config = new ClipVisionConfig
        {
            Hidden = Int("hidden_size"), Intermediate = Int("intermediate_size"), Layers = Int("num_hidden_layers"), Heads = Int("num_attention_heads"),
            Channels = Int("num_channels"), ImageSize = Int("image_size"), PatchSize = Int("patch_size"),
            HiddenAct = StringOf(v, "hidden_act", "", source),
            LayerNormEps = (float)DoubleOf(v["layer_norm_eps"]!, "layer_norm_eps", source),
        };
        void Require(bool ok, string what) { if (!ok) throw new UserError($"{source}: {what}"); }
        Require(config.Hidden > 0 && config.Intermediate > 0 && config.Layers > 0 && config.Heads > 0 && config.Channels > 0 && config.PatchSize > 0,
            "hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_channels and patch_size must all be positive");
        Require(config.Hidden % config.Heads == 0, $"hidden_size ({config.Hidden}) must be a multiple of num_attention_heads ({config.Heads})");
        Require(config.ImageSize > 0 && config.ImageSize % config.PatchSize == 0, $"image_size ({config.ImageSize}) must be a positive multiple of patch_size ({config.PatchSize})");
        Require(config.HiddenAct is "quick_gelu" or "gelu", $"field 'hidden_act' is '{config.HiddenAct}'; supported: quick_gelu, gelu");
        return config;
    }

    private static ModelConfig TextFromJson(JsonNode? node, string source)
    {
        if (node is not (null or JsonObject)) throw new UserError($"{source}: expected a JSON object");
        var given = node as JsonObject ?? new JsonObject();
        string type = given["model_type"] is { } ? StringOf(given, "model_type", "", source) : "llama";
        if (!TextDefaults.TryGetValue(type, out var defaults))
            throw new UserError($"{source}: field 'model_type' is '{type}'; supported text models: {string.Join(", ", TextDefaults.Keys)}");
        var completed = Completed(given, defaults);
        using var doc = JsonDocument.Parse(completed.ToJsonString());
        return ModelConfig.FromHfJson(doc.RootElement, source);
    }

    /// <summary>A copy of <paramref name="given"/> with every field it lacks taken from <paramref name="defaults"/>.</summary>
    private static JsonObject Completed(JsonObject given, JsonObject defaults)
    {
        var result = (JsonObject)given.DeepClone();
        foreach (var (key, value) in defaults)
            if (!result.ContainsKey(key)) result[key] = value?.DeepClone();
        return result;
    }

    private static IReadOnlyList<(int Height, int Width)> Pinpoints(JsonNode? node, string path)
    {
        if (node == null) return NextPinpointDefaults.Select(p => (p[0], p[1])).ToArray();
        if (node is JsonArray list && list.All(p => p is JsonArray { Count: 2 } pair && pair.All(x => x?.GetValueKind() == JsonValueKind.Number)))
        {
            var result = list.Select(p => (IntOf(p![0]!, "image_grid_pinpoints", path), IntOf(p[1]!, "image_grid_pinpoints", path))).ToArray();
            if (result.Length > 0 && result.All(p => p.Item1 > 0 && p.Item2 > 0)) return result;
        }
        throw new UserError($"{path}: field 'image_grid_pinpoints' must be a non-empty list of [height, width] pairs of positive integers, got {node.ToJsonString()}");
    }

    /// <summary>
    /// What LLaVA-NeXT's packing needs of the config: every pinpoint a whole grid of tiles of the tower's image size
    /// (transformers cuts a partial tile the model's grid arithmetic does not count), and the class row dropped (the
    /// per-tile feature map is a square of patches).
    /// </summary>
    private static void CheckAnyres(IReadOnlyList<(int Height, int Width)> pinpoints, ClipVisionConfig vision, FeatureSelect select, string path)
    {
        int tile = vision.ImageSize;
        var misfit = pinpoints.Where(p => p.Height % tile != 0 || p.Width % tile != 0 || (long)p.Height * p.Width > 1L << 26).Select(p => $"[{p.Height}, {p.Width}]").ToArray();
        if (misfit.Length > 0)
            throw new UserError($"{path}: field 'image_grid_pinpoints' holds {string.Join(", ", misfit)}, which the anyres grid cannot tile: every [height, width] must be a multiple of the vision tower's image_size {tile} (and at most 2^26 pixels)");
        if (select != FeatureSelect.Default)
            throw new UserError($"{path}: field 'vision_feature_select_strategy' is 'full'; LLaVA-NeXT's grid of patch features needs 'default' (the class row dropped)");
    }

    private static int IntOf(JsonNode node, string field, string path) =>
        node.GetValueKind() == JsonValueKind.Number && node.AsValue().TryGetValue(out int i) ? i
        : node.GetValueKind() == JsonValueKind.Number && node.AsValue().TryGetValue(out double d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue ? (int)d
        : throw new UserError($"{path}: field '{field}' must be an integer, got {node.ToJsonString()}");

    private static double DoubleOf(JsonNode node, string field, string path) =>
        node.GetValueKind() == JsonValueKind.Number ? node.GetValue<double>() : throw new UserError($"{path}: field '{field}' must be a number, got {node.ToJsonString()}");

    private static bool BoolOf(JsonNode node, string field, string path) =>
        node.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? node.GetValue<bool>() : throw new UserError($"{path}: field '{field}' must be true or false, got {node.ToJsonString()}");

    private static string StringOf(JsonObject o, string field, string fallback, string path) => o[field] switch
    {
        null => fallback,
        var v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        var v => throw new UserError($"{path}: field '{field}' must be a string, got {v.ToJsonString()}"),
    };
}
