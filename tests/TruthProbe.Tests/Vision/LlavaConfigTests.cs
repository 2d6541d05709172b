using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Tests.Common;
using TruthProbe.Vision;

namespace TruthProbe.Tests.Vision;

public sealed class LlavaConfigTests
{
    /// <summary>llava-hf/llava-1.5-7b-hf's config.json as published: most shapes are class defaults, not written.</summary>
    private const string Llava15Hub = """
        {
          "architectures": ["LlavaForConditionalGeneration"],
          "ignore_index": -100,
          "image_token_index": 32000,
          "model_type": "llava",
          "pad_token_id": 32001,
          "projector_hidden_act": "gelu",
          "text_config": {
            "_name_or_path": "lmsys/vicuna-7b-v1.5",
            "architectures": ["LlamaForCausalLM"],
            "max_position_embeddings": 4096,
            "model_type": "llama",
            "rms_norm_eps": 1e-05,
            "torch_dtype": "float16",
            "vocab_size": 32064
          },
          "tie_word_embeddings": false,
          "torch_dtype": "float16",
          "transformers_version": "4.36.0.dev0",
          "vision_config": {
            "hidden_size": 1024,
            "image_size": 336,
            "intermediate_size": 4096,
            "model_type": "clip_vision_model",
            "num_attention_heads": 16,
            "num_hidden_layers": 24,
            "patch_size": 14,
            "projection_dim": 768,
            "vocab_size": 32000
          },
          "vision_feature_layer": -2,
          "vision_feature_select_strategy": "default",
          "vocab_size": 32064
        }
        """;

    private static LlavaConfig Parse(string json) => LlavaConfig.FromJson((JsonObject)JsonNode.Parse(json)!, "config.json");

    private static string With(string json, Action<JsonObject> edit)
    {
        var root = (JsonObject)JsonNode.Parse(json)!;
        edit(root);
        return root.ToJsonString();
    }

    [Fact]
    public void Llava15HubConfig_CompletesToTheKnownShapes()
    {
        var c = Parse(Llava15Hub);
        Assert.Equal("llava", c.Architecture);
        var v = c.Vision;
        Assert.Equal((1024, 4096, 24, 16, 64, 3, 336, 14), (v.Hidden, v.Intermediate, v.Layers, v.Heads, v.HeadDim, v.Channels, v.ImageSize, v.PatchSize));
        Assert.Equal(("quick_gelu", 1e-5f), (v.HiddenAct, v.LayerNormEps));
        Assert.Equal((576, 577, 588), (v.Patches, v.Positions, v.PatchValues));
        Assert.Equal(576, c.ImageTokens);
        Assert.Equal(23, c.VisionLayersRun);
        Assert.Equal((32000, -2, FeatureSelect.Default, true), (c.ImageTokenId, c.FeatureLayer, c.Select, c.ProjectorBias));
        var t = c.Text;
        Assert.Equal(("llama", 4096, 11008, 32, 32, 32, 128), (t.Architecture, t.DModel, t.Ffn, t.Layers, t.Heads, t.KvHeads, t.HeadDim));
        Assert.Equal((32064, 4096, 1e-5f, 10000f, false), (t.Vocab, t.MaxContext, t.RmsEps, t.RopeTheta, t.TiedEmbeddings));
        Assert.Equal((1, 2), (t.BosId, t.EosIds.Single()));
        Assert.Empty(c.GridPinpoints);
    }

    [Fact]
    public void AbsentSubConfigs_TakeTheLlavaFallbacks_AndSparseOnesTheClassDefaults()
    {
        // No vision_config: LlavaConfig builds CLIP ViT-L/14-336; no text_config: LlamaConfig() (vocab 32000, context 2048, eps 1e-6).
        var bare = Parse("""{"architectures": ["LlavaForConditionalGeneration"]}""");
        Assert.Equal((1024, 24, 14, 336), (bare.Vision.Hidden, bare.Vision.Layers, bare.Vision.PatchSize, bare.Vision.ImageSize));
        Assert.Equal((32000, 2048, 1e-6f, 4096), (bare.Text.Vocab, bare.Text.MaxContext, bare.Text.RmsEps, bare.Text.DModel));
        Assert.Equal(32000, bare.ImageTokenId);
        // A vision_config object is completed with CLIPVisionConfig's own defaults (ViT-B/32 at 224), not LLaVA's.
        var sparse = Parse("""{"architectures": ["LlavaForConditionalGeneration"], "vision_config": {"model_type": "clip_vision_model"}}""");
        Assert.Equal((768, 3072, 12, 12, 224, 32), (sparse.Vision.Hidden, sparse.Vision.Intermediate, sparse.Vision.Layers, sparse.Vision.Heads, sparse.Vision.ImageSize, sparse.Vision.PatchSize));
        Assert.Equal(49, sparse.ImageTokens);
    }

    [Fact]
    public void LlavaNext_ReadsPinpointsAndMistralDefaults()
    {
        var next = Parse(With(Llava15Hub, r =>
        {
            r["architectures"] = new JsonArray("LlavaNextForConditionalGeneration");
            r["text_config"] = new JsonObject { ["model_type"] = "mistral", ["vocab_size"] = 32064 };
        }));
        Assert.Equal("llava_next", next.Architecture);
        Assert.Equal([(336, 672), (672, 336), (672, 672), (1008, 336), (336, 1008)], next.GridPinpoints);
        Assert.Equal(("mistral", 8, 14336, 4096), (next.Text.Architecture, next.Text.KvHeads, next.Text.Ffn, next.Text.SlidingWindow));
        var custom = Parse(With(Llava15Hub, r =>
        {
            r["architectures"] = new JsonArray("LlavaNextForConditionalGeneration");
            r["image_grid_pinpoints"] = JsonNode.Parse("[[672, 1008], [1008, 672]]");
        }));
        Assert.Equal([(672, 1008), (1008, 672)], custom.GridPinpoints);
    }

    [Theory]
    [InlineData("vision_feature_layer", "[-2, -5]", "is a list")]
    [InlineData("vision_feature_layer", "-26", "outside the 24-layer")]
    [InlineData("vision_feature_select_strategy", "\"cls\"", "supported: default, full")]
    [InlineData("projector_hidden_act", "\"relu\"", "supported: gelu")]
    [InlineData("image_token_index", "-1", "is negative")]
    [InlineData("architectures", "[\"LlavaLlamaForCausalLM\"]", "supported vision-language models")]
    public void BadField_IsOneUserErrorNamingIt(string field, string value, string message)
    {
        var e = Assert.Throws<UserError>(() => Parse(With(Llava15Hub, r => r[field] = JsonNode.Parse(value))));
        Assert.Contains(message, e.Message);
        Assert.StartsWith("config.json", e.Message);
    }

    [Fact]
    public void UnsupportedTowerOrTextModel_IsUserError()
    {
        Assert.Contains("clip_vision_model", Assert.Throws<UserError>(() => Parse(With(Llava15Hub, r => r["vision_config"]!["model_type"] = "siglip_vision_model"))).Message);
        Assert.Contains("text_config", Assert.Throws<UserError>(() => Parse(With(Llava15Hub, r => r["text_config"]!["model_type"] = "gemma"))).Message);
    }
}
