using System.Globalization;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Vision;

namespace TruthProbe.Tests.Vision;

/// <summary>
/// The original liuhaotian/llava-v1.5 layout (LlavaLlamaForCausalLM + a separate CLIP folder) against the llava-hf
/// folder holding the same random weights, renamed as transformers' convert_llava_weights_to_hf renames them.
/// </summary>
public sealed class LlavaOriginalTests
{
    private const int HfImageToken = 60;

    /// <summary>llava-hf's CLIPImageProcessor settings at the tiny tower's image size.</summary>
    private static readonly string Clip56 = LlavaCliTests.Preprocessor336.Replace("336", "56", StringComparison.Ordinal);

    /// <summary>
    /// A llava-hf folder of <paramref name="c"/> and the same weights in the original layout: the decoder as a plain
    /// Llama checkpoint (<c>model.*</c>, <c>lm_head</c>), the projector as <c>model.mm_projector.0/2</c>, the tower as a
    /// CLIPVisionModel folder (<c>vision_model.*</c>, its own config and preprocessor config).
    /// </summary>
    private static (string Hf, string Original, string Clip) Write(TempDir tmp, LlavaConfig c)
    {
        string hf = tmp.File("hf");
        LlavaCheckpoint.WriteRandom(hf, c, LlavaLayout.Hub, 21, WeightDType.F32);
        File.WriteAllText(Path.Combine(hf, LlavaModel.PreprocessorFile), Clip56);
        var (original, clip) = ToOriginal(tmp, hf, c);
        return (hf, original, clip);
    }

    /// <summary>The hub-layout llava-hf folder <paramref name="hf"/> of <paramref name="c"/> renamed into the original layout and a CLIP folder (its tokenizer.json copied along).</summary>
    internal static (string Original, string Clip) ToOriginal(TempDir tmp, string hf, LlavaConfig c)
    {
        string original = tmp.File("original"), clip = tmp.File("clip");
        Directory.CreateDirectory(original);
        Directory.CreateDirectory(clip);
        var text = new List<SafetensorToWrite>();
        var tower = new List<SafetensorToWrite>();
        using (var file = SafetensorsFile.Open(Path.Combine(hf, "model.safetensors")))
            foreach (var (name, info) in file.Tensors)
            {
                string? renamed = name.StartsWith("language_model.model.", StringComparison.Ordinal) ? "model." + name["language_model.model.".Length..]
                    : name == "language_model.lm_head.weight" ? "lm_head.weight"
                    : name.StartsWith("multi_modal_projector.linear_1.", StringComparison.Ordinal) ? "model.mm_projector.0." + name["multi_modal_projector.linear_1.".Length..]
                    : name.StartsWith("multi_modal_projector.linear_2.", StringComparison.Ordinal) ? "model.mm_projector.2." + name["multi_modal_projector.linear_2.".Length..]
                    : null;
                var data = file.ReadSingles(info);
                if (renamed != null) text.Add(SafetensorToWrite.FromSingles(renamed, info.Shape, data));
                else tower.Add(SafetensorToWrite.FromSingles(name["vision_tower.".Length..], info.Shape, data));
            }
        SafetensorsWriter.Write(Path.Combine(original, "model.safetensors"), text);
        SafetensorsWriter.Write(Path.Combine(clip, "model.safetensors"), tower);

        var hfConfig = JsonNode.Parse(LlavaCheckpoint.ConfigJson(c))!.AsObject();
        var vision = hfConfig["vision_config"]!.AsObject();
        vision["architectures"] = new JsonArray("CLIPVisionModel");
        File.WriteAllText(Path.Combine(clip, "config.json"), vision.ToJsonString());
        File.WriteAllText(Path.Combine(clip, LlavaModel.PreprocessorFile), Clip56);
        // liuhaotian/llava-v1.5-7b's config.json fields around the Llama ones.
        var root = JsonNode.Parse(c.Text.ToHfConfigJson())!.AsObject();
        root["architectures"] = new JsonArray("LlavaLlamaForCausalLM");
        root["model_type"] = "llava";
        root["image_aspect_ratio"] = "pad";
        root["mm_hidden_size"] = c.Vision.Hidden;
        root["mm_patch_merge_type"] = "flat";
        root["mm_projector_type"] = "mlp2x_gelu";
        root["mm_use_im_patch_token"] = false;
        root["mm_use_im_start_end"] = false;
        root["mm_vision_select_feature"] = "patch";
        root["mm_vision_select_layer"] = c.FeatureLayer;
        root["mm_vision_tower"] = "openai/clip-vit-large-patch14-336";
        File.WriteAllText(Path.Combine(original, "config.json"), root.ToJsonString());
        if (File.Exists(Path.Combine(hf, "tokenizer.json"))) File.Copy(Path.Combine(hf, "tokenizer.json"), Path.Combine(original, "tokenizer.json"));
        return (original, clip);
    }

