using System.Text;
using TruthProbe.Common;
using TruthProbe.Imaging;
using TruthProbe.Tests.Common;
using static TruthProbe.Tests.Imaging.PngBuilder;

namespace TruthProbe.Tests.Imaging;

public class PngDecoderTests
{
    private static byte[] Pixels(byte[] png) => PngDecoder.Decode(png, "t.png").Pixels;

    private static byte[] Grey(params byte[] values) => [.. values.SelectMany(v => new[] { v, v, v })];

    /// <summary>Bytes whose neighbours differ irregularly, so every filter's predictor matters.</summary>
    private static byte[] Scrambled(int count) => [.. Enumerable.Range(0, count).Select(i => (byte)(i * 97 % 251 + i / 7))];

    [Fact]
    public void Crc32_KnownValues_MatchZlib()
    {
        // zlib.crc32(b"123456789") = 0xCBF43926 (the CRC-32 check value); every PNG ends in IEND's CRC AE 42 60 82.
        Assert.Equal(0xCBF43926u, Crc32.Compute("123456789"u8));
        Assert.Equal(0xAE426082u, Crc32.Compute("IEND"u8));
        // Python's zlib.crc32(bytes(range(256)) * 4) and zlib.crc32(bytes(range(13))): whole 8-byte steps and a tail.
        byte[] ramp = [.. Enumerable.Range(0, 1024).Select(i => (byte)i)];
        Assert.Equal(0xB70B4C26u, Crc32.Compute(ramp));
        Assert.Equal(0xE6FE46B8u, Crc32.Compute(ramp.AsSpan(0, 13)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Rgb8_EachFilter_GivesThePixels(int filter)
    {
        byte[] rgb = Scrambled(7 * 5 * 3);
        var png = Png(Ihdr(7, 5, 8, 2), Filter(rgb, 21, 3, filter));
        var image = PngDecoder.Decode(png, "t.png");
        Assert.Equal((7, 5), (image.Width, image.Height));
        Assert.Equal(rgb, image.Pixels);
    }

    [Fact]
    public void Paeth_HandComputedRow_PicksTheSpecPredictor()
    {
        // 1x2 grey image. Row 0 = [10, 200] (filter 0). Row 1 raw [50, 60] with Paeth: pixel 0 has a=0, b=10, c=0,
        // p=10 -> b, stored 40; pixel 1 has a=50, b=200, c=10, p=240 -> pa=190, pb=40, pc=230 -> b, stored 60-200 = 116.
        var png = Png(Ihdr(2, 2, 8, 0), [0, 10, 200, 4, 40, 116]);
        Assert.Equal(Grey(10, 200, 50, 60), Pixels(png));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4)]
    public void Rgba8_Filtered_DropsAlphaWithoutCompositing(int filter)
    {
        byte[] rgba = Scrambled(3 * 2 * 4);
        var png = Png(Ihdr(3, 2, 8, 6), Filter(rgba, 12, 4, filter));
        byte[] expected = [.. rgba.Chunk(4).SelectMany(p => p.Take(3))];
        Assert.Equal(expected, Pixels(png));
    }

    [Fact]
    public void GreyAlpha8_ReplicatesGreyAndDropsAlpha()
    {
        var png = Png(Ihdr(2, 1, 8, 4), [0, 7, 0, 250, 128]);
        Assert.Equal(Grey(7, 250), Pixels(png));
    }

    [Fact]
    public void Grey1Bit_TenPixels_AreBlackOrWhite()
    {
        // Bits 1011 0000 01xx xxxx, MSB first; trailing bits of the last byte are padding.
        var png = Png(Ihdr(10, 1, 1, 0), [0, 0b1011_0000, 0b0100_0000]);
        Assert.Equal(Grey(255, 0, 255, 255, 0, 0, 0, 0, 0, 255), Pixels(png));
    }

    [Fact]
    public void Grey2And4Bit_ScaleTo255()
    {
        // "L;2" unpacks 0..3 as 0, 85, 170, 255; "L;4" unpacks 0..15 times 17.
        Assert.Equal(Grey(0, 85, 170, 255, 255), Pixels(Png(Ihdr(5, 1, 2, 0), [0, 0b00_01_10_11, 0b11_000000])));
        Assert.Equal(Grey(0, 17, 255), Pixels(Png(Ihdr(3, 1, 4, 0), [0, 0x01, 0xF0])));
    }

    [Fact]
    public void Grey16_ClipsAt255_AsPillowModeI()
    {
        // Mode "I" holds 0..65535 and convert("RGB") clips: only samples below 255 survive.
        var png = Png(Ihdr(5, 1, 16, 0), [0, 0x00, 0x00, 0x00, 0xFE, 0x00, 0xFF, 0x01, 0x00, 0xFF, 0xFF]);
        Assert.Equal(Grey(0, 254, 255, 255, 255), Pixels(png));
    }

    [Fact]
    public void Colour16_KeepTheHighByte()
    {
        // RGB;16B, RGBA;16B and LA;16B all keep each sample's first (most significant) byte.
        Assert.Equal([0x12, 0x56, 0x9A], Pixels(Png(Ihdr(1, 1, 16, 2), [0, 0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC])));
        Assert.Equal([0x12, 0x56, 0x9A], Pixels(Png(Ihdr(1, 1, 16, 6), [0, 0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0x00, 0x00])));
        Assert.Equal(Grey(0xAB), Pixels(Png(Ihdr(1, 1, 16, 4), [0, 0xAB, 0xCD, 0x00, 0x00])));
    }

    [Fact]
    public void Rgb16_SubFilter_UsesSixByteStride()
    {
        // Filter 1 on 16-bit RGB adds the byte 6 earlier: pixel 2 raw = stored + pixel 1.
        var png = Png(Ihdr(2, 1, 16, 2), [1, 10, 0, 20, 0, 30, 0, 1, 0, 2, 0, 3, 0]);
        Assert.Equal([10, 20, 30, 11, 22, 33], Pixels(png));
    }

    [Fact]
    public void Palette2Bit_WithTrns_LooksUpColours_AndIndexPastPlteReadsTheGreyRamp()
    {
        byte[] plte = [255, 0, 0, 0, 255, 0, 0, 0, 255];
        var png = Png(Ihdr(4, 1, 2, 3), [0, 0b00_01_10_11], Chunk("PLTE", plte), Chunk("tRNS", [0, 128]));
        Assert.Equal([255, 0, 0, 0, 255, 0, 0, 0, 255, 3, 3, 3], Pixels(png));
    }

    [Fact]
    public void Palette8_IndexesAllEntries()
    {
        byte[] plte = [.. Enumerable.Range(0, 256).SelectMany(i => new[] { (byte)i, (byte)(255 - i), (byte)(i / 2) })];
        var png = Png(Ihdr(3, 1, 8, 3), [0, 0, 200, 255], Chunk("PLTE", plte));
        Assert.Equal([0, 255, 0, 200, 55, 100, 255, 0, 127], Pixels(png));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(5, 3)]
    [InlineData(9, 9)]
    [InlineData(17, 11)]
    public void Adam7_Interlaced_GivesTheSamePixels(int width, int height)
    {
        byte[] rgb = Scrambled(width * height * 3);
        foreach (int filter in new[] { 0, 4 })
        {
            var png = Png(Ihdr(width, height, 8, 2, interlaced: true), Adam7Rgb(rgb, width, height, filter));
            Assert.Equal(rgb, Pixels(png));
        }
    }

    [Fact]
    public void Adam7_OneBitGrey2x2_PassesByHand()
    {
        // Of the seven passes a 2x2 image fills three: pass 1 pixel (0,0), pass 6 pixel (1,0), pass 7 row 1.
        // Pixels 1 0 / 0 1; each pass row is a filter byte and one byte of MSB-first bits.
        var png = Png(Ihdr(2, 2, 1, 0, interlaced: true), [0, 0b1000_0000, 0, 0b0000_0000, 0, 0b0100_0000]);
        Assert.Equal(Grey(255, 0, 0, 255), Pixels(png));
    }

    [Fact]
    public void IdatSplitAcrossChunks_AndUnknownChunks_Decode()
    {
        byte[] rgb = Scrambled(4 * 4 * 3);
        byte[] z = Zlib(Filter(rgb, 12, 3, 2));
        var png = File(Chunk("IHDR", Ihdr(4, 4, 8, 2)), Chunk("tEXt", "Comment\0hi"u8),
            Chunk("IDAT", z.AsSpan(0, 5)), Chunk("IDAT", z.AsSpan(5)), Chunk("zzZz", [1, 2]), Chunk("IEND", []));
        Assert.Equal(rgb, Pixels(png));
    }

    private static string Error(byte[] png) => Assert.Throws<UserError>(() => PngDecoder.Decode(png, "bad.png")).Message;

    private static byte[] Valid() => Png(Ihdr(2, 2, 8, 2), Filter(Scrambled(12), 6, 3, 1));

    [Fact]
    public void BadInput_EachCase_IsOneUserErrorNamingTheFile()
    {
        byte[] valid = Valid();
        Assert.Contains("PNG signature", Error([.. "GIF89a"u8, 0, 0, 0]));

        Assert.Contains("truncated", Error(valid[..^20]));

        byte[] crc = (byte[])valid.Clone();
        crc[20] ^= 1; // inside IHDR's body
        Assert.Contains("CRC", Error(crc));

        byte[] length = (byte[])valid.Clone();
        length[8] = 0x7F; // IHDR length 0x7F00000D
        Assert.Contains("claims", Error(length));

        Assert.Contains("over the limit", Error(Png(Ihdr(100_000, 100_000, 8, 2), [0])));
        Assert.Contains("bit depth 16", Error(Png(Ihdr(1, 1, 16, 3), [0, 0, 0])));
        Assert.Contains("without a PLTE", Error(Png(Ihdr(1, 1, 8, 3), [0, 0])));
        Assert.Contains("filter type 5", Error(Png(Ihdr(1, 1, 8, 0), [5, 0])));
        Assert.Contains("ends before the last row", Error(Png(Ihdr(2, 2, 8, 0), [0, 1, 2])));
        Assert.Contains("first chunk is IDAT", Error(File(Chunk("IDAT", Zlib([0, 0])), Chunk("IHDR", Ihdr(1, 1, 8, 0)))));
        Assert.Contains("no IDAT", Error(File(Chunk("IHDR", Ihdr(1, 1, 8, 0)), Chunk("IEND", []))));

        byte[] zlib = Zlib(new byte[12]);
        zlib[2] = 0xFF; // first deflate block header: block type 3, which deflate reserves
        Assert.Contains("corrupt", Error(File(Chunk("IHDR", Ihdr(2, 2, 8, 0)), Chunk("IDAT", zlib), Chunk("IEND", []))));

        foreach (var message in new[] { Error(valid[..^20]), Error(crc) })
            Assert.StartsWith("bad.png: ", message);
    }

    [Fact]
    public void DecompressionBomb_OnlyTheExpectedBytesAreInflated()
    {
        // 1x1 grey needs 2 inflated bytes; the IDAT inflates to 64 MiB. Inflating stops after the one row.
        var bomb = Png(Ihdr(1, 1, 8, 0), [0, 42, .. new byte[64 << 20]]);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var image = PngDecoder.Decode(bomb, "bomb.png");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 4 << 20, "decoding the bomb allocated the inflated size");
        Assert.Equal(Grey(42), image.Pixels);
    }

    public static TheoryData<string> Originals => ["astronaut", "camera", "chelsea", "coffee", "coins", "horse"];

    [SkippableTheory]
    [MemberData(nameof(Originals))]
    public void SharedPng_Decoded_EqualsPillowsGolden(string stem)
    {
        // Goldens: Pillow 9.4 Image.open(f).convert("RGB") saved as 8-bit RGB PNG (camera and coins are grey, horse RGBA).
        var image = ImageFile.Load(SharedData.Path("data", "images", stem + ".png"));
        var golden = ImageFile.Load(SharedData.Path("data", "images", "golden", stem + "__png.decoded.png"));
        PixelAsserts.AssertSamePixels(golden, image, stem);
    }

    [Fact]
    public void Load_MissingUnknownAndJpeg_AreUserErrorsNamingTheFile()
    {
        using var tmp = new TempDir();
        string missing = tmp.File("none.png");
        Assert.Contains(missing, Assert.Throws<UserError>(() => ImageFile.Load(missing)).Message);
        string gif = tmp.File("x.png");
        System.IO.File.WriteAllBytes(gif, Encoding.ASCII.GetBytes("GIF89a......"));
        var e = Assert.Throws<UserError>(() => ImageFile.Load(gif));
        Assert.Contains(gif, e.Message);
        Assert.Contains("not a PNG or JPEG", e.Message);
        string png = tmp.File("ok.bin");
        System.IO.File.WriteAllBytes(png, Valid());
        Assert.Equal(Scrambled(12), ImageFile.Load(png).Pixels);
    }
}
