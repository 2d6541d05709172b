using TruthProbe.Common;
using TruthProbe.Imaging;
using TruthProbe.Tests.Common;
using static TruthProbe.Tests.Imaging.JpegBuilder;
using static TruthProbe.Tests.Imaging.PixelAsserts;

namespace TruthProbe.Tests.Imaging;

public class JpegDecoderTests
{
    public static TheoryData<string> SharedJpegs => new()
    {
        "rocket", "hubble_deep_field", "retina", "coffee_q90_420", "chelsea_q85_422", "chelsea_q92_444",
        "astronaut_q75_420_progressive", "coffee_crop333x251_q95_420", "camera_grey_q80",
    };

    private static string SharedJpeg(string stem) => SharedData.Path("data", "images", stem + ".jpg");

    [SkippableTheory]
    [MemberData(nameof(SharedJpegs))]
    public void SharedJpeg_Decoded_EqualsPillowGoldenByteForByte(string stem)
    {
        // Goldens: Pillow 9.4 (libjpeg-turbo, Debian 12) Image.open(f).convert("RGB") saved as 8-bit RGB PNG.
        // Together they cover 4:4:4, 4:2:2, 4:2:0, odd sizes (333x251, 1411x1411), grey and progressive.
        var image = ImageFile.Load(SharedJpeg(stem));
        var golden = ImageFile.Load(SharedData.Path("data", "images", "golden", stem + "__jpg.decoded.png"));
        AssertSamePixels(golden, image, stem);
    }

    [SkippableTheory]
    [MemberData(nameof(SharedJpegs))]
    public void SharedJpeg_Clip336Geometry_EqualsPillowGolden(string stem)
    {
        // The LLaVA path end to end: JPEG decode, then CLIPImageProcessor's resize and crop (and LLaVA's pad).
        var image = ImageFile.Load(SharedJpeg(stem));
        foreach (var (aspect, suffix) in new[] { (AspectMode.Crop, "clip336_crop"), (AspectMode.Pad, "clip336_pad") })
        {
            var golden = ImageFile.Load(SharedData.Path("data", "images", "golden", $"{stem}__jpg.{suffix}.png"));
            AssertSamePixels(golden, new ClipPreprocessor(ClipConfig.Clip336, aspect).Geometry(image), $"{stem} {aspect}");
        }
    }

