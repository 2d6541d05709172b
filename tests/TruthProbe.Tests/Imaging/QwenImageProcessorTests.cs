using TruthProbe.Common;
using TruthProbe.Imaging;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Imaging;

public class QwenImageProcessorTests
{
    private const int HubMax = 16384 * 28 * 28;

    /// <summary>
    /// Expected sizes from transformers' smart_resize formula run in Python 3 (its round is half to even); the
    /// 640x480, 500x375, 1024x768 and 600x400 rows also give the published token counts 391, 234, 999 and 294.
    /// </summary>
    [Theory]
    [InlineData(480, 640, 3136, HubMax, 476, 644, 391)]
    [InlineData(375, 500, 3136, HubMax, 364, 504, 234)]
    [InlineData(768, 1024, 3136, HubMax, 756, 1036, 999)]
    [InlineData(400, 600, 3136, HubMax, 392, 588, 294)]
    [InlineData(336, 336, 3136, HubMax, 336, 336, 144)]
    [InlineData(490, 300, 3136, HubMax, 504, 308, 198)]       // 490 / 28 = 17.5 rounds to 18
    [InlineData(518, 300, 3136, HubMax, 504, 308, 198)]       // 518 / 28 = 18.5 rounds to 18, not 19
    [InlineData(300, 490, 3136, HubMax, 308, 504, 198)]
    [InlineData(300, 518, 3136, HubMax, 308, 504, 198)]
    [InlineData(28, 28, 3136, HubMax, 56, 56, 4)]             // under min_pixels: sqrt(3136 / 784) = 2, ceil
    [InlineData(30, 40, 3136, HubMax, 56, 84, 6)]
    [InlineData(1500, 2000, 3136, 28 * 28 * 1280, 840, 1148, 1230)]   // over the class default max: floor
    [InlineData(336, 336, 200704, 1605632, 448, 448, 256)]  // lmms-eval's min_pixels upscales 336 to 448
    [InlineData(28, 5600, 3136, HubMax, 28, 5600, 200)]       // ratio exactly 200 is allowed
    public void SmartResize_MatchesPythonFormula(int h, int w, int min, int max, int eh, int ew, int tokens)
    {
        var (rh, rw) = QwenImageProcessor.SmartResize(h, w, 28, min, max);
        Assert.Equal((eh, ew), (rh, rw));
        Assert.Equal(tokens, rh / 28 * (rw / 28));
        Assert.InRange((long)rh * rw, min, Math.Max(max, 28L * 28));
    }

    [Theory]
    [InlineData(28, 5601, "aspect ratio of 200")]
    [InlineData(5601, 28, "ratio")]
    [InlineData(27, 100, "at least 28")]
    [InlineData(100, 10, "at least 28")]
    public void SmartResize_BadImages_AreOneUserError(int h, int w, string fragment)
    {
        var e = Assert.Throws<UserError>(() => QwenImageProcessor.SmartResize(h, w, 28, 3136, HubMax));
        Assert.Contains(fragment, e.Message);
        Assert.Contains($"{w}x{h}", e.Message);
    }

