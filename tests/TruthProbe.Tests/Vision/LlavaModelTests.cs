using TruthProbe.Common;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Vision;

namespace TruthProbe.Tests.Vision;

/// <summary>Tiny random llava-hf checkpoints against the float64 reference of <see cref="LlavaReference"/>.</summary>
public sealed class LlavaModelTests
{
    private const int ImageToken = 60;

    /// <summary>Vision: 3 layers, hidden 32, 2 heads of 16, patch 14. LM: llama, 2 layers, d 64, GQA 4:2.</summary>
    internal static LlavaConfig Tiny(int imageSize, int featureLayer = -2, FeatureSelect select = FeatureSelect.Default) => new()
    {
        Architecture = "llava",
        Vision = new ClipVisionConfig
        {
            Hidden = 32, Intermediate = 48, Layers = 3, Heads = 2, Channels = 3, ImageSize = imageSize, PatchSize = 14,
            HiddenAct = "quick_gelu", LayerNormEps = 1e-5f,
        },
        Text = new ModelConfig
        {
            Architecture = "llama", Layers = 2, DModel = 64, Heads = 4, KvHeads = 2, HeadDim = 16, Ffn = 96, Vocab = 64,
            MaxContext = 640, RmsEps = 1e-5f, BosId = 1, EosIds = [2],
        },
        ImageTokenId = ImageToken,
        FeatureLayer = featureLayer,
        Select = select,
        ProjectorBias = true,
    };

    /// <summary>Pixels in the range CLIP normalisation gives (about -1.8..2.1), seeded.</summary>
    internal static float[] Pixels(int size, ulong seed)
    {
        var rng = new XorShiftRandom(seed);
        return Enumerable.Range(0, 3 * size * size).Select(_ => (float)(rng.NextDouble() * 3.9 - 1.8)).ToArray();
    }

    private static string Write(TempDir tmp, LlavaConfig c, LlavaLayout layout, ulong seed = 11)
    {
        string folder = tmp.File($"llava-{c.Vision.ImageSize}-{(layout == LlavaLayout.Hub ? "hub" : "nested")}-{seed}");
        LlavaCheckpoint.WriteRandom(folder, c, layout, seed, WeightDType.F32);
        return folder;
    }

    /// <summary>max |a - b| over max |b|: the error relative to the activation's scale.</summary>
    internal static double Relative(ReadOnlySpan<float> actual, double[][] expected)
    {
        var flat = expected.SelectMany(r => r).ToArray();
        Assert.Equal(flat.Length, actual.Length);
        double scale = flat.Max(Math.Abs), max = 0;
        for (int i = 0; i < flat.Length; i++) max = Math.Max(max, Math.Abs(actual[i] - flat[i]));
        return max / scale;
    }

    [Theory]
    [InlineData(56, -2, FeatureSelect.Default)]    // 16 image tokens
    [InlineData(56, 3, FeatureSelect.Full)]         // last layer, class row kept: 17
    [InlineData(336, -2, FeatureSelect.Default)]   // the real 576
    public void Forward_MatchesFloat64Reference(int imageSize, int featureLayer, FeatureSelect select)
    {
        using var tmp = new TempDir();
        var config = Tiny(imageSize, featureLayer, select);
        string folder = Write(tmp, config, LlavaLayout.Hub);
        using var model = LlavaModel.Load(folder);
        Assert.Equal(LlavaCheckpoint.ConfigJson(config), LlavaCheckpoint.ConfigJson(model.Config));
        var pixels = Pixels(imageSize, 5);
        int[] prompt = [1, 7, 9, ImageToken, 13, 5, 22, 41];

        var capture = new ActivationCapture(config.Text, ["blocks.*.attn.hook_z", HookNames.Logits]);
        var vision = new VisionCapture(config, ["vision.*", "hook_image_features"]);
        model.Forward(model.NewState(), prompt, pixels, capture, visionCapture: vision);

        int[] expanded = model.ExpandImageTokens(prompt);
        Assert.Equal(prompt.Length - 1 + config.ImageTokens, expanded.Length);
        var reference = LlavaReference.Run(folder, config, pixels, expanded);

        Assert.Equal(pixels, vision["vision.hook_pixel_values"].Data);
        Assert.Equal([3, imageSize, imageSize], vision["vision.hook_pixel_values"].Shape);
        var features = vision["vision.hook_features"];
        Assert.Equal([config.ImageTokens, config.Vision.Hidden], features.Shape);
        double selected = Relative(features.Data, reference.HiddenStates.Skip(select == FeatureSelect.Default ? 1 : 0).ToArray());
        Assert.True(selected < 1e-4, $"vision.hook_features relative error {selected:E2}");
        Assert.Equal(config.VisionLayersRun, vision.Results.Keys.Count(k => k.StartsWith("vision.blocks.", StringComparison.Ordinal)));
        Assert.True(Relative(vision[HookNames.Name(HookKind.VisionResidPost, config.VisionLayersRun - 1)].Data, reference.HiddenStates) < 1e-4);

        double image = Relative(vision["hook_image_features"].Data, reference.ImageFeatures);
        Assert.True(image < 1e-4, $"hook_image_features relative error {image:E2}");
        AssertDecoderMatches(capture, reference.Z, reference.Logits);
    }

