using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Vision;

namespace TruthProbe.Tests.Vision;

/// <summary>Tiny random Qwen2.5-VL / Omni checkpoints: config and layouts, window geometry, and the vision encoder against <see cref="QwenReference"/>.</summary>
public sealed class QwenVisionTests
{
    /// <summary>
    /// Vision: depth 3 with block 1 attending over the whole image, hidden 32, 2 heads of 16, window 56 px (2 x 2 merged
    /// tokens, so a 112 x 112 image has 4 windows), merge 2. LM: qwen2, 2 layers, d 64, GQA 4:2, head 16, mrope_section
    /// [2, 3, 3] (the published [16, 24, 24] scaled to head 16).
    /// </summary>
    internal static QwenVLConfig Tiny(bool omni = false) => new()
    {
        Architecture = omni ? "qwen2_5_omni" : "qwen2_5_vl",
        Vision = new QwenVisionConfig
        {
            Depth = 3, Hidden = 32, Intermediate = 48, Heads = 2, PatchSize = 14, TemporalPatchSize = 2, MergeSize = 2,
            WindowSize = 56, OutHidden = 64, FullAttentionBlocks = [1],
        },
        Text = new ModelConfig
        {
            Architecture = "qwen2", Layers = 2, DModel = 64, Heads = 4, KvHeads = 2, HeadDim = 16, Ffn = 96, Vocab = 80,
            MaxContext = 512, RmsEps = 1e-6f, RopeTheta = 1000000f, QkvBias = true, EosIds = [2],
        },
        ImageTokenId = 70,
        VisionStartTokenId = 71,
        VisionEndTokenId = 72,
        MropeSection = [2, 3, 3],
    };

    internal static string Write(TempDir tmp, QwenVLConfig c, QwenLayout layout, ulong seed = 11)
    {
        string folder = tmp.File($"qwen-{layout.Name}-{seed}");
        QwenCheckpoint.WriteRandom(folder, c, layout, seed, WeightDType.F32);
        return folder;
    }

    /// <summary>Pixel rows of a still image (both frames equal) in the range CLIP normalisation gives, seeded.</summary>
    internal static float[] StillPixels(int width, int height, ulong seed)
    {
        var rng = new XorShiftRandom(seed);
        var chw = Enumerable.Range(0, 3 * width * height).Select(_ => (float)(rng.NextDouble() * 3.9 - 1.8)).ToArray();
        var patches = new float[width * height / 196 * 1176];
        QwenImageProcessor.Patchify(chw, height, width, new QwenImageConfig(), patches);
        return patches;
    }

    [Fact]
    public void WindowIndex_112Square_FourWindowsOfFourTokensRowMajor()
    {
        // 8 x 8 patches -> 4 x 4 merged tokens (index y * 4 + x); windows of 2 x 2 tokens.
        var (order, sizes) = QwenVision.WindowIndex(Tiny().Vision, 8, 8);
        Assert.Equal([4, 4, 4, 4], sizes);
        Assert.Equal([0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15], order);
    }

    [Fact]
    public void WindowIndex_EdgeWindowsAreSmaller()
    {
        // 6 x 10 patches -> 3 x 5 tokens: window rows {0, 1}, {2}; columns {0, 1}, {2, 3}, {4}.
        var (order, sizes) = QwenVision.WindowIndex(Tiny().Vision, 6, 10);
        Assert.Equal([4, 4, 2, 2, 2, 1], sizes);
        Assert.Equal([0, 1, 5, 6, 2, 3, 7, 8, 4, 9, 10, 11, 12, 13, 14], order);
    }

