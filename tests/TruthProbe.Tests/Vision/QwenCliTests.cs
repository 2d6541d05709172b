using System.Globalization;
using TruthProbe.Formats;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Tests.Imaging;
using TruthProbe.Vision;

namespace TruthProbe.Tests.Vision;

/// <summary>Qwen2.5-VL through the CLI on a tiny random checkpoint: the image goes in through its preprocessor_config.json.</summary>
public sealed class QwenCliTests
{
    private const int Pad = 70;

    /// <summary>A small budget (at most 112 x 112 pixels) so that a 150 x 100 photo becomes 112 x 84: 6 x 8 patches, 12 tokens.</summary>
    private const string Preprocessor = """
        {"min_pixels": 3136, "max_pixels": 12544, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
         "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
         "image_processor_type": "Qwen2VLImageProcessor", "resample": 3, "rescale_factor": 0.00392156862745098}
        """;

    internal static string Checkpoint(TempDir tmp)
    {
        string folder = tmp.File("qwen-vl");
        QwenCheckpoint.WriteRandom(folder, QwenVisionTests.Tiny(), QwenLayout.Hub, 17, WeightDType.F32);
        File.WriteAllText(Path.Combine(folder, QwenVLModel.PreprocessorFile), Preprocessor);
        return folder;
    }

    /// <summary>A 150 x 100 RGB PNG of seeded noise.</summary>
    internal static string Photo(TempDir tmp, ulong seed)
    {
        var rng = new XorShiftRandom(seed);
        byte[] rgb = [.. Enumerable.Range(0, 3 * 150 * 100).Select(_ => (byte)(rng.NextDouble() * 256))];
        string path = tmp.File($"photo{seed}.png");
        File.WriteAllBytes(path, PngBuilder.Png(PngBuilder.Ihdr(150, 100, 8, 2), PngBuilder.Filter(rgb, 3 * 150, 3, 0)));
        return path;
    }

    private static int[] Ids(string stdout, string label) =>
        stdout.Split('\n').Single(l => l.StartsWith(label, StringComparison.Ordinal))[label.Length..]
            .Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();

    [Theory]
    [InlineData(null, 12)]        // the folder's budget: 112 x 84
    [InlineData("20000", 20)]     // --max-pixels 20000: 140 x 112, 8 x 10 patches
    public void Generate_WithImage_GivesTheLibrarysIds(string? maxPixels, int tokens)
    {
        using var tmp = new TempDir();
        string folder = Checkpoint(tmp), photo = Photo(tmp, 3);
        string[] budget = maxPixels == null ? [] : ["--max-pixels", maxPixels];
        var r = CliRunner.Run(["generate", folder, "--token-ids", $"1,71,{Pad},72,13,5", "--image", photo, .. budget, "--max-new-tokens", "5", "--ids"]);
        Assert.True(r.ExitCode == 0, r.Stderr);

        using var model = QwenVLModel.Load(folder);
        var image = model.ImageProcessor(maxPixels: maxPixels == null ? null : int.Parse(maxPixels, CultureInfo.InvariantCulture)).Preprocess(ImageFile.Load(photo));
        Assert.Equal(tokens, image.Tokens);
        var expected = model.Generate(model.NewState(), [1, 71, Pad, 72, 13, 5], image, new GenerationOptions { MaxNewTokens = 5 });
        Assert.Equal(expected.NewIds, Ids(r.Stdout, "new ids:"));
        Assert.Equal(5 + tokens, Ids(r.Stdout, "prompt ids:").Length);
        Assert.Contains($"{tokens} image tokens", r.Stderr);
        // Another photo gives other ids: the CLI's ids depend on the pixels it fed the model.
        var other = model.Generate(model.NewState(), [1, 71, Pad, 72, 13, 5], model.ImageProcessor().Preprocess(ImageFile.Load(Photo(tmp, 4))), new GenerationOptions { MaxNewTokens = 5 });
        Assert.NotEqual(expected.NewIds, other.NewIds);
    }

    [Fact]
    public void Trace_WithImage_WritesTheLibrarysVisionAndDecoderHooks()
    {
        using var tmp = new TempDir();
        string folder = Checkpoint(tmp), photo = Photo(tmp, 5), output = tmp.File("trace.safetensors");
        var r = CliRunner.Run("trace", folder, "--token-ids", $"1,71,{Pad},72,13", "--image", photo,
            "--hooks", "vision.*,hook_image_features,blocks.*.attn.hook_z,logits", "--out", output);
        Assert.True(r.ExitCode == 0, r.Stderr);

        using var model = QwenVLModel.Load(folder);
        var image = model.ImageProcessor().Preprocess(ImageFile.Load(photo));
        var capture = new ActivationCapture(model.Config.Text, ["blocks.*.attn.hook_z", HookNames.Logits]);
        var vision = new VisionCapture(model.Config, ["vision.*", "hook_image_features"]);
        model.Forward(model.NewState(), [1, 71, Pad, 72, 13], image, capture, visionCapture: vision);
        using var file = SafetensorsFile.Open(output);
        foreach (string name in new[] { "blocks.0.attn.hook_z", "blocks.1.attn.hook_z", HookNames.Logits })
            Assert.Equal(capture[name].Data, file.ReadSingles(file.Get(name)));
        Assert.Equal(image.PixelValues, file.ReadSingles(file.Get("vision.hook_pixel_values")));
        Assert.Equal([48L, 1176], file.Get("vision.hook_pixel_values").Shape);
        Assert.Equal([48L, 32], file.Get("vision.blocks.2.hook_resid_post").Shape);
        Assert.Equal([12L, 64], file.Get("hook_image_features").Shape);
        foreach (string name in new[] { "vision.blocks.0.hook_resid_post", "vision.blocks.2.hook_resid_post", "hook_image_features" })
            Assert.Equal(vision[name].Data, file.ReadSingles(file.Get(name)));
        Assert.Equal("1,6,8", file.Metadata["image_grid_thw"]);
        Assert.Equal("12544", file.Metadata["max_pixels"]);
        Assert.Equal(4 + 12, file.Metadata["token_ids"].Split(',').Length);
    }