    /// <summary>Every layer's hook_z and all logits of <paramref name="capture"/> within 1e-4 of the reference's scale.</summary>
    internal static void AssertDecoderMatches(ActivationCapture capture, List<double[][]> z, double[][] logits)
    {
        for (int l = 0; l < z.Count; l++)
        {
            double error = Relative(capture[HookNames.Name(HookKind.Z, l)].Data, z[l]);
            Assert.True(error < 1e-4, $"layer {l} hook_z relative error {error:E2}");
        }
        double logitsError = Relative(capture[HookNames.Logits].Data, logits);
        Assert.True(logitsError < 1e-4, $"logits relative error {logitsError:E2}");
    }

    [Fact]
    public void GreedyGeneration_MatchesFloat64ReferenceIds()
    {
        using var tmp = new TempDir();
        var config = Tiny(56);
        string folder = Write(tmp, config, LlavaLayout.Hub);
        using var model = LlavaModel.Load(folder);
        var pixels = Pixels(56, 8);
        int[] prompt = [1, ImageToken, 13, 5];
        var result = model.Generate(model.NewState(), prompt, pixels, new GenerationOptions { MaxNewTokens = 6, StopAtEos = false });

        // The reference recomputes the whole sequence for every new token (no cache).
        var ids = model.ExpandImageTokens(prompt).ToList();
        var expected = new List<int>();
        for (int step = 0; step < 6; step++)
        {
            var last = LlavaReference.Run(folder, config, pixels, ids.ToArray()).Logits[^1];
            int next = Array.IndexOf(last, last.Max());
            expected.Add(next);
            ids.Add(next);
        }
        Assert.Equal(expected, result.NewIds);
        Assert.Equal(model.ExpandImageTokens(prompt), result.PromptIds);
    }

    [Fact]
    public void BothTensorLayouts_GiveIdenticalOutputs()
    {
        using var tmp = new TempDir();
        var config = Tiny(56);
        var pixels = Pixels(56, 3);
        int[] prompt = [1, ImageToken, 13, 5, 9];
        float[] Logits(LlavaLayout layout)
        {
            using var model = LlavaModel.Load(Write(tmp, config, layout));
            Assert.Equal(layout, model.Layout);
            var capture = new ActivationCapture(config.Text, [HookNames.Logits]);
            model.Forward(model.NewState(), prompt, pixels, capture);
            return capture[HookNames.Logits].Data;
        }
        var hub = Logits(LlavaLayout.Hub);
        Assert.Equal(hub, Logits(LlavaLayout.Nested));
    }

    [Fact]
    public void ExpandedIds_AreUsedAsTheyAre_AndGiveTheSameLogits()
    {
        using var tmp = new TempDir();
        var config = Tiny(56);
        using var model = LlavaModel.Load(Write(tmp, config, LlavaLayout.Hub));
        var pixels = Pixels(56, 4);
        int[] single = [1, ImageToken, 13];
        int[] expanded = model.ExpandImageTokens(single);
        Assert.Equal(expanded, model.ExpandImageTokens(expanded));
        var a = model.Forward(model.NewState(), single, pixels).ToArray();
        var b = model.Forward(model.NewState(), expanded, pixels).ToArray();
        Assert.Equal(a, b);
    }

    [Fact]
    public void WrongImageTokenCount_IsUserError()
    {
        using var tmp = new TempDir();
        var config = Tiny(56);
        using var model = LlavaModel.Load(Write(tmp, config, LlavaLayout.Hub));
        var pixels = Pixels(56, 4);
        var e = Assert.Throws<UserError>(() => model.Forward(model.NewState(), [1, ImageToken, 5, ImageToken], pixels));
        Assert.Contains("2 image tokens", e.Message);
        Assert.Contains("16", e.Message);
        Assert.Throws<UserError>(() => model.Forward(model.NewState(), [1, 5], pixels));
        Assert.Contains("[3, 56, 56]", Assert.Throws<UserError>(() => model.Forward(model.NewState(), [1, ImageToken], Pixels(28, 1))).Message);
    }

    [Fact]
    public void MissingVisionTower_IsUserError()
    {
        using var tmp = new TempDir();
        var config = Tiny(56);
        string folder = Write(tmp, config, LlavaLayout.Hub);
        // The same folder with only the language model's tensors.
        var tensors = RandomModel.DecoderTensors(config.Text, 1, WeightDType.F32, LlavaLayout.Hub.Text).ToList();
        TruthProbe.Formats.SafetensorsWriter.Write(Path.Combine(folder, "model.safetensors"), tensors);
        var e = Assert.Throws<UserError>(() => LlavaModel.Load(folder).Dispose());
        Assert.Contains("no vision tower tensors", e.Message);
        Assert.Contains(folder, e.Message);
    }

    [Fact]
    public void VisionCapture_UnknownPattern_IsUserError()
    {
        var e = Assert.Throws<UserError>(() => new VisionCapture(Tiny(56), ["vision.blocks.2.hook_resid_post"]));
        Assert.Contains("layer 1", e.Message); // -2 of 3 layers runs layers 0 and 1 only
    }
}
