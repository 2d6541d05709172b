using TruthProbe.Common;
using TruthProbe.Imaging;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Imaging;

/// <summary><see cref="ImageFile.ReadSize"/>: the size from the header alone, which LLaVA-NeXT's token count needs before the pixels.</summary>
public sealed class ImageSizeTests
{
    // Sizes as file(1) reports them for ../shared/data/images (an independent header reader).
    [SkippableTheory]
    [InlineData("astronaut.png", 512, 512)]
    [InlineData("chelsea.png", 451, 300)]
    [InlineData("coins.png", 384, 303)]
    [InlineData("horse.png", 400, 328)]   // RGBA
    [InlineData("astronaut_q75_420_progressive.jpg", 512, 512)]   // SOF2
    [InlineData("coffee_crop333x251_q95_420.jpg", 333, 251)]
    [InlineData("hubble_deep_field.jpg", 1000, 872)]   // behind an Exif APP1 segment
    [InlineData("rocket.jpg", 640, 427)]   // behind a COM segment
    public void ReadSize_IsTheHeadersSize_AndTheDecodedImagesSize(string name, int width, int height)
    {
        string path = SharedData.Path("data", "images", name);
        Assert.Equal((width, height), ImageFile.ReadSize(path));
        var image = ImageFile.Load(path);
        Assert.Equal((width, height), (image.Width, image.Height));
    }

    [Fact]
    public void DamagedHeaders_AreOneClearErrorEach()
    {
        using var tmp = new TempDir();
        string Write(string name, byte[] bytes)
        {
            string path = tmp.File(name);
            File.WriteAllBytes(path, bytes);
            return path;
        }
        byte[] soiApp0 = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x4A, 0x46];
        Assert.Contains("no frame header (SOF)", Assert.Throws<UserError>(() => ImageFile.ReadSize(Write("cut.jpg", soiApp0))).Message);
        // SOF0 with height 0 (a DNL-defined height, which the decoder does not take either).
        byte[] zero = [.. soiApp0, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x00, 0x00, 0x10, 0x01, 0x01, 0x11, 0x00];
        Assert.Contains("size 16x0", Assert.Throws<UserError>(() => ImageFile.ReadSize(Write("zero.jpg", zero))).Message);
        Assert.Contains("no IHDR chunk", Assert.Throws<UserError>(() => ImageFile.ReadSize(Write("cut.png", [.. PngDecoder.Signature]))).Message);
        Assert.Contains("not a PNG or JPEG", Assert.Throws<UserError>(() => ImageFile.ReadSize(Write("x.gif", "GIF89a"u8.ToArray()))).Message);
    }
}
