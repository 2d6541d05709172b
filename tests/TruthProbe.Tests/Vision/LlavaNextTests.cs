using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Vision;

namespace TruthProbe.Tests.Vision;

/// <summary>
/// LLaVA-NeXT (anyres) on tiny random checkpoints against <see cref="LlavaReference.RunNext"/>, and its grid
/// choice and image-token count against numbers derived by hand from transformers' formulas.
/// </summary>
public sealed class LlavaNextTests
{
    private const int ImageToken = 60;

    /// <summary>LlavaNextConfig's default grid scaled from tiles of 336 to tiles of 28.</summary>
    private static readonly (int Height, int Width)[] Pinpoints28 = [(28, 56), (56, 28), (56, 56), (84, 28), (28, 84)];

    /// <summary>LlavaModelTests' tiny model with tiles of 28 cut into 7-pixel patches: 4 x 4 = 16 features per tile.</summary>
    internal static LlavaConfig TinyNext()
    {
        var c = LlavaModelTests.Tiny(28);
        return c with { Architecture = "llava_next", Vision = c.Vision with { PatchSize = 7 }, GridPinpoints = Pinpoints28 };
    }

    /// <summary>llava-hf/llava-v1.6's LlavaNextImageProcessor settings at tile size 28.</summary>
    internal const string Preprocessor28 = """
        {
          "crop_size": {"height": 28, "width": 28}, "do_center_crop": true, "do_convert_rgb": true, "do_normalize": true,
          "do_pad": true, "do_rescale": true, "do_resize": true,
          "image_grid_pinpoints": [[28, 56], [56, 28], [56, 56], [84, 28], [28, 84]],
          "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_processor_type": "LlavaNextImageProcessor",
          "image_std": [0.26862954, 0.26130258, 0.27577711], "processor_class": "LlavaNextProcessor",
          "resample": 3, "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 28}
        }
        """;

    internal static string Write(TempDir tmp, LlavaConfig c, LlavaLayout layout, ulong seed = 11)
    {
        string folder = tmp.File($"next-{(layout == LlavaLayout.Hub ? "hub" : "nested")}-{seed}");
        LlavaCheckpoint.WriteRandom(folder, c, layout, seed, WeightDType.F32);
        File.WriteAllText(Path.Combine(folder, LlavaModel.PreprocessorFile), Preprocessor28);
        return folder;
    }

