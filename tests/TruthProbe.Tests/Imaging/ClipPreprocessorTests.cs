using TruthProbe.Common;
using TruthProbe.Imaging;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Imaging;

public class ClipPreprocessorTests
{
    public static TheoryData<string, AspectMode> PngGoldens => new()
    {
        { "astronaut", AspectMode.Crop }, { "camera", AspectMode.Crop }, { "chelsea", AspectMode.Crop },
        { "coffee", AspectMode.Crop }, { "coins", AspectMode.Crop }, { "horse", AspectMode.Crop },
        { "astronaut", AspectMode.Pad }, { "camera", AspectMode.Pad }, { "chelsea", AspectMode.Pad },
        { "coffee", AspectMode.Pad }, { "coins", AspectMode.Pad }, { "horse", AspectMode.Pad },
    };

    [SkippableTheory]
    [MemberData(nameof(PngGoldens))]
    public void SharedPng_Clip336Geometry_EqualsPillowGolden(string stem, AspectMode aspect)
    {
        var image = ImageFile.Load(SharedData.Path("data", "images", stem + ".png"));
        string suffix = aspect == AspectMode.Crop ? "clip336_crop" : "clip336_pad";
        var golden = ImageFile.Load(SharedData.Path("data", "images", "golden", $"{stem}__png.{suffix}.png"));
        Assert.Equal((336, 336), (golden.Width, golden.Height));
        PixelAsserts.AssertSamePixels(golden, new ClipPreprocessor(ClipConfig.Clip336, aspect).Geometry(image), $"{stem} {aspect}");
    }

    private static RgbImage Numbered(int width, int height) =>
        new(width, height, [.. Enumerable.Range(0, width * height).SelectMany(i => new[] { (byte)i, (byte)(i + 100), (byte)(i + 200) })]);

    private static byte[] Reds(RgbImage image) => [.. image.Pixels.Where((_, i) => i % 3 == 0)];

    [Theory]
    [InlineData(512, 512, 336, 336)]
    [InlineData(451, 300, 505, 336)] // int(336 * 451 / 300) = int(505.12)
    [InlineData(300, 451, 336, 505)]
    [InlineData(600, 400, 504, 336)] // exactly 504
    [InlineData(1411, 1, 474096, 336)]
    public void ResizeSize_ShortSideToSize_LongSideTruncated(int width, int height, int newWidth, int newHeight)
    {
        Assert.Equal((newWidth, newHeight), new ClipPreprocessor(ClipConfig.Clip336).ResizeSize(width, height));
    }

    [Fact]
    public void CenterCrop_OddDifference_FloorsTheOffset()
    {
        // 5x3 -> 2x2: left (5 - 2) // 2 = 1, top (3 - 2) // 2 = 0. Reds are the pixel indices y * 5 + x.
        var crop = ClipPreprocessor.CenterCrop(Numbered(5, 3), 2, 2);
        Assert.Equal((2, 2), (crop.Width, crop.Height));
        Assert.Equal([1, 2, 6, 7], Reds(crop));
    }

    [Fact]
    public void CenterCrop_LargerThanImage_CentresOnZerosAsTransformers()
    {
        // transformers pads 2x2 to 5x3 with the image at top ceil(1 / 2) = 1, left ceil(3 / 2) = 2, then takes
        // rows (-1 + 1)..(2 + 1), columns (-2 + 2)..(3 + 2): the whole padded image.
        var crop = ClipPreprocessor.CenterCrop(Numbered(2, 2), 5, 3);
        Assert.Equal((5, 3), (crop.Width, crop.Height));
        Assert.Equal([0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 3, 0], Reds(crop));
        Assert.Equal(0, crop.Pixels[3 * 6 + 1]); // padding is black in every channel; the image's first pixel follows
        Assert.Equal(100, crop.Pixels[3 * 7 + 1]);
    }

    [Fact]
    public void ExpandToSquare_PastesAtFloorHalfOnTheMeanColour()
    {
        var preprocessor = new ClipPreprocessor(ClipConfig.Clip336, AspectMode.Pad);
        Assert.Equal(((byte)122, (byte)116, (byte)104), preprocessor.MeanColour());
        // 3x1 -> 3x3 with the row at (3 - 1) // 2 = 1; 1x4 -> 4x4 with the column at (4 - 1) // 2 = 1.
        var wide = ClipPreprocessor.ExpandToSquare(Numbered(3, 1), (122, 116, 104));
        Assert.Equal([122, 122, 122, 0, 1, 2, 122, 122, 122], Reds(wide));
        Assert.Equal([116, 104], wide.Pixels[1..3]);
        var tall = ClipPreprocessor.ExpandToSquare(Numbered(1, 4), (9, 9, 9));
        Assert.Equal([9, 0, 9, 9, 9, 1, 9, 9, 9, 2, 9, 9, 9, 3, 9, 9], Reds(tall));
    }

