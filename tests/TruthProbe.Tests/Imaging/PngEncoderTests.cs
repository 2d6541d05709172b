using TruthProbe.Common;
using TruthProbe.Imaging;

namespace TruthProbe.Tests.Imaging;

public class PngEncoderTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 7)]
    [InlineData(64, 64)]
    [InlineData(113, 5)]
    public void Encoded_DecodesToTheSamePixels(int width, int height)
    {
        var rng = new SeededRandom((ulong)(width * 1000 + height));
        var image = new RgbImage(width, height);
        for (int i = 0; i < image.Pixels.Length; i++) image.Pixels[i] = (byte)rng.NextUInt64();
        byte[] png = PngEncoder.Encode(image);
        // The decoder checks the signature, every chunk's CRC and the zlib stream, and is itself held to Pillow's pixels.
        var back = PngDecoder.Decode(png, "encoded.png");
        Assert.Equal((width, height), (back.Width, back.Height));
        Assert.Equal(image.Pixels, back.Pixels);
    }

    [Fact]
    public void Header_IsEightBitRgbWithoutInterlace_AndTheBytesAreDeterministic()
    {
        var image = new RgbImage(2, 2, [255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]);
        byte[] png = PngEncoder.Encode(image);
        // IHDR data follows the signature (8), length (4) and type (4): width, height, depth 8, colour type 2, deflate, filter 0, no interlace.
        Assert.Equal("IHDR"u8.ToArray(), png[12..16]);
        Assert.Equal(new byte[] { 0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0 }, png[16..29]);
        Assert.Equal(png, PngEncoder.Encode(image));
        Assert.Equal("IEND"u8.ToArray(), png[^8..^4]);
    }
}