    internal static RgbImage RandomImage(int width, int height, ulong seed)
    {
        var rng = new SeededRandom(seed);
        var pixels = new byte[3 * width * height];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)rng.NextInt(256);
        return new RgbImage(width, height, pixels);
    }

    /// <summary>
    /// LlavaNextImageProcessor's tiles for an image whose best resolution and fitted size the test case gives (derived
    /// by hand): PIL bicubic resize to the fitted size, centred on a black canvas of the best resolution (divmod: the
    /// odd pixel after), cut into 28 x 28 tiles row by row behind the whole image squashed to 28 x 28, then x / 255 and
    /// (x - mean) / std in float64. The two resizes are <see cref="Resample"/>, which the image tests hold to Pillow's own output.
    /// </summary>
    internal static float[] ReferencePixels(RgbImage image, (int Height, int Width) best, (int Height, int Width) fitted)
    {
        double[] mean = [0.48145466, 0.4578275, 0.40821073], std = [0.26862954, 0.26130258, 0.27577711];
        var resized = Resample.Resize(image, fitted.Width, fitted.Height, ResampleFilter.Bicubic);
        int padTop = (best.Height - fitted.Height) / 2, padLeft = (best.Width - fitted.Width) / 2;
        byte Canvas(int y, int x, int ch)
        {
            int sy = y - padTop, sx = x - padLeft;
            return sy >= 0 && sy < fitted.Height && sx >= 0 && sx < fitted.Width ? resized.Pixels[3 * (sy * fitted.Width + sx) + ch] : (byte)0;
        }
        var squashed = Resample.Resize(image, 28, 28, ResampleFilter.Bicubic);
        var values = new List<float>();
        void Tile(Func<int, int, int, byte> pixel)
        {
            for (int ch = 0; ch < 3; ch++)
                for (int y = 0; y < 28; y++)
                    for (int x = 0; x < 28; x++) values.Add((float)((pixel(y, x, ch) / 255.0 - mean[ch]) / std[ch]));
        }
        Tile((y, x, ch) => squashed.Pixels[3 * (y * 28 + x) + ch]);
        for (int ty = 0; ty < best.Height; ty += 28)
            for (int tx = 0; tx < best.Width; tx += 28) Tile((y, x, ch) => Canvas(ty + y, tx + x, ch));
        return values.ToArray();
    }

    // Hand derivations with transformers' formulas, tiles of 28, 4 x 4 features per tile (sizes W x H):
    // select_best_resolution over (h, w) = (28,56) (56,28) (56,56) (84,28) (28,84): scale = min(w/W, h/H), effective =
    // min(int(W*scale) * int(H*scale), W*H), ties on effective broken by the least wasted h*w - effective.
    // get_patch_output_size: the smaller scale's side becomes the target's, the other min(ceil(side * scale), target).
    // _get_unpadded_features on the grid's feature map (rows*4) x (cols*4), then tokens = 16 + rows' * (cols' + 1).
    [Theory]
    // 60x36 (landscape): (28,56) s=.778 -> 46x28=1288; (56,56) s=.933 -> 56x33=1848 (< 2160); (28,84) s=.778 -> 1288;
    // (56,28), (84,28) s=.467 -> 28x16=448. Best (56,56), grid 2x2. Fit: scale_w .933 < scale_h 1.556 -> 56 wide,
    // ceil(36*.9333)=ceil(33.6)=34 high; pad 22 rows: 11 above, 11 below. Features 8x8; 60/36 > 8/8 -> new_height
    // 36*8//60 = 4, padding (8-4)//2 = 2: rows 2..5 kept, 4 x 8. Tokens 16 + 4*9 = 52.
    [InlineData(60, 36, 56, 56, 34, 56, 52)]
    // 15x50 (portrait): (56,28) s=min(1.867,1.12)=1.12 -> 16x56=896 -> 750 (all of it), wasted 1568-750=818;
    // (84,28) s=1.68 -> 750, wasted 1602; (56,56) s=1.12 -> 750, wasted 2386; (28,56), (28,84) s=.56 -> 8x28=224.
    // Best (56,28), grid 2 rows x 1 column. Fit: scale_w 1.867 >= scale_h 1.12 -> 56 high, ceil(15*1.12)=ceil(16.8)=17
    // wide; pad 11 columns: 5 left, 6 right. Features 8x4; 15/50 < 4/8 -> new_width 15*8//50 = 2, padding (4-2)//2 = 1:
    // columns 1..2 kept, 8 x 2. Tokens 16 + 8*3 = 40.
    [InlineData(15, 50, 56, 28, 56, 17, 40)]
    // 24x50 (portrait, nothing to unpad): (56,28) s=1.12 -> 26x56=1456 -> 1200, wasted 368; (84,28) s=1.1667 -> 28x58
    // -> 1200, wasted 1152; (56,56) -> 1200, wasted 1936. Best (56,28). Fit: 56 high, ceil(24*1.12)=ceil(26.88)=27 wide
    // (pad 0 left, 1 right). Features 8x4; 24/50 < 4/8 -> new_width 24*8//50 = 3, padding (4-3)//2 = 0: all 8 x 4.
    // Tokens 16 + 8*5 = 56.
    [InlineData(24, 50, 56, 28, 56, 27, 56)]
    // 56x28: exactly the pinpoint (28,56): effective 1568 = all of it with nothing wasted; no resize, no pad, no
    // unpad (56/28 = 8/4). Tokens 16 + 4*9 = 52.
    [InlineData(56, 28, 28, 56, 28, 56, 52)]
    // 70x20 (wide): (28,84) s=min(1.2,1.4)=1.2 -> 84x24 -> 1400, wasted 952; (28,56) s=.8 -> 56x16=896. Best (28,84),
    // grid 1x3. Fit: 84 wide, ceil(20*1.2)=24 high; pad 2 above, 2 below. Features 4x12; 70/20 > 12/4 -> new_height
    // 20*12//70 = 3, padding (4-3)//2 = 0: all 4 x 12. Tokens 16 + 4*13 = 68.
    [InlineData(70, 20, 28, 84, 24, 84, 68)]
    // 50x20 (odd vertical pad): (28,56) s=min(1.12,1.4)=1.12 -> 56x22 -> 1000, wasted 568; (28,84) s=1.4 -> 1000, wasted
    // 1352; (56,56) s=1.12 -> 1000, wasted 2136; (56,28), (84,28) s=.56 -> 28x11=308. Best (28,56). Fit: 56 wide,
    // ceil(20*1.12)=ceil(22.400000000000002)=23 high; pad 5 rows: 2 above, 3 below. Features 4x8; 50/20 > 8/4 ->
    // new_height 20*8//50 = 3, padding (4-3)//2 = 0: all 4 x 8. Tokens 16 + 4*9 = 52.
    [InlineData(50, 20, 28, 56, 23, 56, 52)]
    public void Forward_MatchesFloat64Reference(int width, int height, int bestHeight, int bestWidth, int fitHeight, int fitWidth, int tokens)
    {
        var config = TinyNext();
        Assert.Equal((bestHeight, bestWidth), AnyresPreprocessor.SelectBestResolution(height, width, Pinpoints28));
        Assert.Equal((fitHeight, fitWidth), AnyresPreprocessor.FittedSize(height, width, (bestHeight, bestWidth)));
        var layout = AnyresLayout.For(config, new ImageSize(height, width));
        Assert.Equal(tokens, layout.ImageTokens);

        using var tmp = new TempDir();
        string folder = Write(tmp, config, LlavaLayout.Hub);
        using var model = LlavaModel.Load(folder);
        var image = model.PrepareImage(RandomImage(width, height, (ulong)(width * 100 + height)));
        Assert.Equal(new ImageSize(height, width), image.Size);
        int[] prompt = [1, 7, 9, ImageToken, 13, 5, 22, 41];
        var capture = new ActivationCapture(config.Text, ["blocks.*.attn.hook_z", HookNames.Logits]);
        var vision = new VisionCapture(config, ["vision.*", "hook_image_features"]);
        model.Forward(model.NewState(), prompt, image.Pixels, capture, visionCapture: vision, imageSize: image.Size);

        int tiles = bestHeight / 28 * (bestWidth / 28) + 1;
        var pixels = vision["vision.hook_pixel_values"];
        Assert.Equal([tiles, 3, 28, 28], pixels.Shape);
        var expectedPixels = ReferencePixels(RandomImage(width, height, (ulong)(width * 100 + height)), (bestHeight, bestWidth), (fitHeight, fitWidth));
        Assert.Equal(expectedPixels.Length, pixels.Data.Length);
        double pixelError = expectedPixels.Zip(pixels.Data, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(pixelError < 1e-5, $"vision.hook_pixel_values max |diff| {pixelError:E2}");

        int[] expanded = model.ExpandImageTokens(prompt, image.Size);
        Assert.Equal(prompt.Length - 1 + tokens, expanded.Length);
        var reference = LlavaReference.RunNext(folder, config, expectedPixels, bestHeight / 28, bestWidth / 28, height, width, expanded);
        Assert.Equal([tiles, config.Vision.Positions, config.Vision.Hidden], vision[HookNames.Name(HookKind.VisionResidPost, config.VisionLayersRun - 1)].Shape);
        Assert.True(LlavaModelTests.Relative(vision[HookNames.Name(HookKind.VisionResidPost, config.VisionLayersRun - 1)].Data, reference.HiddenStates) < 1e-4);
        Assert.Equal([tiles, 16, config.Vision.Hidden], vision["vision.hook_features"].Shape);
        var features = vision["hook_image_features"];
        Assert.Equal([tokens, config.Text.DModel], features.Shape);
        double imageError = LlavaModelTests.Relative(features.Data, reference.ImageFeatures);
        Assert.True(imageError < 1e-4, $"hook_image_features relative error {imageError:E2}");
        for (int l = 0; l < config.Text.Layers; l++)
        {
            double z = LlavaModelTests.Relative(capture[HookNames.Name(HookKind.Z, l)].Data, reference.Z[l]);
            Assert.True(z < 1e-4, $"layer {l} hook_z relative error {z:E2}");
        }
        double logits = LlavaModelTests.Relative(capture[HookNames.Logits].Data, reference.Logits);
        Assert.True(logits < 1e-4, $"logits relative error {logits:E2}");
    }

    [Fact]
    public void GreedyGeneration_MatchesFloat64ReferenceIds_AndBothLayoutsAgree()
    {
        var config = TinyNext();
        using var tmp = new TempDir();
        string folder = Write(tmp, config, LlavaLayout.Hub);
        using var model = LlavaModel.Load(folder);
        var source = RandomImage(24, 50, 3);   // grid 2x1: 3 tiles, 56 tokens (see the cases above)
        var image = model.PrepareImage(source);
        int[] prompt = [1, ImageToken, 13, 5];
        var result = model.Generate(model.NewState(), prompt, image.Pixels, new GenerationOptions { MaxNewTokens = 4, StopAtEos = false }, imageSize: image.Size);

        var ids = model.ExpandImageTokens(prompt, image.Size).ToList();
        var expected = new List<int>();
        for (int step = 0; step < 4; step++)
        {
            var last = LlavaReference.RunNext(folder, config, image.Pixels, 2, 1, 50, 24, ids.ToArray()).Logits[^1];
            int next = Array.IndexOf(last, last.Max());
            expected.Add(next);
            ids.Add(next);
        }
        Assert.Equal(expected, result.NewIds);

        using var nested = LlavaModel.Load(Write(tmp, config, LlavaLayout.Nested));
        Assert.Equal(LlavaLayout.Nested, nested.Layout);
        Assert.Equal(model.Forward(model.NewState(), prompt, image.Pixels, imageSize: image.Size).ToArray(),
            nested.Forward(nested.NewState(), prompt, image.Pixels, imageSize: image.Size).ToArray());
    }

    /// <summary>LlavaNextConfig with no vision_config: CLIP ViT-L/14 at 336, the default pinpoints.</summary>
    private static LlavaConfig Next336() =>
        LlavaConfig.FromJson(new JsonObject { ["architectures"] = new JsonArray("LlavaNextForConditionalGeneration") }, "config.json");

    // At 336 with 24 x 24 features per tile, default pinpoints (h, w) (336,672) (672,336) (672,672) (1008,336) (336,1008):
    [Theory]
    // 640x480, the COCO cat of transformers' LLaVA-NeXT docs, whose source comments give 2340 tokens for it:
    // (672,672) s=min(1.05,1.4)=1.05 -> 672x504 -> capped at 307200, beating (336,672)/(336,1008) at 448x336=150528.
    // Grid 2x2, features 48x48; 640/480 > 1 -> new_height 480*48//640 = 36, padding 6: 36 x 48. 576 + 36*49 = 2340.
    [InlineData(640, 480, 2340)]
    // 336x336: every candidate holds it whole (effective 112896); least wasted is (336,672) (and (672,336), later).
    // Grid 1x2, features 24x48; 1 < 2 -> new_width 336*24//336 = 24, padding 12: 24 x 24. 576 + 24*25 = 1176.
    [InlineData(336, 336, 1176)]
    // 400x900: (1008,336) s=min(.84,1.12)=.84 -> 336x756=254016 beats (672,336)/(672,672) at 298x672=200256.
    // Grid 3x1, features 72x24; 400/900 > 24/72 -> new_height 900*24//400 = 54, padding 9: 54 x 24. 576 + 54*25 = 1926.
    [InlineData(400, 900, 1926)]
    public void ImageTokenCount_AtLlavaNextScale_MatchesHandDerivation(int width, int height, int tokens)
    {
        Assert.Equal(tokens, AnyresLayout.For(Next336(), new ImageSize(height, width)).ImageTokens);
    }

    // chelsea.png, 451x300: (56,56) s=min(56/451,56/300)=.1242 -> 56x37=2072 beats (28,56)/(28,84) at 42x28=1176 and
    // (56,28)/(84,28) at 28x18=504. Fit: 56 wide, ceil(300*.1242)=ceil(37.25)=38 high (9 black rows above, 9 below).
    // Features 8x8; 451/300 > 1 -> new_height 300*8//451 = 5, padding (8-5)//2 = 1: 6 x 8. Tokens 16 + 6*9 = 70.
    [SkippableFact]
    public void Cli_TraceAndInspect_UseTheAnyresPath()
    {
        string photo = SharedData.Path("data", "images", "chelsea.png");
        using var tmp = new TempDir();
        string folder = Write(tmp, TinyNext(), LlavaLayout.Hub);
        string output = tmp.File("trace.safetensors");
        var r = CliRunner.Run("trace", folder, "--token-ids", $"1,{ImageToken},13,5", "--image", photo,
            "--hooks", "vision.hook_pixel_values,vision.hook_features,hook_image_features,logits", "--out", output);
        Assert.True(r.ExitCode == 0, r.Stderr);

        using var model = LlavaModel.Load(folder);
        var decoded = ImageFile.Load(photo);
        var image = model.PrepareImage(decoded);
        var capture = new ActivationCapture(model.Config.Text, [HookNames.Logits]);
        var vision = new VisionCapture(model.Config, ["hook_image_features"]);
        model.Forward(model.NewState(), [1, ImageToken, 13, 5], image.Pixels, capture, visionCapture: vision, imageSize: image.Size);
        using var f = TruthProbe.Formats.SafetensorsFile.Open(output);
        Assert.Equal([5L, 3L, 28L, 28L], f.Get("vision.hook_pixel_values").Shape);
        float[] pixels = f.ReadSingles(f.Get("vision.hook_pixel_values"));
        double pixelError = ReferencePixels(decoded, (56, 56), (38, 56)).Zip(pixels, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(pixelError < 1e-5, $"pixels max |diff| {pixelError:E2}");
        Assert.Equal([5L, 16L, 32L], f.Get("vision.hook_features").Shape);
        Assert.Equal([70L, 64L], f.Get("hook_image_features").Shape);
        Assert.Equal(vision["hook_image_features"].Data, f.ReadSingles(f.Get("hook_image_features")));
        Assert.Equal(capture[HookNames.Logits].Data, f.ReadSingles(f.Get("logits")));
        Assert.Equal(3 + 70, f.Metadata["token_ids"].Split(',').Length);
        Assert.Equal("anyres", f.Metadata["image_aspect"]);

        var aspect = CliRunner.Run("generate", folder, "--token-ids", $"1,{ImageToken}", "--image", photo, "--image-aspect", "pad");
        Assert.Equal(2, aspect.ExitCode);
        Assert.Contains("--image-aspect applies to LLaVA-1.5", aspect.Stderr);
        var inspect = CliRunner.Run("inspect", folder);
        Assert.True(inspect.ExitCode == 0, inspect.Stderr);
        // The pinpoints' own sizes: each fills its grid, nothing unpadded; 16 + rows * (columns + 1) with 4 features per tile side.
        Assert.Contains("anyres grid:  pinpoints (height, width) [28, 56] [56, 28] [56, 56] [84, 28] [28, 84]; an image of each size (WxH) " +
            "56x28: 3 tiles, 52 tokens; 28x56: 3 tiles, 56 tokens; 56x56: 5 tiles, 88 tokens; 28x84: 4 tiles, 76 tokens; 84x28: 4 tiles, 68 tokens", inspect.Stdout);
    }

    [Fact]
    public void BadInput_IsOneClearErrorEach()
    {
        var config = TinyNext();
        // 100x8: best (28,84), features 4 x 12; new_height 8*12//100 = 0, so unpadding keeps no row.
        Assert.Contains("unpadding leaves no row", Assert.Throws<UserError>(() => AnyresLayout.For(config, new ImageSize(8, 100))).Message);
        // 300x2: every candidate scales the height to int(2 * scale) = 0 rows, so none has any effective resolution.
        Assert.Contains("300x2", Assert.Throws<UserError>(() => AnyresLayout.For(config, new ImageSize(2, 300))).Message);

        var json = JsonNode.Parse(LlavaCheckpoint.ConfigJson(config))!.AsObject();
        json["image_grid_pinpoints"] = JsonNode.Parse("[[28, 56], [40, 28]]");
        var misfit = Assert.Throws<UserError>(() => LlavaConfig.FromJson(json, "config.json")).Message;
        Assert.Contains("[40, 28]", misfit);
        Assert.Contains("multiple of the vision tower's image_size 28", misfit);
        json["image_grid_pinpoints"] = JsonNode.Parse("[[28, 56]]");
        json["vision_feature_select_strategy"] = "full";
        Assert.Contains("needs 'default'", Assert.Throws<UserError>(() => LlavaConfig.FromJson(json, "config.json")).Message);

        using var tmp = new TempDir();
        string folder = Write(tmp, config, LlavaLayout.Hub);
        using (var model = LlavaModel.Load(folder))
        {
            var image = model.PrepareImage(RandomImage(60, 36, 1));
            Assert.Contains("takes 3 tiles", Assert.Throws<UserError>(() => model.Forward(model.NewState(), [1, ImageToken], image.Pixels, imageSize: new ImageSize(28, 56))).Message);
            Assert.Throws<ArgumentException>(() => model.Forward(model.NewState(), [1, ImageToken], image.Pixels));
            Assert.Contains("applies to LLaVA-1.5 only", Assert.Throws<UserError>(() => model.PrepareImage(RandomImage(60, 36, 1), AspectMode.Pad)).Message);
        }
        // A LLaVA-1.5 checkpoint's tensors (no image_newline) under a NeXT config.
        string bare = tmp.File("no-newline");
        LlavaCheckpoint.WriteRandom(bare, config with { Architecture = "llava", GridPinpoints = [] }, LlavaLayout.Hub, 11, WeightDType.F32);
        File.WriteAllText(Path.Combine(bare, "config.json"), LlavaCheckpoint.ConfigJson(config));
        Assert.Contains("image_newline", Assert.Throws<UserError>(() => LlavaModel.Load(bare).Dispose()).Message);
    }
}
