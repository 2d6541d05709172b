using System.Globalization;
using TruthProbe.Formats;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Vision;

namespace TruthProbe.Tests.Vision;

/// <summary>
/// LLaVA through the CLI on tiny random llava-hf checkpoints: the image goes in through the checkpoint's
/// preprocessor_config.json, and the pixels the CLI feeds the model are checked against Pillow's own geometry
/// (the goldens of ../shared/data/images) normalised by the formula in that folder's README.
/// </summary>
public sealed class LlavaCliTests
{
    private const int ImageToken = 60;

    /// <summary>llava-hf/llava-1.5-7b-hf's preprocessor_config.json (CLIPImageProcessor at 336).</summary>
    internal const string Preprocessor336 = """
        {
          "crop_size": {"height": 336, "width": 336}, "do_center_crop": true, "do_convert_rgb": true,
          "do_normalize": true, "do_rescale": true, "do_resize": true,
          "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_processor_type": "CLIPImageProcessor",
          "image_std": [0.26862954, 0.26130258, 0.27577711], "processor_class": "LlavaProcessor",
          "resample": 3, "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 336}
        }
        """;

    /// <summary>A tiny llava-hf folder at image size 336 (the real 576 image tokens), with its preprocessor config.</summary>
    private static string Checkpoint(TempDir tmp, bool preprocessor = true)
    {
        string folder = tmp.File("llava");
        LlavaCheckpoint.WriteRandom(folder, LlavaModelTests.Tiny(336), LlavaLayout.Hub, 17, WeightDType.F32);
        if (preprocessor) File.WriteAllText(Path.Combine(folder, LlavaModel.PreprocessorFile), Preprocessor336);
        return folder;
    }

    /// <summary>Pillow's uint8 geometry for the image (golden), rescaled and normalised as the images README states.</summary>
    private static float[] GoldenPixels(string stem, string aspect)
    {
        var image = ImageFile.Load(SharedData.Path("data", "images", "golden", $"{stem}__png.clip336_{aspect}.png"));
        double[] mean = [0.48145466, 0.4578275, 0.40821073], std = [0.26862954, 0.26130258, 0.27577711];
        int plane = image.Width * image.Height;
        var chw = new float[3 * plane];
        for (int i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++)
                chw[c * plane + i] = ((float)(image.Pixels[3 * i + c] / 255.0) - (float)mean[c]) / (float)std[c];
        return chw;
    }

    private static int[] Ids(string stdout, string label) =>
        stdout.Split('\n').Single(l => l.StartsWith(label, StringComparison.Ordinal))[label.Length..]
            .Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();

    [SkippableTheory]
    [InlineData("crop")]
    [InlineData("pad")]
    public void Generate_WithImage_GivesTheLibrarysIds_OnPillowsPixels(string aspect)
    {
        string image = SharedData.Path("data", "images", "chelsea.png"); // 451x300: crop and pad differ
        using var tmp = new TempDir();
        string folder = Checkpoint(tmp);
        string[] aspectArgs = aspect == "crop" ? [] : ["--image-aspect", aspect]; // crop is the llava-hf default
        var r = CliRunner.Run(["generate", folder, "--token-ids", $"1,7,{ImageToken},13,5", "--image", image, .. aspectArgs, "--max-new-tokens", "6", "--ids"]);
        Assert.True(r.ExitCode == 0, r.Stderr);

        using var model = LlavaModel.Load(folder);
        var expected = model.Generate(model.NewState(), [1, 7, ImageToken, 13, 5], GoldenPixels("chelsea", aspect), new GenerationOptions { MaxNewTokens = 6 });
        Assert.Equal(expected.NewIds, Ids(r.Stdout, "new ids:"));
        // Another image gives other ids, so the ids depend on the pixels the CLI fed the model. (Crop and pad of one
        // photo give the same ids on this random model; the trace test pins each pipeline's pixels exactly.)
        var other = model.Generate(model.NewState(), [1, 7, ImageToken, 13, 5], GoldenPixels("camera", aspect), new GenerationOptions { MaxNewTokens = 6 });
        Assert.NotEqual(expected.NewIds, other.NewIds);
        Assert.Equal(4 + 576, Ids(r.Stdout, "prompt ids:").Length);
        Assert.Contains($"({aspect}, 576 image tokens)", r.Stderr);
    }