    [Fact]
    public void Inspect_ShowsTheVisionEncoderAndImageBudget()
    {
        using var tmp = new TempDir();
        var r = CliRunner.Run("inspect", Checkpoint(tmp));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("architecture: qwen2", r.Stdout);
        Assert.Contains("vision:       qwen2_5_vl, ViT: 3 blocks, hidden 32, 2 heads, ffn 48 (SwiGLU), patch 14 x 2 frames, windows 56 px, full attention in blocks [1]; layout hub", r.Stdout);
        Assert.Contains("M-RoPE sections [2, 3, 3]", r.Stdout);
        Assert.Contains("image token:  70, one per 4 patches", r.Stdout);
        Assert.Contains("within 3136..12544 pixels", r.Stdout);
    }

    [Fact]
    public void Drift_QwenVlAndOmniLms_AgainstThePlainQwen2TheyWereWrittenFrom_AreZero()
    {
        // The random writers give the LM the same values in every layout (and as a plain Qwen2 folder) for one seed.
        using var tmp = new TempDir();
        string plain = tmp.File("qwen2");
        RandomModel.WriteHf(plain, QwenVisionTests.Tiny().Text, 17, WeightDType.F32);
        string omni = tmp.File("omni");
        QwenCheckpoint.WriteRandom(omni, QwenVisionTests.Tiny(omni: true), QwenLayout.Thinker, 17, WeightDType.F32);
        foreach (string child in new[] { Checkpoint(tmp), omni })
        {
            var r = CliRunner.Run("drift", plain, child, "--out", tmp.File("drift-" + Path.GetFileName(child)));
            Assert.True(r.ExitCode == 0, r.Stderr);
            var rows = TruthProbe.Tests.Lineage.DriftFixtures.ReadCsv(tmp.File($"drift-{Path.GetFileName(child)}/drift.csv"));
            Assert.Contains((1, -1, "q_bias"), rows.Keys);
            Assert.All(rows.Values, v => Assert.Equal(0.0, v.Rel));
        }
        // Another seed's LM drifts.
        string other = tmp.File("other");
        QwenCheckpoint.WriteRandom(other, QwenVisionTests.Tiny(), QwenLayout.Nested, 18, WeightDType.F32);
        Assert.Equal(0, CliRunner.Run("drift", plain, other, "--out", tmp.File("drift-other")).ExitCode);
        Assert.Contains(TruthProbe.Tests.Lineage.DriftFixtures.ReadCsv(tmp.File("drift-other/drift.csv")).Values, v => v.Rel > 0.1);
    }

    [Fact]
    public void BadInput_IsOneLineEach()
    {
        using var tmp = new TempDir();
        string folder = Checkpoint(tmp), photo = Photo(tmp, 6);
        void Fails(string fragment, params string[] argv)
        {
            var r = CliRunner.Run(argv);
            Assert.Equal(2, r.ExitCode);
            Assert.Contains(fragment, r.Stderr);
        }
        Fails("--image-aspect is LLaVA's", "generate", folder, "--token-ids", $"1,{Pad}", "--image", photo, "--image-aspect", "pad");
        Fails("needs the image pad token (id 70", "generate", folder, "--token-ids", "1,5", "--image", photo);
        Fails("holds the image pad token (id 70) but no image", "generate", folder, "--token-ids", $"1,{Pad}");
        Fails("vision.hook_features is LLaVA's", "trace", folder, "--token-ids", $"1,{Pad}", "--image", photo, "--hooks", "vision.hook_features", "--out", tmp.File("t.safetensors"));
        Fails("is a Qwen vision-language checkpoint", "convert", folder, "--out", tmp.File("c.gguf"));
        string plain = tmp.File("qwen2");
        RandomModel.WriteHf(plain, QwenVisionTests.Tiny().Text, 1, WeightDType.F32);
        Fails("--min-pixels and --max-pixels set a Qwen2.5-VL / Omni image budget", "generate", plain, "--token-ids", "1", "--max-pixels", "5");
    }
}