    [Fact]
    public void PatchPositions_MergeGroupOrder()
    {
        var positions = QwenVision.PatchPositions(Tiny().Vision, 4, 6);
        Assert.Equal([(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (0, 3), (1, 2), (1, 3), (0, 4), (0, 5), (1, 4), (1, 5), (2, 0), (2, 1), (3, 0)], positions.Take(15));
    }

    [Theory]
    [InlineData(112, 112)]   // 4 windows
    [InlineData(140, 84)]    // 5 x 3 tokens: edge windows of 2 and 1 tokens
    public void VisionEncoder_MatchesFloat64Reference(int width, int height)
    {
        using var tmp = new TempDir();
        var config = Tiny();
        string folder = Write(tmp, config, QwenLayout.Hub);
        var (loaded, layout, _, weights, files) = QwenCheckpoint.Load(folder);
        using var _files = new Disposer(files);
        Assert.Same(QwenLayout.Hub, layout);
        int gridH = height / 14, gridW = width / 14;
        var pixels = StillPixels(width, height, 5);
        var capture = new VisionCapture(loaded, ["vision.*", "hook_image_features"]);
        var features = QwenVision.Encode(loaded.Vision, weights, new QwenVisionState(), pixels, gridH, gridW, capture).ToArray();
        Assert.Equal(pixels, capture["vision.hook_pixel_values"].Data);
        Assert.Equal([gridH * gridW, 1176], capture["vision.hook_pixel_values"].Shape);
        Assert.Equal([gridH * gridW / 4, 64], capture["hook_image_features"].Shape);
        Assert.Equal(features, capture["hook_image_features"].Data);
        Assert.False(capture.Results.ContainsKey("vision.hook_features"));
        var blocks = Enumerable.Range(0, 3).Select(l => capture[$"vision.blocks.{l}.hook_resid_post"].Data).ToList();
        Assert.Equal([gridH * gridW, 32], capture["vision.blocks.2.hook_resid_post"].Shape);

        var reference = QwenReference.Vision(folder, config.Vision, pixels, gridH, gridW);
        Assert.Equal(gridH * gridW / 4 * 64, features.Length);
        for (int l = 0; l < 3; l++)
            Assert.True(LlavaModelTests.Relative(blocks[l], reference.Blocks[l]) < 1e-5, $"block {l}: {LlavaModelTests.Relative(blocks[l], reference.Blocks[l]):E2}");
        double error = LlavaModelTests.Relative(features, reference.Features);
        Assert.True(error < 1e-4, $"image features: {error:E2}");
    }

    [Fact]
    public void VisionEncoder_FramesThatDiffer_UseTheWholeConv3dKernel()
    {
        using var tmp = new TempDir();
        var config = Tiny();
        string folder = Write(tmp, config, QwenLayout.Hub);
        var (loaded, _, _, weights, files) = QwenCheckpoint.Load(folder);
        using var _files = new Disposer(files);
        var pixels = StillPixels(56, 56, 9);
        pixels[1176 + 200] += 1;   // row 1, channel 0, frame 1: no longer a still image
        var features = QwenVision.Encode(loaded.Vision, weights, new QwenVisionState(), pixels, 4, 4).ToArray();
        Assert.True(LlavaModelTests.Relative(features, QwenReference.Vision(folder, config.Vision, pixels, 4, 4).Features) < 1e-4);
    }

    [Fact]
    public void AllLayouts_LoadTheSameModel_OmniSplitQkvEqualsVlFused()
    {
        using var tmp = new TempDir();
        var pixels = StillPixels(112, 84, 3);
        float[] Features(QwenVLConfig c, QwenLayout layout, out QwenVLConfig read)
        {
            var (config, found, text, weights, files) = QwenCheckpoint.Load(Write(tmp, c, layout));
            using var _files = new Disposer(files);
            Assert.Same(layout, found);
            Assert.Equal(c.Text.Layers, text.Layers.Length);
            read = config;
            return QwenVision.Encode(config.Vision, weights, new QwenVisionState(), pixels, 6, 8).ToArray();
        }
        var hub = Features(Tiny(), QwenLayout.Hub, out var hubConfig);
        var nested = Features(Tiny(), QwenLayout.Nested, out var nestedConfig);
        var omni = Features(Tiny(omni: true), QwenLayout.Thinker, out var omniConfig);
        Assert.Equal(hub, nested);
        Assert.Equal(hub, omni);
        Assert.Equal(QwenCheckpoint.ConfigJson(Tiny(), false), QwenCheckpoint.ConfigJson(hubConfig, false));
        Assert.Equal(QwenCheckpoint.ConfigJson(Tiny(), true), QwenCheckpoint.ConfigJson(nestedConfig, true));
        Assert.Equal(QwenCheckpoint.ConfigJson(Tiny(omni: true), true), QwenCheckpoint.ConfigJson(omniConfig, true));
    }

    [Fact]
    public void Load_OmniConfigOnVlWeights_AndViceVersa_IsOneUserError()
    {
        using var tmp = new TempDir();
        string vl = Write(tmp, Tiny(), QwenLayout.Hub), omni = Write(tmp, Tiny(omni: true), QwenLayout.Thinker);
        File.Copy(Path.Combine(omni, "config.json"), Path.Combine(vl, "config.json"), overwrite: true);
        Assert.Contains("describes a Qwen2.5-Omni model but the weights are a Qwen2.5-VL", Assert.Throws<UserError>(() => QwenCheckpoint.Load(vl)).Message);
        File.WriteAllText(Path.Combine(omni, "config.json"), QwenCheckpoint.ConfigJson(Tiny(), true));
        Assert.Contains("describes a Qwen2.5-VL model but the weights are a Qwen2.5-Omni", Assert.Throws<UserError>(() => QwenCheckpoint.Load(omni)).Message);
    }

    [Theory]
    [InlineData("""{"architectures": ["Qwen2_5OmniModel"], "talker_config": {}}""", "without a 'thinker_config'")]
    [InlineData("""{"architectures": ["Qwen2_5_VLForConditionalGeneration"], "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 4]}, "vision_config": {"out_hidden_size": 64}}""", "adding up to head_dim / 2 = 8")]
    [InlineData("""{"architectures": ["Qwen2_5_VLForConditionalGeneration"], "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}, "vision_config": {"out_hidden_size": 32}}""", "out_hidden_size (32) must equal")]
    [InlineData("""{"architectures": ["Qwen2_5_VLForConditionalGeneration"], "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}, "vision_config": {"out_hidden_size": 64, "hidden_act": "gelu"}}""", "'hidden_act' is 'gelu'")]
    [InlineData("""{"architectures": ["Qwen2_5_VLForConditionalGeneration"], "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}, "vision_config": {"out_hidden_size": 64, "fullatt_block_indexes": [7, 40]}}""", "fullatt_block_indexes")]
    public void Config_BadFields_AreOneUserError(string json, string fragment)
    {
        using var tmp = new TempDir();
        string path = tmp.File("config.json");
        File.WriteAllText(path, json);
        var e = Assert.Throws<UserError>(() => QwenVLConfig.FromHfConfig(path));
        Assert.Contains(fragment, e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void Config_HubVlShape_CompletesToTheKnownShapes()
    {
        // The published Qwen2.5-VL-7B-Instruct config.json, text at the top level (older files), the fields that matter.
        using var tmp = new TempDir();
        string path = tmp.File("config.json");
        File.WriteAllText(path, """
            {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl", "hidden_size": 3584,
             "intermediate_size": 18944, "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4,
             "max_position_embeddings": 128000, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "vocab_size": 152064,
             "image_token_id": 151655, "vision_start_token_id": 151652, "vision_end_token_id": 151653, "tie_word_embeddings": false,
             "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}, "use_sliding_window": false, "sliding_window": 32768,
             "vision_config": {"depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
               "in_chans": 3, "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2, "spatial_patch_size": 14,
               "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2, "temporal_patch_size": 2}}
            """);
        var c = QwenVLConfig.FromHfConfig(path);
        Assert.Equal(("qwen2", 28, 3584, 28, 4, 128, 152064), (c.Text.Architecture, c.Text.Layers, c.Text.DModel, c.Text.Heads, c.Text.KvHeads, c.Text.HeadDim, c.Text.Vocab));
        Assert.True(c.Text.QkvBias);
        Assert.Equal(1e6f, c.Text.RopeTheta);
        Assert.Equal([16, 24, 24], c.MropeSection);
        Assert.Equal((32, 1280, 16, 80, 1176, 4), (c.Vision.Depth, c.Vision.Hidden, c.Vision.Heads, c.Vision.HeadDim, c.Vision.PatchValues, c.Vision.WindowTokens));
        Assert.Equal([7, 15, 23, 31], c.Vision.FullAttentionBlocks);
        Assert.Equal(151655, c.ImageTokenId);
    }

    private sealed class Disposer(IReadOnlyList<SafetensorsFile> files) : IDisposable
    {
        public void Dispose() { foreach (var f in files) f.Dispose(); }
    }
}