    [SkippableFact]
    public void Generate_PromptText_ExpandsTheImageAddedToken()
    {
        string image = SharedData.Path("data", "images", "camera.png");
        using var tmp = new TempDir();
        string folder = Checkpoint(tmp);
        // A word-level tokenizer.json over all 64 ids whose <image> is an added token with the checkpoint's image token id.
        var words = new Dictionary<int, string> { [7] = "USER:", [13] = "What", [5] = "is", [9] = "this?", [22] = "ASSISTANT:" };
        string vocab = string.Join(",", Enumerable.Range(1, 63).Where(id => id != ImageToken).Select(id => $"\"{words.GetValueOrDefault(id, $"w{id}")}\":{id}"));
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), $$$"""
            {"version":"1.0","added_tokens":[{"id":0,"content":"[UNK]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
              {"id":{{{ImageToken}}},"content":"<image>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
             "normalizer":null,"pre_tokenizer":{"type":"WhitespaceSplit"},"post_processor":null,"decoder":null,
             "model":{"type":"WordLevel","vocab":{"[UNK]":0,{{{vocab}}}},"unk_token":"[UNK]"}}
            """);
        var r = CliRunner.Run("generate", folder, "--prompt", "USER: <image> What is this? ASSISTANT:", "--image", image, "--max-new-tokens", "4", "--ids");
        Assert.True(r.ExitCode == 0, r.Stderr);

        using var model = LlavaModel.Load(folder);
        var expected = model.Generate(model.NewState(), [7, ImageToken, 13, 5, 9, 22], GoldenPixels("camera", "crop"), new GenerationOptions { MaxNewTokens = 4 });
        Assert.Equal([7, .. Enumerable.Repeat(ImageToken, 576), 13, 5, 9, 22], Ids(r.Stdout, "prompt ids:"));
        Assert.Equal(expected.NewIds, Ids(r.Stdout, "new ids:"));
        // The text is the prompt as given (the special <image> skipped in decoding, as transformers' skip_special_tokens), not 576 copies.
        Assert.Equal($"USER: What is this? ASSISTANT: {string.Join(' ', expected.NewIds.Select(id => words.GetValueOrDefault(id, $"w{id}")))}", r.Stdout.Split('\n')[^2]);
    }

    [SkippableTheory]
    [InlineData("crop")]
    [InlineData("pad")]
    public void Trace_WithImage_WritesVisionAndDecoderHooks(string aspect)
    {
        string image = SharedData.Path("data", "images", "chelsea.png");
        using var tmp = new TempDir();
        string folder = Checkpoint(tmp);
        string output = tmp.File("trace.safetensors");
        var r = CliRunner.Run("trace", folder, "--token-ids", $"1,{ImageToken},13,5", "--image", image, "--image-aspect", aspect,
            "--hooks", "vision.*,hook_image_features,blocks.*.hook_resid_post,logits", "--positions", "-1", "--out", output);
        Assert.True(r.ExitCode == 0, r.Stderr);

        float[] pixels = GoldenPixels("chelsea", aspect);
        using var model = LlavaModel.Load(folder);
        float[] features = model.EncodeImage(model.NewState(), pixels).ToArray();
        var capture = new ActivationCapture(model.Config.Text, [HookNames.Logits], [-1]);
        model.Forward(model.NewState(), [1, ImageToken, 13, 5], pixels, capture);

        using var f = SafetensorsFile.Open(output);
        string[] expectedNames = ["vision.hook_pixel_values", "vision.blocks.0.hook_resid_post", "vision.blocks.1.hook_resid_post", "vision.hook_features", "hook_image_features", "blocks.0.hook_resid_post", "blocks.1.hook_resid_post", "logits"];
        Assert.Equal(expectedNames.Order(), f.Tensors.Keys.Order());
        Assert.Equal(pixels, f.ReadSingles(f.Get("vision.hook_pixel_values")));
        Assert.Equal(features, f.ReadSingles(f.Get("hook_image_features")));
        Assert.Equal([576L, 64L], f.Get("hook_image_features").Shape);
        Assert.Equal([577L, 32L], f.Get("vision.blocks.1.hook_resid_post").Shape); // class row first, every row kept
        Assert.Equal(capture[HookNames.Logits].Data, f.ReadSingles(f.Get("logits")));
        Assert.Equal(3 + 576, f.Metadata["token_ids"].Split(',').Length);
        Assert.Equal(aspect, f.Metadata["image_aspect"]);
        Assert.Equal(Path.GetFullPath(image), f.Metadata["image"]);
    }

    [Fact]
    public void Inspect_ShowsTowerProjectorImageTokenAndPreprocessing()
    {
        using var tmp = new TempDir();
        var r = CliRunner.Run("inspect", Checkpoint(tmp));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("2 of 3 layers run (features from hidden_states[-2]), hidden 32, 2 heads, ffn 48, quick_gelu, patch 14, image 336x336", r.Stdout);
        Assert.Contains("projector:    linear 32 -> 64, GELU, linear 64 -> 64 (with biases)", r.Stdout);
        Assert.Contains("image token:  60, 576 per image (576 patches, class token dropped)", r.Stdout);
        Assert.Contains("aspect crop by default (--image-aspect pad|crop), resize shortest edge to 336 (bicubic), centre crop 336x336, rescale x0.00392157, " +
            "normalise mean [0.48145466, 0.4578275, 0.40821073] std [0.26862954, 0.26130258, 0.27577711]", r.Stdout);
        Assert.Contains("shape:        2 layers, d_model 64", r.Stdout);
    }

    [Fact]
    public void BadImageInput_IsOneClearErrorEach()
    {
        using var tmp = new TempDir();
        string folder = Checkpoint(tmp);
        string missing = tmp.File("no-such.png");
        string notImage = tmp.File("notes.png");
        File.WriteAllText(notImage, "not an image");
        string text = tmp.File("text");
        RandomModel.WriteHf(text, LlavaModelTests.Tiny(56).Text, 3, WeightDType.F32);
        string bare = tmp.File("bare");
        LlavaCheckpoint.WriteRandom(bare, LlavaModelTests.Tiny(336), LlavaLayout.Hub, 17, WeightDType.F32);

        void Fails(string expected, params string[] argv)
        {
            var r = CliRunner.Run(argv);
            Assert.Equal(2, r.ExitCode);
            Assert.Contains(expected, r.Stderr);
            Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }
        string ids = $"1,{ImageToken},5";
        Fails($"{missing}: image file not found", "generate", folder, "--token-ids", ids, "--image", missing);
        Fails($"{notImage}: not a PNG or JPEG image", "generate", folder, "--token-ids", ids, "--image", notImage);
        Fails("--image needs a vision-language model (a llava-hf folder)", "generate", text, "--token-ids", "1,5", "--image", missing);
        Fails("--image needs the image token <image> (id 60) in the prompt", "trace", folder, "--token-ids", "1,5", "--image", missing, "--hooks", "logits", "--out", tmp.File("t.safetensors"));
        Fails("the prompt holds the image token (id 60) but no image was given", "generate", folder, "--token-ids", ids);
        Fails("--image-aspect applies to an image", "generate", folder, "--token-ids", "1,5", "--image-aspect", "pad");
        Fails("--image-aspect must be 'pad' or 'crop', got 'wide'", "generate", folder, "--token-ids", ids, "--image", missing, "--image-aspect", "wide");
        Fails($"{Path.Combine(bare, LlavaModel.PreprocessorFile)}: not found", "generate", bare, "--token-ids", ids, "--image", notImage);
        Assert.False(File.Exists(tmp.File("t.safetensors")));
        Fails("is a LLaVA checkpoint; only text decoders are converted", "convert", folder, "--out", tmp.File("c.gguf"));
        Fails("is a LLaVA checkpoint; folding gates into it is not supported", "patch", folder, "--gates", WriteOnes(tmp), "--out", tmp.File("patched"));
        Assert.False(File.Exists(tmp.File("c.gguf")) || Directory.Exists(tmp.File("patched")));
    }

    /// <summary>A gate table of ones for the tiny decoder (2 layers x 4 heads).</summary>
    private static string WriteOnes(TempDir tmp)
    {
        string path = tmp.File("ones.npy");
        Npy.WriteFloat64(path, Enumerable.Repeat(1.0, 2 * 4).ToArray(), 2, 4);
        return path;
    }
}
