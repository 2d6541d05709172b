using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Vision;

namespace TruthProbe.Tests.Vision;

/// <summary>
/// NaN and infinity on the image path (CLIP tower and projector, Qwen vision encoder and merger): found where they first
/// appear, named by the checkpoint's tensor names, and allowed by the same switch as the decoder's.
/// </summary>
public sealed class VisionNonFiniteTests
{
    /// <summary>Sets float32 element <paramref name="index"/> of <paramref name="tensor"/> in the folder's single safetensors file.</summary>
    private static void SetWeight(string folder, string tensor, int index, float value)
    {
        string file = Path.Combine(folder, HfCheckpoint.SingleFile);
        long begin;
        using (var st = SafetensorsFile.Open(file)) begin = st.Get(tensor).Offset;
        byte[] bytes = File.ReadAllBytes(file);
        BitConverter.GetBytes(value).CopyTo(bytes, begin + 4 * index);
        File.WriteAllBytes(file, bytes);
    }

    private static string Llava(TempDir tmp)
    {
        string folder = tmp.File("llava");
        LlavaCheckpoint.WriteRandom(folder, LlavaModelTests.Tiny(56), LlavaLayout.Hub, 11, WeightDType.F32);
        return folder;
    }

    [Theory]
    // A CLIP layer's matrix: [48, 32], element 2 * 32 + 7.
    [InlineData("vision_tower.vision_model.encoder.layers.1.mlp.fc1.weight", 2 * 32 + 7, "row 2, column 7")]
    // A vector (copied to float32 at load): row 0.
    [InlineData("vision_tower.vision_model.embeddings.class_embedding", 5, "row 0, column 5")]
    // The projector's second linear [64, 64].
    [InlineData("multi_modal_projector.linear_2.weight", 3 * 64 + 1, "row 3, column 1")]
    public void LlavaNonFiniteWeight_IsNamedWithRowAndColumn_UnlessAllowed(string tensor, int index, string where)
    {
        using var tmp = new TempDir();
        string folder = Llava(tmp);
        SetWeight(folder, tensor, index, float.PositiveInfinity);
        using var model = LlavaModel.Load(folder);
        var pixels = LlavaModelTests.Pixels(56, 5);
        var e = Assert.Throws<UserError>(() => model.EncodeImage(model.NewState(), pixels));
        Assert.Equal($"{folder}: weight {tensor} holds Infinity at {where}; a non-finite weight makes every later activation NaN, so the checkpoint is corrupt or was saved after training diverged", e.Message);
        Assert.Equal(FiniteWeights.AllowField, e.Field);

        model.Language.AllowNonFinite = true;
        var features = model.EncodeImage(model.NewState(), pixels).ToArray();
        Assert.Contains(features, v => !float.IsFinite(v));
    }

    [Fact]
    public void LlavaFiniteWeightThatOverflows_IsReportedAtTheFirstCapturedLayer()
    {
        // layer_norm2's weight of 3e38 is finite, but times a normalised value above 1.14 it is not: layer 0's output
        // overflows, and so does everything after it.
        using var tmp = new TempDir();
        string folder = Llava(tmp);
        SetWeight(folder, "vision_tower.vision_model.encoder.layers.0.layer_norm2.weight", 4, 3e38f);
        using var model = LlavaModel.Load(folder);
        var pixels = LlavaModelTests.Pixels(56, 5);
        var capture = new VisionCapture(model.Config, ["vision.blocks.*.hook_resid_post"]);
        var e = Assert.Throws<UserError>(() => model.EncodeImage(model.NewState(), pixels, capture));
        Assert.StartsWith($"{folder}: vision.blocks.0.hook_resid_post is ", e.Message);
        Assert.EndsWith("although the vision weights and pixels are finite: an activation overflowed float32 (an extreme weight or vision_config value)", e.Message);

        // Without a capture, the image features are where it shows.
        e = Assert.Throws<UserError>(() => model.EncodeImage(model.NewState(), pixels));
        Assert.StartsWith($"{folder}: hook_image_features is ", e.Message);
    }

    [Fact]
    public void LlavaNaNPixel_IsRefusedBeforeTheTower()
    {
        using var tmp = new TempDir();
        using var model = LlavaModel.Load(Llava(tmp));
        var pixels = LlavaModelTests.Pixels(56, 5);
        pixels[100] = float.NaN;
        var e = Assert.Throws<UserError>(() => model.EncodeImage(model.NewState(), pixels));
        Assert.Contains("pixel value 100 is NaN", e.Message);
    }

    [Theory]
    // VL: q, k and v fused; element (row 32 + 3, column 9) is k's row 3, reported as the file's row.
    [InlineData("hub", "visual.blocks.2.attn.qkv.weight", (32 + 3) * 32 + 9, "row 35, column 9")]
    [InlineData("hub", "visual.blocks.0.attn.qkv.bias", 32 + 6, "row 0, column 38")]
    // Omni thinker: q, k and v apart.
    [InlineData("thinker", "thinker.visual.blocks.1.attn.k.weight", 3 * 32 + 9, "row 3, column 9")]
    [InlineData("thinker", "thinker.visual.merger.mlp.0.weight", 128 + 2, "row 1, column 2")]
    public void QwenNonFiniteWeight_IsNamedWithRowAndColumn(string layoutName, string tensor, int index, string where)
    {
        using var tmp = new TempDir();
        var layout = QwenLayout.All.Single(l => l.Name == layoutName);
        string folder = QwenVisionTests.Write(tmp, QwenVisionTests.Tiny(omni: layout == QwenLayout.Thinker), layout);
        SetWeight(folder, tensor, index, float.NaN);
        using var model = QwenVLModel.Load(folder);
        var image = new QwenImage(QwenVisionTests.StillPixels(112, 112, 3), 1, 8, 8, 2);
        var e = Assert.Throws<UserError>(() => model.EncodeImage(model.NewState(), image));
        Assert.Contains($"weight {tensor} holds NaN at {where};", e.Message);
    }

    [Fact]
    public void QwenCli_NaNVisionWeight_FailsWithOneLine_AndRunsWithAllowNonFinite()
    {
        using var tmp = new TempDir();
        string folder = QwenCliTests.Checkpoint(tmp), photo = QwenCliTests.Photo(tmp, 3);
        SetWeight(folder, "visual.blocks.1.mlp.down_proj.weight", 5, float.NaN);
        string[] args = ["generate", folder, "--token-ids", "1,71,70,72,13,5", "--image", photo, "--max-new-tokens", "2", "--ids"];
        var refused = CliRunner.Run(args);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("weight visual.blocks.1.mlp.down_proj.weight holds NaN at row 0, column 5", refused.Stderr);
        Assert.Single(refused.Stderr.Trim().Split('\n'));
        Assert.Equal(0, CliRunner.Run([.. args, "--allow-nonfinite"]).ExitCode);
    }
}
