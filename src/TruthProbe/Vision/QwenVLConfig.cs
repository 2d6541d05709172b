using System.Text.Json;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Model;

namespace TruthProbe.Vision;

/// <summary>
/// The Qwen2.5-VL vision encoder (transformers' <c>Qwen2_5_VLVisionConfig</c>; the Omni thinker's
/// <c>Qwen2_5OmniVisionEncoderConfig</c> has the same fields): a ViT over 14 x 14 x 2-frame patches with 2D rotary
/// positions, windowed attention except in <see cref="FullAttentionBlocks"/>, and a 2 x 2 patch merger to the LM width.
/// </summary>
public sealed record QwenVisionConfig
{
    public required int Depth { get; init; }
    public required int Hidden { get; init; }
    public required int Intermediate { get; init; }
    public required int Heads { get; init; }
    public required int PatchSize { get; init; }
    public required int TemporalPatchSize { get; init; }
    public required int MergeSize { get; init; }
    /// <summary>Window side in pixels (112: 8 x 8 patches, 4 x 4 merged tokens).</summary>
    public required int WindowSize { get; init; }
    /// <summary>The merger's output width, the LM's d_model.</summary>
    public required int OutHidden { get; init; }
    /// <summary>Blocks that attend over the whole image; the others attend within windows.</summary>
    public required IReadOnlyList<int> FullAttentionBlocks { get; init; }
    public const int Channels = 3;
    /// <summary>The blocks' and the merger's RMSNorm epsilon (fixed in the reference, not in the config).</summary>
    public const float RmsEps = 1e-6f;

    public int HeadDim => Hidden / Heads;
    /// <summary>Values of one pixel row: channel x frame x y x x (1,176).</summary>
    public int PatchValues => Channels * TemporalPatchSize * PatchSize * PatchSize;
    /// <summary>Patches per LM token (4).</summary>
    public int MergeUnit => MergeSize * MergeSize;
    /// <summary>Window side in merged tokens (112 / 2 / 14 = 4).</summary>
    public int WindowTokens => WindowSize / MergeSize / PatchSize;
}

/// <summary>
/// A Qwen2.5-VL (<c>Qwen2_5_VLForConditionalGeneration</c>) or Qwen2.5-Omni (<c>Qwen2_5OmniModel</c> /
/// <c>Qwen2_5OmniForConditionalGeneration</c>, its <c>thinker_config</c> only) config. The LM is Qwen2 read by the
/// decoder's own reader; M-RoPE's <c>mrope_section</c> is taken out of its rope settings here. Fields the file omits
/// take the class defaults of transformers.
/// </summary>
public sealed record QwenVLConfig
{
    /// <summary>"qwen2_5_vl" or "qwen2_5_omni".</summary>
    public required string Architecture { get; init; }
    public required QwenVisionConfig Vision { get; init; }
    public required ModelConfig Text { get; init; }
    /// <summary><c>&lt;|image_pad|&gt;</c> (VL) = <c>&lt;|IMAGE|&gt;</c> (Omni), 151655.</summary>
    public required int ImageTokenId { get; init; }
    public required int VisionStartTokenId { get; init; }
    public required int VisionEndTokenId { get; init; }
    /// <summary>Rotary frequencies per position row (temporal, height, width): [16, 24, 24] for head 128.</summary>
    public required IReadOnlyList<int> MropeSection { get; init; }

    public bool IsOmni => Architecture == "qwen2_5_omni";

    public static readonly IReadOnlyDictionary<string, string> SupportedArchitectures = new Dictionary<string, string>
    {
        ["Qwen2_5_VLForConditionalGeneration"] = "qwen2_5_vl",
        ["Qwen2_5OmniModel"] = "qwen2_5_omni",
        ["Qwen2_5OmniForConditionalGeneration"] = "qwen2_5_omni",
    };

    private static readonly JsonObject VisionDefaults = new()
    {
        ["depth"] = 32, ["hidden_size"] = 3584, ["hidden_act"] = "silu", ["intermediate_size"] = 3420, ["num_heads"] = 16,
        ["in_channels"] = 3, ["patch_size"] = 14, ["spatial_merge_size"] = 2, ["temporal_patch_size"] = 2, ["window_size"] = 112,
        ["out_hidden_size"] = 3584, ["fullatt_block_indexes"] = new JsonArray(7, 15, 23, 31),
    };