    [Fact]
    public void Normalize_EveryByteValue_MatchesClosedFormAndFloat32Recipe()
    {
        // All 256 values in each channel, channels first.
        var image = new RgbImage(256, 1, [.. Enumerable.Range(0, 256).SelectMany(v => new[] { (byte)v, (byte)v, (byte)v })]);
        var chw = new float[3 * 256];
        new ClipPreprocessor(ClipConfig.Clip336).Normalize(image, chw);
        double[] mean = [0.48145466, 0.4578275, 0.40821073], std = [0.26862954, 0.26130258, 0.27577711];
        for (int c = 0; c < 3; c++)
            for (int v = 0; v < 256; v++)
            {
                double exact = (v / 255.0 - mean[c]) / std[c];
                float got = chw[256 * c + v];
                Assert.True(Math.Abs(got - exact) <= 4e-7 * Math.Max(1, Math.Abs(exact)), $"channel {c} value {v}: {got} vs {exact}");
                // The shared goldens' recipe: x / 255 in float64 then float32; (x - mean) / std in float32.
                float x = (float)(v / 255.0);
                Assert.Equal((x - (float)mean[c]) / (float)std[c], got);
            }
    }

    [Fact]
    public void Preprocess_ChannelsFirst()
    {
        var image = new RgbImage(336, 336);
        image.Pixels[0] = 255; // top-left red
        var chw = new ClipPreprocessor(ClipConfig.Clip336).Preprocess(image);
        Assert.Equal(3 * 336 * 336, chw.Length);
        Assert.Equal((float)((1.0f - 0.48145466f) / 0.26862954f), chw[0]);
        Assert.Equal(-0.48145466f / 0.26862954f, chw[1]);
        Assert.Equal(-0.4578275f / 0.26130258f, chw[336 * 336]);
    }

    private static string WriteConfig(TempDir tmp, string json)
    {
        string path = tmp.File("preprocessor_config.json");
        File.WriteAllText(path, json);
        return path;
    }

    [Fact]
    public void Read_LlavaHfConfig_GivesClip336()
    {
        // llava-hf/llava-1.5-7b-hf's preprocessor_config.json.
        using var tmp = new TempDir();
        var c = ClipConfig.Read(WriteConfig(tmp, """
            {
              "crop_size": {"height": 336, "width": 336}, "do_center_crop": true, "do_convert_rgb": true,
              "do_normalize": true, "do_rescale": true, "do_resize": true,
              "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_processor_type": "CLIPImageProcessor",
              "image_std": [0.26862954, 0.26130258, 0.27577711], "processor_class": "LlavaProcessor",
              "resample": 3, "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 336}
            }
            """));
        Assert.Equal((336, 336, 336, ResampleFilter.Bicubic), (c.ShortestEdge, c.CropHeight, c.CropWidth, c.Resample));
        Assert.Equal(ClipConfig.ClipMean, c.Mean);
        Assert.Equal(ClipConfig.ClipStd, c.Std);
        Assert.Equal(1 / 255.0, c.RescaleFactor);
        Assert.True(c.DoResize && c.DoCenterCrop && c.DoRescale && c.DoNormalize);
    }

    [Fact]
    public void Read_OldAndExactSizes()
    {
        using var tmp = new TempDir();
        var old = ClipConfig.Read(WriteConfig(tmp, """{"size": 224, "crop_size": 224, "resample": 2}"""));
        Assert.Equal((224, 224, 224, ResampleFilter.Bilinear), (old.ShortestEdge, old.CropHeight, old.CropWidth, old.Resample));
        var exact = ClipConfig.Read(WriteConfig(tmp, """{"size": {"height": 384, "width": 512}, "do_center_crop": false}"""));
        Assert.Null(exact.ShortestEdge);
        var preprocessor = new ClipPreprocessor(exact);
        Assert.Equal((512, 384), preprocessor.ResizeSize(100, 700));
        Assert.Equal(3 * 512 * 384, preprocessor.Preprocess(new RgbImage(100, 700)).Length);
    }

    [Theory]
    [InlineData("""{"image_mean": "0.5"}""", "'image_mean' must be an array of 3 numbers")]
    [InlineData("""{"image_std": [0.2, 0, 0.3]}""", "'image_std' must be an array of 3 positive numbers")]
    [InlineData("""{"resample": 1}""", "'resample' must be a PIL resampling code we implement")]
    [InlineData("""{"size": {"longest_edge": 5}}""", "'size' must be")]
    [InlineData("""{"crop_size": {"height": -3, "width": 4}}""", "'crop_size.height' must be a positive integer")]
    [InlineData("""{"do_resize": "yes"}""", "'do_resize' must be true or false")]
    [InlineData("""{"rescale_factor": null}""", "'rescale_factor' must be a number")]
    [InlineData("""[1, 2]""", "must hold a JSON object")]
    [InlineData("""{"size": """, "not valid JSON")]
    public void Read_BadField_IsAUserErrorNamingFileAndField(string json, string message)
    {
        using var tmp = new TempDir();
        string path = WriteConfig(tmp, json);
        var e = Assert.Throws<UserError>(() => ClipConfig.Read(path));
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Read_MissingFile_IsAUserError()
    {
        using var tmp = new TempDir();
        Assert.Contains("not found", Assert.Throws<UserError>(() => ClipConfig.Read(tmp.File("none.json"))).Message);
    }
}
