using System.Text.Json;
using System.Text.Json.Nodes;
using TruthProbe.Common;

namespace TruthProbe.Vision;

/// <summary>
/// The original LLaVA release (<c>liuhaotian/llava-v1.5-7b</c>, class <c>LlavaLlamaForCausalLM</c>): a Llama config
/// with <c>mm_*</c> fields, the projector as <c>model.mm_projector.0/2</c>, and no vision tower in the checkpoint (it
/// names one, <c>mm_vision_tower</c>, which the user supplies as a CLIP folder). Read by translating it to the llava-hf
/// config that transformers' conversion script writes for it, so both layouts share one reader and one model.
/// </summary>
public sealed partial record LlavaConfig
{
    public const string OriginalArchitecture = "LlavaLlamaForCausalLM";

    /// <summary>LLaVA's IMAGE_TOKEN_INDEX: the id <c>tokenizer_image_token</c> puts where <c>&lt;image&gt;</c> was; outside the vocabulary.</summary>
    public const int OriginalImageToken = -200;

    /// <summary>The checkpoint is in the original layout: image token <see cref="OriginalImageToken"/>, tower from a separate CLIP folder, images padded to square by default.</summary>
    public bool Original { get; init; }

    /// <summary>The original config's <c>mm_vision_tower</c> (the CLIP checkpoint it was trained with); null for llava-hf.</summary>
    public string? VisionTowerName { get; init; }

    /// <summary>LLaVA's <c>image_aspect_ratio = "pad"</c> (expand2square before CLIP's preprocessing); llava-hf processors crop.</summary>
    public bool PadToSquare { get; init; }

    private static bool IsOriginal(JsonObject root) =>
        root["architectures"] is JsonArray a && a.Any(x => x?.GetValueKind() == JsonValueKind.String && x.GetValue<string>() == OriginalArchitecture);

    private static LlavaConfig FromOriginal(JsonObject root, string path, string? visionTower)
    {
        string towerName = StringOf(root, "mm_vision_tower", "", path);
        if (visionTower == null)
            throw new UserError($"{path}: an original-layout LLaVA checkpoint holds no vision tower; its mm_vision_tower is '{towerName}': give that CLIP checkpoint's folder with --vision-tower DIR");
        string towerConfigPath = Path.Combine(visionTower, "config.json");
        var towerRoot = VisionConfigFile.Read(towerConfigPath, "the CLIP folder given with --vision-tower");
        // A CLIPVisionModel folder has the vision fields at the top; a whole CLIPModel nests them.
        var visionConfig = towerRoot["vision_config"] as JsonObject ?? towerRoot;

        string projector = StringOf(root, "mm_projector_type", "linear", path);
        if (projector != "mlp2x_gelu")
            throw new UserError($"{path}: field 'mm_projector_type' is '{projector}'; supported: mlp2x_gelu (LLaVA-1.5's two-layer GELU projector)");
        string feature = StringOf(root, "mm_vision_select_feature", "patch", path);
        string strategy = feature switch
        {
            "patch" => "default",
            "cls_patch" => "full",
            _ => throw new UserError($"{path}: field 'mm_vision_select_feature' is '{feature}'; supported: patch, cls_patch"),
        };
        string merge = StringOf(root, "mm_patch_merge_type", "flat", path);
        if (merge != "flat") throw new UserError($"{path}: field 'mm_patch_merge_type' is '{merge}'; supported: flat (LLaVA-1.5; the anyres variants are read from llava-hf folders)");
        string aspect = StringOf(root, "image_aspect_ratio", "square", path);
        if (aspect is not ("pad" or "square"))
            throw new UserError($"{path}: field 'image_aspect_ratio' is '{aspect}'; supported: pad, square");

        var text = (JsonObject)root.DeepClone();
        text["model_type"] = "llama";
        text["architectures"] = new JsonArray("LlamaForCausalLM");
        var translated = new JsonObject
        {
            ["architectures"] = new JsonArray("LlavaForConditionalGeneration"),
            ["vision_config"] = visionConfig.DeepClone(),
            ["text_config"] = text,
            ["vision_feature_layer"] = root["mm_vision_select_layer"] is { } layer ? IntOf(layer, "mm_vision_select_layer", path) : -2,
            ["vision_feature_select_strategy"] = strategy,
            ["image_token_index"] = 0,
        };
        var config = FromJson(translated, $"{path} (with {towerConfigPath})");
        if (root["mm_hidden_size"] is { } hidden && IntOf(hidden, "mm_hidden_size", path) != config.Vision.Hidden)
            throw new UserError($"{path}: field 'mm_hidden_size' is {hidden.ToJsonString()} but the vision tower in {visionTower} has hidden_size {config.Vision.Hidden}; give the CLIP checkpoint named by mm_vision_tower ('{towerName}')");
        return config with { ImageTokenId = OriginalImageToken, Original = true, VisionTowerName = towerName, PadToSquare = aspect == "pad" };
    }
}

/// <summary>The original layout's prompt ids: LLaVA's <c>tokenizer_image_token</c>, and the id the decoder looks up for its image positions.</summary>
public sealed partial class LlavaModel
{
    /// <summary>
    /// The prompt's ids as the checkpoint's own code makes them. llava-hf: the tokenizer, whose <c>&lt;image&gt;</c> is an
    /// added token. Original layout (its tokenizer has no <c>&lt;image&gt;</c>): LLaVA's <c>tokenizer_image_token</c>, the
    /// text split at each <c>&lt;image&gt;</c>, every piece tokenized alone (so the piece after the image gets its own
    /// SentencePiece dummy prefix), the BOS that each piece then starts with kept only on the first, and
    /// <see cref="LlavaConfig.OriginalImageToken"/> between the pieces.
    /// </summary>
    public int[] EncodePrompt(string prompt)
    {
        if (!Config.Original) return Language.Encode(prompt);
        var pieces = prompt.Split("<image>").Select(Language.Encode).ToArray();
        int? bos = Language.Tokenizer?.BosId;
        int skip = pieces[0].Length > 0 && pieces[0][0] == bos ? 1 : 0;
        var ids = new List<int>(pieces[0]);
        foreach (var piece in pieces.Skip(1))
        {
            ids.Add(LlavaConfig.OriginalImageToken);
            ids.AddRange(piece.Skip(piece.Length > 0 && piece[0] == bos ? skip : 0));
        }
        return ids.ToArray();
    }

    /// <summary>The CLIP folder an original-layout checkpoint was loaded with (<c>--vision-tower</c>); null for llava-hf, whose folder holds its tower.</summary>
    public string? VisionTowerFolder => Config.Original ? _preprocessorFolder : null;

    /// <summary>
    /// The ids handed to the decoder: the original layout's image token (-200) has no embedding row, so its positions
    /// look up id 0 instead; the splice overwrites those rows with the image features either way.
    /// </summary>
    internal int[] DecoderIds(int[] expanded) =>
        Config.ImageTokenId >= 0 ? expanded : expanded.Select(id => id == Config.ImageTokenId ? 0 : id).ToArray();
}