    /// <summary><c>Qwen2_5_VLTextConfig</c> (the 72B shape) and <c>Qwen2_5OmniTextConfig</c> (the 7B thinker).</summary>
    private static readonly IReadOnlyDictionary<string, JsonObject> TextDefaults = new Dictionary<string, JsonObject>
    {
        ["qwen2_5_vl"] = new()
        {
            ["vocab_size"] = 152064, ["hidden_size"] = 8192, ["intermediate_size"] = 29568, ["num_hidden_layers"] = 80,
            ["num_attention_heads"] = 64, ["num_key_value_heads"] = 8, ["max_position_embeddings"] = 32768, ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 1000000.0, ["tie_word_embeddings"] = false,
        },
        ["qwen2_5_omni"] = new()
        {
            ["vocab_size"] = 152064, ["hidden_size"] = 3584, ["intermediate_size"] = 18944, ["num_hidden_layers"] = 28,
            ["num_attention_heads"] = 28, ["num_key_value_heads"] = 4, ["max_position_embeddings"] = 32768, ["rms_norm_eps"] = 1e-6,
            ["rope_theta"] = 1000000.0, ["tie_word_embeddings"] = false,
        },
    };

    private static readonly int[] DefaultMropeSection = [16, 24, 24];

    public static QwenVLConfig FromHfConfig(string path) => FromJson(VisionConfigFile.Read(path, "a Qwen2.5-VL or Omni model folder"), path);

    public static QwenVLConfig FromJson(JsonObject root, string path)
    {
        string[] archs = VisionConfigFile.Architectures(root);
        string architecture = archs.Select(x => SupportedArchitectures.GetValueOrDefault(x)).FirstOrDefault(x => x != null)
            ?? throw new UserError($"{path}: field 'architectures' is [{string.Join(", ", archs)}]; supported Qwen vision-language models: {string.Join(", ", SupportedArchitectures.Keys)}");
        string where = path;
        var model = root;
        if (architecture == "qwen2_5_omni")
        {
            // Only the thinker reads images and writes text; the talker and token2wav speak, and are never read.
            model = root["thinker_config"] as JsonObject
                ?? throw new UserError($"{path}: an Omni config without a 'thinker_config' object; the thinker (vision encoder + LM) is the part this loads");
            where = $"{path} (thinker_config)";
        }
        // Text settings sit in text_config (newer files, and always in the Omni thinker) or at the top level (older VL files).
        var text = model["text_config"] switch
        {
            null => model,
            JsonObject t => t,
            _ => throw new UserError($"{where}: field 'text_config' must be a JSON object"),
        };
        string textWhere = ReferenceEquals(text, model) ? where : $"{where} (text_config)";
        var (textConfig, section) = TextFromJson(text, TextDefaults[architecture], textWhere);
        var vision = VisionFromJson(model["vision_config"], $"{where} (vision_config)");
        if (vision.OutHidden != textConfig.DModel)
            throw new UserError($"{where}: vision_config.out_hidden_size ({vision.OutHidden}) must equal the LM's hidden_size ({textConfig.DModel}): the merger's rows replace LM embeddings");

        using var ids = JsonDocument.Parse(model.ToJsonString());
        int Id(string[] fields, int fallback)
        {
            foreach (string f in fields)
                if (JsonFields.TryGet(ids.RootElement, f, out var v)) return JsonFields.Int32(v, $"{where}: field '{f}'", 0);
            return fallback;
        }
        return new QwenVLConfig
        {
            Architecture = architecture,
            Vision = vision,
            Text = textConfig,
            ImageTokenId = Id(["image_token_id", "image_token_index"], 151655),
            VisionStartTokenId = Id(["vision_start_token_id"], 151652),
            VisionEndTokenId = Id(["vision_end_token_id"], 151653),
            MropeSection = section,
        };
    }