    /// <summary>R = x, G = y, B = x + y (mod 256) at pixel (x, y).</summary>
    private static RgbImage Coordinates(int width, int height)
    {
        var image = new RgbImage(width, height);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                image.Row(y)[3 * x] = (byte)x;
                image.Row(y)[3 * x + 1] = (byte)y;
                image.Row(y)[3 * x + 2] = (byte)(x + y);
            }
        return image;
    }

    [Fact]
    public void Patchify_CoordinateImage_RowsInMergeGroupOrderValuesChannelFrameYX()
    {
        // 84 x 56: no resize (multiples of 28 within the budget), no rescale or normalisation, so values are the bytes.
        var config = new QwenImageConfig { DoRescale = false, DoNormalize = false };
        var image = new QwenImageProcessor(config).Preprocess(Coordinates(84, 56));
        Assert.Equal((1, 4, 6), (image.GridT, image.GridH, image.GridW));
        Assert.Equal(24, image.Patches);
        Assert.Equal(6, image.Tokens);
        Assert.Equal(24 * 1176, image.PixelValues.Length);
        int row = 0;
        // The order transformers' permute (0, 3, 6, 4, 7, 2, 1, 5, 8) gives, written as nested loops.
        for (int by = 0; by < 2; by++)
            for (int bx = 0; bx < 3; bx++)
                for (int iy = 0; iy < 2; iy++)
                    for (int ix = 0; ix < 2; ix++, row++)
                    {
                        int py = 2 * by + iy, px = 2 * bx + ix;
                        for (int ch = 0; ch < 3; ch++)
                            for (int frame = 0; frame < 2; frame++)
                                for (int y = 0; y < 14; y++)
                                    for (int x = 0; x < 14; x++)
                                    {
                                        int gx = 14 * px + x, gy = 14 * py + y;
                                        float expected = ch == 0 ? gx : ch == 1 ? gy : (gx + gy) % 256;
                                        float actual = image.PixelValues[row * 1176 + ((ch * 2 + frame) * 14 + y) * 14 + x];
                                        if (actual != expected) Assert.Fail($"row {row} (patch {py},{px}) ch {ch} frame {frame} ({x},{y}): {actual} != {expected}");
                                    }
                    }
    }

    [Fact]
    public void Preprocess_NormalisesAsClip()
    {
        // One grey value 128 everywhere: (float32(128 / 255) - mean) / std per channel, in float32.
        var image = new RgbImage(56, 56, Enumerable.Repeat((byte)128, 3 * 56 * 56).ToArray());
        var result = new QwenImageProcessor(new QwenImageConfig()).Preprocess(image);
        float x = (float)(128 * (1 / 255.0));
        float[] expected = [.. ClipConfig.ClipMean.Zip(ClipConfig.ClipStd, (m, s) => (x - (float)m) / (float)s)];
        for (int ch = 0; ch < 3; ch++)
            Assert.Equal(expected[ch], result.PixelValues[ch * 2 * 196 + 17]);
    }

    [SkippableFact]
    public void SharedRetina_ResizedToTheBudget_EqualsPillowBicubicGolden()
    {
        // 1411 x 1411 under max_pixels 120000: floor(sqrt(120000) / 28) = 12, so 336 x 336; Pillow's bicubic resize to
        // 336 x 336 is the clip336_crop golden (the crop is then a no-op on a square image).
        var image = ImageFile.Load(SharedData.Path("data", "images", "retina.jpg"));
        var golden = ImageFile.Load(SharedData.Path("data", "images", "golden", "retina__jpg.clip336_crop.png"));
        var geometry = new QwenImageProcessor(new QwenImageConfig { MaxPixels = 120000 }).Geometry(image);
        PixelAsserts.AssertSamePixels(golden, geometry, "retina at max_pixels 120000");
    }

    [Fact]
    public void Read_HubFile_TakesItsBudgetAndMinMaxWinOverSize()
    {
        using var tmp = new TempDir();
        string path = tmp.File("preprocessor_config.json");
        File.WriteAllText(path, """
            {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
             "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
             "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor",
             "size": {"shortest_edge": 1000, "longest_edge": 2000000}, "resample": 3, "rescale_factor": 0.00392156862745098}
            """);
        var c = QwenImageConfig.Read(path);
        Assert.Equal((3136, 12845056, 28, 1176), (c.MinPixels, c.MaxPixels, c.Factor, c.PatchValues));
        File.WriteAllText(path, """{"size": {"shortest_edge": 1000, "longest_edge": 2000000}}""");
        Assert.Equal((1000, 2000000), (QwenImageConfig.Read(path).MinPixels, QwenImageConfig.Read(path).MaxPixels));
    }

    [Theory]
    [InlineData("""{"image_processor_type": "CLIPImageProcessor"}""", "image_processor_type")]
    [InlineData("""{"min_pixels": "3136"}""", "min_pixels")]
    [InlineData("""{"min_pixels": 5000, "max_pixels": 4000}""", "above max_pixels")]
    [InlineData("""{"image_std": [0.2, 0, 0.2]}""", "image_std")]
    [InlineData("""{"resample": 1}""", "resample")]
    public void Read_BadFields_AreOneUserErrorNamingTheField(string json, string field)
    {
        using var tmp = new TempDir();
        string path = tmp.File("preprocessor_config.json");
        File.WriteAllText(path, json);
        var e = Assert.Throws<UserError>(() => QwenImageConfig.Read(path));
        Assert.Contains(field, e.Message);
        Assert.Contains(path, e.Message);
    }
}
