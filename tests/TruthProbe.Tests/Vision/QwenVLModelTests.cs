using TruthProbe.Common;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Vision;
using static TruthProbe.Tests.Vision.QwenVisionTests;

namespace TruthProbe.Tests.Vision;

/// <summary>Tiny random Qwen2.5-VL / Omni models end to end (vision, splice, M-RoPE, cache) against <see cref="QwenReference.Run"/>.</summary>
public sealed class QwenVLModelTests
{
    private const int Pad = 70;

    /// <summary>A still image of width x height pixels as the processor hands it over (rows in merge-group order), seeded.</summary>
    private static QwenImage Image(int width, int height, ulong seed) => new(StillPixels(width, height, seed), 1, height / 14, width / 14, 2);

    [Fact]
    public void PositionIds_TextImageText_ContinueAtTheImagesLargestPlusOne()
    {
        // 112 x 84 -> 6 x 8 patches -> 3 x 4 merged tokens. Two text tokens, the image at s = 2, two text tokens after.
        int[] ids = [5, 6, .. Enumerable.Repeat(Pad, 12), 7, 8];
        var rows = QwenVLModel.PositionIds(ids, Pad, Image(112, 84, 1));
        Assert.Equal([0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 6, 7], rows[0]);
        Assert.Equal([0, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 6, 7], rows[1]);
        Assert.Equal([0, 1, 2, 3, 4, 5, 2, 3, 4, 5, 2, 3, 4, 5, 6, 7], rows[2]);
        var mrope = new MropePositions(Tiny().Text, Tiny().MropeSection, rows);
        Assert.Equal(-8, mrope.RopeDelta);   // max 7 + 1 - 16 tokens
        Assert.Equal((8, 8, 8), mrope.Ids(16));  // the first generated token: cache position 16 + delta
        Assert.Equal((6, 6, 6), mrope.Ids(14));
    }

    [Fact]
    public void PositionIds_TextOnly_AreTheIndex_AndAnImageWithoutPadsIsRefused()
    {
        var rows = QwenVLModel.PositionIds([3, 4, 5], Pad, null);
        Assert.All(rows, r => Assert.Equal([0, 1, 2], r));
        Assert.Contains("12 consecutive image tokens", Assert.Throws<UserError>(() => QwenVLModel.PositionIds([3, Pad, Pad, 4], Pad, Image(112, 84, 1))).Message);
        Assert.Contains("without an image", Assert.Throws<UserError>(() => QwenVLModel.PositionIds([3, Pad], Pad, null)).Message);
    }

    [Theory]
    [InlineData(112, 112)]
    [InlineData(140, 84)]
    public void Forward_MatchesFloat64Reference(int width, int height)
    {
        using var tmp = new TempDir();
        var config = Tiny();
        string folder = Write(tmp, config, QwenLayout.Hub);
        using var model = QwenVLModel.Load(folder);
        var image = Image(width, height, 5);
        int[] prompt = [1, 7, 71, Pad, 72, 13, 5, 22, 41];
        var capture = new ActivationCapture(config.Text, ["blocks.*.attn.hook_z", HookNames.Logits]);
        model.Forward(model.NewState(), prompt, image, capture);

        int[] expanded = model.ExpandImageTokens(prompt, image);
        Assert.Equal(prompt.Length - 1 + image.Tokens, expanded.Length);
        var reference = QwenReference.Run(folder, config, image.PixelValues, image.GridH, image.GridW, expanded);
        Assert.Equal(config.Text.Layers, reference.Z.Count);
        LlavaModelTests.AssertDecoderMatches(capture, reference.Z, reference.Logits);
    }

    [Fact]
    public void GreedyGeneration_WithCache_MatchesReferenceRecomputingEverything()
    {
        using var tmp = new TempDir();
        var config = Tiny();
        string folder = Write(tmp, config, QwenLayout.Hub);
        using var model = QwenVLModel.Load(folder);
        var image = Image(112, 84, 8);
        int[] prompt = [1, 71, Pad, 72, 13, 5];
        var result = model.Generate(model.NewState(), prompt, image, new GenerationOptions { MaxNewTokens = 6, StopAtEos = false });

        // The reference rebuilds the position ids of the whole sequence for every token (no cache, no rope_delta).
        var ids = model.ExpandImageTokens(prompt, image).ToList();
        var expected = new List<int>();
        for (int step = 0; step < 6; step++)
        {
            var last = QwenReference.Run(folder, config, image.PixelValues, image.GridH, image.GridW, ids.ToArray()).Logits[^1];
            int next = Array.IndexOf(last, last.Max());
            expected.Add(next);
            ids.Add(next);
        }
        Assert.Equal(expected, result.NewIds);
        Assert.Equal(model.ExpandImageTokens(prompt, image), result.PromptIds);
    }

    [Fact]
    public void TextOnly_IsBitIdenticalToPlainQwen2WithTheSameWeights()
    {
        using var tmp = new TempDir();
        var config = Tiny();
        using var model = QwenVLModel.Load(Write(tmp, config, QwenLayout.Hub));
        string plainFolder = tmp.File("qwen2");
        RandomModel.WriteHf(plainFolder, config.Text, 11, WeightDType.F32);
        using var plain = Transformer.Load(plainFolder);
        int[] prompt = [1, 7, 9, 13, 5, 22, 41, 3];

        var capture = new ActivationCapture(config.Text, [HookNames.Logits]);
        var plainCapture = new ActivationCapture(config.Text, [HookNames.Logits]);
        var state = model.NewState();
        model.Forward(state, prompt, null, capture);
        Assert.IsType<MropePositions>(state.Text.Rotary);
        plain.Forward(plain.NewState(), prompt, plainCapture);
        Assert.Equal(plainCapture[HookNames.Logits].Data, capture[HookNames.Logits].Data);

        var options = new GenerationOptions { MaxNewTokens = 8, StopAtEos = false };
        Assert.Equal(Generator.Generate(plain, prompt, options).NewIds, model.Generate(model.NewState(), prompt, null, options).NewIds);
    }

    [Fact]
    public void AllLayouts_GiveIdenticalLogits_OmniThinkerEqualsVl()
    {
        using var tmp = new TempDir();
        var image = Image(112, 112, 3);
        int[] prompt = [1, 71, Pad, 72, 13, 5, 9];
        float[] Logits(QwenVLConfig c, QwenLayout layout)
        {
            using var model = QwenVLModel.Load(Write(tmp, c, layout));
            Assert.Equal(layout, model.Layout);
            var capture = new ActivationCapture(c.Text, [HookNames.Logits]);
            model.Forward(model.NewState(), prompt, image, capture);
            return capture[HookNames.Logits].Data;
        }
        var hub = Logits(Tiny(), QwenLayout.Hub);
        Assert.Equal(hub, Logits(Tiny(), QwenLayout.Nested));
        Assert.Equal(hub, Logits(Tiny(omni: true), QwenLayout.Thinker));
    }

    [Fact]
    public void ImageTokens_WrongCountOrMissingImage_AreUserErrors()
    {
        using var tmp = new TempDir();
        using var model = QwenVLModel.Load(Write(tmp, Tiny(), QwenLayout.Hub));
        var image = Image(112, 112, 4);
        Assert.Contains("2 image tokens", Assert.Throws<UserError>(() => model.Forward(model.NewState(), [1, Pad, 5, Pad], image)).Message);
        Assert.Contains("no image was given", Assert.Throws<UserError>(() => model.Forward(model.NewState(), [1, Pad, 5], null)).Message);
        Assert.Throws<UserError>(() => model.Forward(model.NewState(), [1, 5], image));
    }
}