    /// <summary>
    /// The completed text settings through <see cref="ModelConfig.FromHfJson"/> as a Qwen2 decoder, with the rope settings'
    /// <c>mrope_section</c> taken out and type <c>mrope</c> (the older spelling) read as <c>default</c>: both are M-RoPE.
    /// </summary>
    private static (ModelConfig Config, int[] Section) TextFromJson(JsonObject given, JsonObject defaults, string where)
    {
        var text = (JsonObject)given.DeepClone();
        foreach (var (key, value) in defaults)
            if (text[key] is null) text[key] = value?.DeepClone();
        text["architectures"] = new JsonArray("Qwen2ForCausalLM");
        int[]? section = null;
        foreach (string field in new[] { "rope_scaling", "rope_parameters" })
        {
            if (text[field] is not JsonObject rope) continue;
            if (rope["mrope_section"] is { } s)
            {
                section = s is JsonArray list && list.All(x => x?.GetValueKind() == JsonValueKind.Number && x.AsValue().TryGetValue(out int n) && n > 0)
                    ? list.Select(x => x!.GetValue<int>()).ToArray()
                    : throw new UserError($"{where}: field '{field}.mrope_section' must be a list of positive integers, got {s.ToJsonString()}");
                rope.Remove("mrope_section");
            }
            foreach (string typeField in new[] { "type", "rope_type" })
                if (rope[typeField] is { } t && t.GetValueKind() == JsonValueKind.String && t.GetValue<string>() == "mrope") rope[typeField] = "default";
        }
        using var doc = JsonDocument.Parse(text.ToJsonString());
        var config = ModelConfig.FromHfJson(doc.RootElement, where);
        section ??= DefaultMropeSection;
        if (section.Length != 3 || section.Sum() != config.HeadDim / 2)
            throw new UserError($"{where}: mrope_section [{string.Join(", ", section)}] must be 3 numbers (temporal, height, width) adding up to head_dim / 2 = {config.HeadDim / 2}");
        return (config, section);
    }

    private static QwenVisionConfig VisionFromJson(JsonNode? node, string where)
    {
        if (node is not (null or JsonObject)) throw new UserError($"{where}: expected a JSON object");
        var v = (JsonObject)(node ?? new JsonObject()).DeepClone();
        foreach (var (key, value) in VisionDefaults)
            if (v[key] is null) v[key] = value?.DeepClone();
        using var doc = JsonDocument.Parse(v.ToJsonString());
        var e = doc.RootElement;
        int Int(string field) => JsonFields.Int32(e.GetProperty(field), $"{where}: field '{field}'", 1);
        string act = JsonFields.String(e.GetProperty("hidden_act"), $"{where}: field 'hidden_act'");
        if (act != "silu") throw new UserError($"{where}: field 'hidden_act' is '{act}'; supported: silu (the vision MLP is SwiGLU)");
        if (Int("in_channels") != QwenVisionConfig.Channels) throw new UserError($"{where}: field 'in_channels' is {Int("in_channels")}; images are RGB, 3 channels");
        int depth = Int("depth");
        var full = JsonFields.Array(e.GetProperty("fullatt_block_indexes"), $"{where}: field 'fullatt_block_indexes'").EnumerateArray()
            .Select(x => JsonFields.Int32(x, $"{where}: field 'fullatt_block_indexes'", 0, depth - 1)).ToArray();
        var config = new QwenVisionConfig
        {
            Depth = depth, Hidden = Int("hidden_size"), Intermediate = Int("intermediate_size"), Heads = Int("num_heads"),
            PatchSize = Int("patch_size"), TemporalPatchSize = Int("temporal_patch_size"), MergeSize = Int("spatial_merge_size"),
            WindowSize = Int("window_size"), OutHidden = Int("out_hidden_size"), FullAttentionBlocks = full,
        };
        if (config.Hidden % config.Heads != 0 || config.HeadDim % 4 != 0)
            throw new UserError($"{where}: hidden_size ({config.Hidden}) / num_heads ({config.Heads}) must be a whole head size divisible by 4 (2D rotary: half the head for rows, half for columns, each in pairs)");
        if (config.WindowSize % (config.PatchSize * config.MergeSize) != 0)
            throw new UserError($"{where}: window_size ({config.WindowSize}) must be a multiple of patch_size x spatial_merge_size ({config.PatchSize * config.MergeSize})");
        return config;
    }
}