    [Fact]
    public void OriginalLayout_GivesTheConvertedFoldersOutputs()
    {
        using var tmp = new TempDir();
        var c = LlavaModelTests.Tiny(56);
        var (hf, originalFolder, clip) = Write(tmp, c);
        using var converted = LlavaModel.Load(hf);
        using var original = LlavaModel.Load(originalFolder, visionTower: clip);
        Assert.True(original.Config.Original);
        Assert.Equal(LlavaConfig.OriginalImageToken, original.Config.ImageTokenId);
        Assert.Equal(AspectMode.Pad, original.DefaultAspect);
        Assert.Equal(AspectMode.Crop, converted.DefaultAspect);
        Assert.Equal(c.Vision, original.Config.Vision);
        Assert.Equal(c.Text.ToHfConfigJson(), original.Config.Text.ToHfConfigJson());
        Assert.Equal((c.FeatureLayer, c.Select, c.ProjectorBias), (original.Config.FeatureLayer, original.Config.Select, original.Config.ProjectorBias));

        var pixels = LlavaModelTests.Pixels(56, 9);
        (float[] Logits, float[] Image, float[] Z) Run(LlavaModel model, int imageToken)
        {
            var capture = new ActivationCapture(c.Text, [HookNames.Logits, "blocks.1.attn.hook_z"]);
            var vision = new VisionCapture(model.Config, ["hook_image_features"]);
            model.Forward(model.NewState(), [1, 7, imageToken, 13, 5], pixels, capture, visionCapture: vision);
            return (capture[HookNames.Logits].Data, vision["hook_image_features"].Data, capture[HookNames.Name(HookKind.Z, 1)].Data);
        }
        var a = Run(converted, HfImageToken);
        var b = Run(original, LlavaConfig.OriginalImageToken);
        Assert.Equal(a.Image, b.Image);
        Assert.Equal(a.Z, b.Z);
        Assert.Equal(a.Logits, b.Logits);

        var options = new GenerationOptions { MaxNewTokens = 5, StopAtEos = false };
        var g1 = converted.Generate(converted.NewState(), [1, HfImageToken, 13], pixels, options);
        var g2 = original.Generate(original.NewState(), [1, LlavaConfig.OriginalImageToken, 13], pixels, options);
        Assert.Equal(g1.NewIds, g2.NewIds);
        Assert.Equal([1, .. Enumerable.Repeat(LlavaConfig.OriginalImageToken, 16), 13], g2.PromptIds);
    }

    [Fact]
    public void BadInput_IsOneClearErrorEach()
    {
        using var tmp = new TempDir();
        var c = LlavaModelTests.Tiny(56);
        var (_, original, clip) = Write(tmp, c);
        var missing = Assert.Throws<UserError>(() => LlavaModel.Load(original).Dispose()).Message;
        Assert.Contains("'openai/clip-vit-large-patch14-336'", missing);
        Assert.Contains("--vision-tower DIR", missing);
        Assert.True(LlavaCheckpoint.IsLlavaFolder(original));

        string config = Path.Combine(original, "config.json");
        var root = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
        root["mm_hidden_size"] = 1024;
        File.WriteAllText(config, root.ToJsonString());
        Assert.Contains("'mm_hidden_size' is 1024 but the vision tower", Assert.Throws<UserError>(() => LlavaModel.Load(original, visionTower: clip).Dispose()).Message);
        root["mm_hidden_size"] = c.Vision.Hidden;
        root["mm_projector_type"] = "linear";
        File.WriteAllText(config, root.ToJsonString());
        Assert.Contains("supported: mlp2x_gelu", Assert.Throws<UserError>(() => LlavaModel.Load(original, visionTower: clip).Dispose()).Message);
    }

    /// <summary>
    /// LLaVA's tokenizer_image_token on the llava-1.5 prompt with the plain Llama-2 tokenizer (no &lt;image&gt; token):
    /// the ids transformers' processor gives the converted model, with -200 in place of 32000. Each piece is tokenized
    /// alone, so the piece after the image starts with the dummy prefix 29871 too, and its BOS is dropped.
    /// </summary>
    [SkippableFact]
    public void OriginalPrompt_SplitsAtImage_AsTokenizerImageToken()
    {
        string tokenizer = SharedData.Path("models", "llama2-tokenizer", "tokenizer.model");
        using var tmp = new TempDir();
        var c = LlavaModelTests.Tiny(56);
        c = c with { Text = c.Text with { Vocab = 32000 } };
        var (_, original, clip) = Write(tmp, c);
        using var model = LlavaModel.Load(original, tokenizer, clip);
        int[] expected = [1, 3148, 1001, 29901, 29871, -200, 29871, 13, 5618, 29915, 29879, 278, 2793, 310, 278, 1967, 29973, 13, 22933, 9047, 13566, 29901];
        Assert.Equal(expected, model.EncodePrompt("USER: <image>\nWhat's the content of the image?\nASSISTANT:"));
    }

    [SkippableFact]
    public void Cli_Generate_WithVisionTower_MatchesTheConvertedFolder()
    {
        string photo = SharedData.Path("data", "images", "chelsea.png");
        using var tmp = new TempDir();
        var (hf, original, clip) = Write(tmp, LlavaModelTests.Tiny(56));
        static int[] NewIds(CliRunner.Result r) => r.Stdout.Split('\n').Single(l => l.StartsWith("new ids:", StringComparison.Ordinal))["new ids:".Length..]
            .Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        // The original layout pads by default (image_aspect_ratio "pad"); the converted folder is told to.
        var a = CliRunner.Run("generate", original, "--vision-tower", clip, "--token-ids", "1,7,-200,13,5", "--image", photo, "--max-new-tokens", "4", "--ids");
        Assert.True(a.ExitCode == 0, a.Stderr);
        var b = CliRunner.Run("generate", hf, "--token-ids", $"1,7,{HfImageToken},13,5", "--image", photo, "--image-aspect", "pad", "--max-new-tokens", "4", "--ids");
        Assert.True(b.ExitCode == 0, b.Stderr);
        Assert.Equal(NewIds(b), NewIds(a));
        Assert.Contains("(pad, 16 image tokens)", a.Stderr);

        var missing = CliRunner.Run("generate", original, "--token-ids", "1,7,-200,13,5", "--image", photo);
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("mm_vision_tower is 'openai/clip-vit-large-patch14-336'", missing.Stderr);
    }
}