    private static RgbImage Flat(int width, int height, Func<int, int, (byte R, byte G, byte B)> colour)
    {
        var image = new RgbImage(width, height);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                var (r, g, b) = colour(x, y);
                image.Row(y)[3 * x] = r;
                image.Row(y)[3 * x + 1] = g;
                image.Row(y)[3 * x + 2] = b;
            }
        return image;
    }

    [Fact]
    public void HandBuiltGrey_DcOnlyBlocks_AreFlatAt128PlusCoefficient()
    {
        // With every quantiser 8 a DC-only block is flat at 128 + DC (the IDCT's DC gain is 1/8). Block 0's DC
        // difference is +12; block 1's is -12, so its DC is back to 0: the predictor carries across blocks.
        var image = JpegDecoder.Decode(TwoBlockGrey(), "t.jpg");
        AssertSamePixels(Flat(16, 8, (x, _) => x < 8 ? ((byte)140, (byte)140, (byte)140) : ((byte)128, (byte)128, (byte)128)), image, "grey");
    }

    [Fact]
    public void HandBuiltGrey_OutOfRangeDc_WrapsAsLibjpegsRangeLimitTable()
    {
        // DC 2000 with quantiser 8 is a flat 128 + 2000 before limiting. libjpeg's post-IDCT table (jdmaster.c,
        // prepare_range_limit_table) indexes with the value modulo 1024: 2000 = 976 = -48 as a signed 10-bit
        // number, so the block shows 128 - 48 = 80 rather than saturating at 255.
        var jpeg = Jpeg(Dqt(0, 8), Sof(0xC0, 8, 8, (1, 1, 1)), Dht(0, 0, [0, 2], 0x00, 0x0B), EobOnlyAcTable, BaselineSos(1),
            Bits("01 11111010000 0"));
        AssertSamePixels(Flat(8, 8, (_, _) => (80, 80, 80)), JpegDecoder.Decode(jpeg, "t.jpg"), "wrap");
    }

    [Fact]
    public void HandBuiltGrey_RestartInterval_ResetsThePredictor()
    {
        // DRI 1: each block is its own interval, so block 1's +12 starts again from 0 (140, not 152).
        var jpeg = Jpeg(Dqt(0, 8), Sof(0xC0, 16, 8, (1, 1, 1)), SmallDcTable, EobOnlyAcTable, Segment(0xDD, 0, 1), BaselineSos(1),
            Bits("01 1100 0"), [0xFF, 0xD0], Bits("01 1100 0"));
        AssertSamePixels(Flat(16, 8, (_, _) => (140, 140, 140)), JpegDecoder.Decode(jpeg, "t.jpg"), "restart");
    }

    [Fact]
    public void HandBuiltGrey_WrongRestartMarker_IsAUserError()
    {
        var jpeg = Jpeg(Dqt(0, 8), Sof(0xC0, 16, 8, (1, 1, 1)), SmallDcTable, EobOnlyAcTable, Segment(0xDD, 0, 1), BaselineSos(1),
            Bits("01 1100 0"), [0xFF, 0xD3], Bits("01 1100 0"));
        var e = Assert.Throws<UserError>(() => JpegDecoder.Decode(jpeg, "t.jpg"));
        Assert.StartsWith("t.jpg: expected restart marker RST0", e.Message);
    }

    [Fact]
    public void HandBuilt420_FlatChroma_ConvertsWithJfifFormulas()
    {
        // 16x16 4:2:0: four Y blocks at DC 0 (Y 128), Cb DC +12 (140), Cr DC -12 (116). JFIF's equations in exact
        // arithmetic: R = 128 + 1.402 * -12 = 111.18, G = 128 - 0.34414 * 12 + 0.71414 * 12 = 132.44,
        // B = 128 + 1.772 * 12 = 149.26; rounded 111, 132, 149 (none near a half, so libjpeg's fixed point agrees).
        var jpeg = Jpeg(Dqt(0, 8), Sof(0xC0, 16, 16, (1, 2, 2), (2, 1, 1), (3, 1, 1)), SmallDcTable, EobOnlyAcTable, BaselineSos(1, 2, 3),
            Bits("000 000 000 000  01 1100 0  01 0011 0"));
        AssertSamePixels(Flat(16, 16, (_, _) => (111, 132, 149)), JpegDecoder.Decode(jpeg, "t.jpg"), "4:2:0");
    }

    [Fact]
    public void HandBuiltAdobeRgb_ComponentsAreRgbNotYCbCr()
    {
        // APP14 "Adobe" with transform 0 says the three components are R, G, B: no colour conversion.
        byte[] adobe = Segment(0xEE, [.. "Adobe"u8, 0, 100, 0, 0, 0, 0, 0]);
        var jpeg = Jpeg(adobe, Dqt(0, 8), Sof(0xC0, 8, 8, (1, 1, 1), (2, 1, 1), (3, 1, 1)), SmallDcTable, EobOnlyAcTable, BaselineSos(1, 2, 3),
            Bits("01 1100 0  00 0  01 0011 0"));
        AssertSamePixels(Flat(8, 8, (_, _) => (140, 128, 116)), JpegDecoder.Decode(jpeg, "t.jpg"), "Adobe RGB");
    }

    [Fact]
    public void HandBuiltAdobeRgb_VerticalHalfSampling_IsLibjpegsTriangleFilterWithAlternatingRounding()
    {
        // 8x32, R sampled 1x2 (flat 128), G and B 1x1; Adobe transform 0, so G shows the upsampled samples as
        // they are. G's upper block is 142 (DC +14, bits 1110), its lower block 128 (-14, bits 0001). Output rows 15 and 16 sit
        // between them: 3/4 * 142 + 1/4 * 128 = 138.5 and 3/4 * 128 + 1/4 * 142 = 131.5; libjpeg rounds the row
        // below a sample's centre up (139) and the row above it down (131) so the halves do not drift one way.
        byte[] adobe = Segment(0xEE, [.. "Adobe"u8, 0, 100, 0, 0, 0, 0, 0]);
        var jpeg = Jpeg(adobe, Dqt(0, 8), Sof(0xC0, 8, 32, (1, 1, 2), (2, 1, 1), (3, 1, 1)), SmallDcTable, EobOnlyAcTable, BaselineSos(1, 2, 3),
            Bits("00 0 00 0  01 1110 0  00 0    00 0 00 0  01 0001 0  00 0"));
        byte G(int y) => y < 15 ? (byte)142 : y == 15 ? (byte)139 : y == 16 ? (byte)131 : (byte)128;
        AssertSamePixels(Flat(8, 32, (_, y) => (128, G(y), 128)), JpegDecoder.Decode(jpeg, "t.jpg"), "h1v2");
    }

    [Fact]
    public void HandBuiltAdobeRgb_QuarterHorizontalSampling_IsReplicated()
    {
        // 64x8, R sampled 4x1, G and B 1x1: a 4:1 ratio has no triangle filter in libjpeg, samples repeat 4 times.
        byte[] adobe = Segment(0xEE, [.. "Adobe"u8, 0, 100, 0, 0, 0, 0, 0]);
        var jpeg = Jpeg(adobe, Dqt(0, 8), Sof(0xC0, 64, 8, (1, 4, 1), (2, 1, 1), (3, 1, 1)), SmallDcTable, EobOnlyAcTable, BaselineSos(1, 2, 3),
            Bits("00 0 00 0 00 0 00 0  01 1110 0  00 0    00 0 00 0 00 0 00 0  01 0001 0  00 0"));
        AssertSamePixels(Flat(64, 8, (x, _) => (128, x < 32 ? (byte)142 : (byte)128, 128)), JpegDecoder.Decode(jpeg, "t.jpg"), "h4v1");
    }

    [SkippableFact]
    public void SharedJpeg_WithoutItsHuffmanTables_UsesTheStandardOnesAsLibjpeg()
    {
        // Pillow saves with the JPEG standard's example tables (optimize=False), so dropping every DHT segment
        // leaves a Motion-JPEG-style file that libjpeg decodes with its built-in copies of the same tables.
        byte[] full = File.ReadAllBytes(SharedJpeg("coffee_q90_420"));
        var stripped = new List<byte>(full[..2]);
        int pos = 2;
        while (full[pos + 1] != 0xDA)
        {
            int length = 2 + (full[pos + 2] << 8 | full[pos + 3]);
            if (full[pos + 1] != 0xC4) stripped.AddRange(full[pos..(pos + length)]);
            pos += length;
        }
        stripped.AddRange(full[pos..]);
        Assert.True(stripped.Count < full.Length - 400, "the file had its Huffman tables removed");
        var golden = ImageFile.Load(SharedData.Path("data", "images", "golden", "coffee_q90_420__jpg.decoded.png"));
        AssertSamePixels(golden, JpegDecoder.Decode(stripped.ToArray(), "mjpeg.jpg"), "no DHT");
    }

    [Fact]
    public void HandBuiltProgressive_DcInTwoBitsThenAc_IsTheRefinedDc()
    {
        // The DC first scan at Al=1 sends +12, stored as 12 << 1 = 24; the refinement scan's bit 1 makes it 25
        // (128 + 25 = 153); an AC scan of 1-63 ends the block at once, so every coefficient is final and
        // libjpeg would not smooth.
        var jpeg = Jpeg(Dqt(0, 8), Sof(0xC2, 8, 8, (1, 1, 1)), SmallDcTable, EobOnlyAcTable,
            Sos(0, 0, 0, 1, 1), Bits("01 1100"), Sos(0, 0, 1, 0, 1), Bits("1"), Sos(1, 63, 0, 0, 1), Bits("0"));
        AssertSamePixels(Flat(8, 8, (_, _) => (153, 153, 153)), JpegDecoder.Decode(jpeg, "t.jpg"), "progressive");
    }

    [Fact]
    public void HandBuiltProgressive_AcNeverSent_IsSmoothed_AndAFlatImageStaysFlat()
    {
        // DC only (+12): libjpeg re-estimates the DC and the first nine AC coefficients from the 5x5 DC neighbourhood,
        // here the block itself. The DC kernel's weights sum to 256 (its divisor) and each AC kernel's to 0, so the
        // estimates are the DC and zeros: flat 128 + 12.
        var jpeg = Jpeg(Dqt(0, 8), Sof(0xC2, 8, 8, (1, 1, 1)), SmallDcTable, Sos(0, 0, 0, 0, 1), Bits("01 1100"));
        AssertSamePixels(Flat(8, 8, (_, _) => (140, 140, 140)), JpegDecoder.Decode(jpeg, "t.jpg"), "smoothed DC only");
    }

    [Fact]
    public void HandBuiltGrey_WithoutEoi_DecodesAsPillowDoes()
    {
        byte[] full = TwoBlockGrey();
        AssertSamePixels(JpegDecoder.Decode(full, "t.jpg"), JpegDecoder.Decode(full.AsSpan(0, full.Length - 2), "t.jpg"), "no EOI");
    }

    [Fact]
    public void HandBuiltGrey_TruncatedAtEveryStructuralPoint_IsAUserErrorSayingTruncated()
    {
        byte[] full = TwoBlockGrey();
        int sos = full.Length - 2 - 2 - 10;
        // After SOI, inside and after DQT, inside SOF, inside DHT, before and inside SOS, no scan data, half of it.
        foreach (int cut in new[] { 2, 40, 71, 78, 100, 129, sos + 5, sos + 10, sos + 11 })
        {
            var e = Assert.Throws<UserError>(() => JpegDecoder.Decode(full.AsSpan(0, cut), "cut.jpg"));
            Assert.StartsWith("cut.jpg: ", e.Message);
            Assert.Contains("truncated", e.Message);
        }
    }

    [Theory]
    [InlineData("dims0", "width and height must be positive")]
    [InlineData("huge", "above the limit of 134217728")]
    [InlineData("bigNoData", "needs more data than the file's")]
    [InlineData("badHuffman", "bad Huffman table (DC 0): code lengths overflow at length 1")]
    [InlineData("dcSymbol", "bad Huffman table (DC 0): DC symbol 16 is above 15")]
    [InlineData("missingComponent", "scan names component 9, which the frame header does not define")]
    [InlineData("missingTable", "scan uses AC Huffman table 2 for component 1, but no DHT before it defines it")]
    [InlineData("missingQuant", "uses quantisation table 0, but no DQT before its first scan defines it")]
    [InlineData("twelveBit", "12-bit samples; only 8-bit JPEGs are supported")]
    [InlineData("arithmetic", "unsupported JPEG process (SOF9")]
    [InlineData("twoComponents", "2 colour components")]
    [InlineData("badCode", "invalid Huffman code")]
    [InlineData("badLength", "DQT segment is shorter than its table 0")]
    [InlineData("notJpeg", "not a JPEG file")]
    public void HandBuiltBadFile_IsAUserErrorNamingTheFile(string which, string message)
    {
        byte[] grey = Sof(0xC0, 16, 8, (1, 1, 1));
        byte[] jpeg = which switch
        {
            "dims0" => Jpeg(Dqt(0, 8), Sof(0xC0, 0, 8, (1, 1, 1))),
            "huge" => Jpeg(Dqt(0, 8), Sof(0xC0, 65535, 65535, (1, 1, 1))),
            "bigNoData" => Jpeg(Dqt(0, 8), Sof(0xC0, 10000, 10000, (1, 1, 1))),
            "badHuffman" => Jpeg(Dqt(0, 8), grey, Dht(0, 0, [3], 0, 1, 2)),
            "dcSymbol" => Jpeg(Dqt(0, 8), grey, Dht(0, 0, [0, 2], 0, 16)),
            "missingComponent" => Jpeg(Dqt(0, 8), grey, SmallDcTable, EobOnlyAcTable, BaselineSos(9), Bits("00 0 00 0")),
            "missingTable" => Jpeg(Dqt(0, 8), grey, SmallDcTable, EobOnlyAcTable,
                Segment(0xDA, 1, 1, 0x02, 0, 63, 0), Bits("00 0 00 0")),
            "missingQuant" => Jpeg(Dqt(1, 8), grey, SmallDcTable, EobOnlyAcTable, BaselineSos(1), Bits("00 0 00 0")),
            "twelveBit" => Jpeg(Dqt(0, 8), Segment(0xC0, 12, 0, 8, 0, 16, 1, 1, 0x11, 0)),
            "arithmetic" => Jpeg(Dqt(0, 8), Sof(0xC9, 16, 8, (1, 1, 1))),
            "twoComponents" => Jpeg(Dqt(0, 8), Sof(0xC0, 16, 8, (1, 1, 1), (2, 1, 1))),
            "badCode" => Jpeg(Dqt(0, 8), grey, SmallDcTable, EobOnlyAcTable, BaselineSos(1), [0xC0, 0x00]),
            "badLength" => Jpeg(Segment(0xDB, 0, 1, 2, 3)),
            "notJpeg" => [0x89, (byte)'P', (byte)'N', (byte)'G'],
            _ => throw new ArgumentException(which),
        };
        var e = Assert.Throws<UserError>(() => JpegDecoder.Decode(jpeg, "bad.jpg"));
        Assert.StartsWith("bad.jpg: ", e.Message);
        Assert.Contains(message, e.Message);
    }

    [SkippableTheory]
    [InlineData("coffee_q90_420")]
    [InlineData("astronaut_q75_420_progressive")]
    public void SharedJpeg_CutAnywhereBeforeTheLastScanEnds_IsAUserError(string stem)
    {
        byte[] full = File.ReadAllBytes(SharedJpeg(stem));
        // Every 997th byte (a prime, so cuts land at varied offsets inside segments and entropy-coded data),
        // stopping short of the final scan's end: what remains cannot give the whole image.
        for (int cut = 1; cut < full.Length - 64; cut += 997)
        {
            var e = Assert.Throws<UserError>(() => JpegDecoder.Decode(full.AsSpan(0, cut), "cut.jpg"));
            Assert.StartsWith("cut.jpg: ", e.Message);
        }
    }

    [SkippableFact]
    public void SharedJpeg_RandomlyCorrupted_DecodesOrIsAUserErrorNeverAnotherException()
    {
        // Fuzzing with a fixed seed: overwrite 1-4 bytes anywhere; the decoder must end with an image or a UserError.
        var files = new[] { "coffee_crop333x251_q95_420", "astronaut_q75_420_progressive", "camera_grey_q80" }
            .Select(s => File.ReadAllBytes(SharedJpeg(s))).ToArray();
        var random = new Random(20261207);
        int userErrors = 0;
        for (int trial = 0; trial < 150; trial++)
        {
            byte[] data = (byte[])files[trial % files.Length].Clone();
            int n = random.Next(1, 5);
            // Half the trials hit the first 700 bytes, where the headers and tables are.
            for (int i = 0; i < n; i++) data[trial % 2 == 0 ? random.Next(700) : random.Next(data.Length)] = (byte)random.Next(256);
            try
            {
                JpegDecoder.Decode(data, "fuzz.jpg");
            }
            catch (UserError e)
            {
                Assert.StartsWith("fuzz.jpg: ", e.Message);
                userErrors++;
            }
        }
        Assert.InRange(userErrors, 1, 149);
    }
}
