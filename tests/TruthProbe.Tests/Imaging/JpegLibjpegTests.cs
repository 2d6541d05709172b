using System.Security.Cryptography;
using TruthProbe.Imaging;
using static TruthProbe.Tests.Imaging.JpegBuilder;
using static TruthProbe.Tests.Imaging.PixelAsserts;

namespace TruthProbe.Tests.Imaging;

/// <summary>
/// The JPEG layouts the shared goldens do not cover, against what Pillow 9.4 on Debian 12 shows: progressive files
/// that leave low AC coefficients incomplete (libjpeg-turbo's block smoothing) and four-component files (CMYK, YCCK).
/// </summary>
public class JpegLibjpegTests
{
    /// <summary>
    /// Small progressive files made with libjpeg-turbo 2.1.5's cjpeg (Debian 12's libjpeg-turbo-progs, the library Pillow
    /// 9.4 decodes with there) from synthetic 8-bit images with a custom scan script (<c>-scans</c>), and the sha256 of
    /// the RGB bytes its djpeg writes for them (<c>djpeg -pnm</c>: the same library defaults Pillow uses, block smoothing
    /// on; a grey PGM with each sample repeated three times, as Pillow's convert("RGB") does).
    /// </summary>
    public static TheoryData<string, int, int, string, string> SmoothedFiles => new()
    {
        // Grey 48x40 (6x5 blocks), scan "0: 0-0, 0, 0;": DC only, so the DC and nine AC coefficients are estimated.
        {
            "grey DC only", 48, 40, "e27c5d096708e61c767543c932ffefc9a6730447a9dc3be3f80a7c512514d529",
            "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PT" +
            "gyPC4zNDL/wgALCAAoADABAREA/8QAGQAAAwEBAQAAAAAAAAAAAAAABAUGAwIH/9oACAEBAAAAAJtzkBvRSdC5FEZQ7x+4C5gNKt+QsiunNAw8" +
            "4//Z"
        },
        // Grey 16x16: two blocks wide, where 2.1.5 fills the window's right column from the first block.
        {
            "grey two blocks wide", 16, 16, "6c03e55facc7f01ee73b0f08387eedc3fef51534dde6eea17a1bdbdbe7107873",
            "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PT" +
            "gyPC4zNDL/wgALCAAQABABAREA/8QAFQABAQAAAAAAAAAAAAAAAAAABQb/2gAIAQEAAAAAm2SKH//Z"
        },
        // YCbCr 4:2:0 64x56 (luma 8x7 blocks, 4 iMCU rows, the last one block row), scan "0,1,2: 0-0, 0, 0;".
        {
            "4:2:0 DC only", 64, 56, "a1e4b8596be820378e719b9188677e691985e1db00aded315692a9928f357b8d",
            "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PT" +
            "gyPC4zNDL/2wBDAQkJCQwLDBgNDRgyIRwhMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjL/wgARCAA4" +
            "AEADASIAAhEBAxEB/8QAGwAAAQUBAQAAAAAAAAAAAAAABQADBAYHAgH/xAAZAQADAQEBAAAAAAAAAAAAAAADBQYEBwL/2gAMAwEAAhADEAAAAK" +
            "2bDHAU7MOy8sJMJZIxWUVmpg95MwyApAc6XntJsFZtJo/pYXzwnOb2LJqHBojhKeTSzYh8taAxlWlZqephLpOr27GkkvOfIqXiKBVFKitn0kTo" +
            "n//Z"
        },
        // The same image, scans "0,1,2: 0-0, 0, 1; 0: 1-5, 0, 1; 1: 1-63, 0, 0; 2: 1-2, 0, 0;": the DC and luma's AC 1-5
        // one bit short (estimates capped at 1), luma's AC 6-9 and Cr's 3-9 never sent, Cb complete.
        {
            "4:2:0 partial AC", 64, 56, "26141e4b92bda456d58edae7a2cb20fd10df2784f821df174ed7842791f12a5b",
            "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PT" +
            "gyPC4zNDL/2wBDAQkJCQwLDBgNDRgyIRwhMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjL/wgARCAA4" +
            "AEADASIAAhEBAxEB/8QAGgAAAgMBAQAAAAAAAAAAAAAAAAQDBQYCAf/EABgBAAMBAQAAAAAAAAAAAAAAAAIEBQMG/9oADAMBAAIQAxAAAAGtdT" +
            "ezp8Q2XjElKyiblKuzL9pMY9qDrps7R5Cz0OP1tXni8zdjkqGGi6ZYLTixXlWBzK6XNaVID0dv3boJc4RAMRCoCjbkALov/8QAIxAAAgIBAwQD" +
            "AQAAAAAAAAAAAAMBAhEEBSEQEiIxFBU0M//aAAgBAQABBQFEFfVoJoLpzp6ivQvgRjEcltP3RRIuuClhmoWhPoRbwTyVX4QomuCJN/3SXOvUVM" +
            "1nT3gXPdHbwx6Inddx+NpFadsE0yUUJpgVwRJq/wBvSi8lUlaYKzgpY1f7OiKFV8Wpgk3bc/r9In+HT//EACcRAAEDBAECBgMAAAAAAAAAAAIA" +
            "AQMEBRESITFBExRRYXHBgfDx/9oACAECAQE/AIqGSrm8MP4yqbCdPE5ge2O2MfbqoLZkUJOWGZWyoCmm3Po7YV1u1OERaFl3Q7G/CtNvF38xJ2" +
            "6N7+v79I5NeFMO6tcWJC+Foqh+VHyqWAApBNm5J3z+Hdlhl//EAB0RAAICAQUAAAAAAAAAAAAAAAMEAgUBAAYHERX/2gAIAQMBAQIA9CyMCBX7" +
            "JpDFiGhRYVifaLnYcXcuPh6//9k="
        },
    };

    [Theory]
    [MemberData(nameof(SmoothedFiles))]
    public void ProgressiveWithIncompleteAc_IsLibjpegsBlockSmoothing_BitForBit(string what, int width, int height, string sha256, string base64)
    {
        var image = JpegDecoder.Decode(Convert.FromBase64String(base64), what + ".jpg");
        Assert.Equal((width, height), (image.Width, image.Height));
        Assert.True(Convert.ToHexStringLower(SHA256.HashData(image.Pixels)) == sha256, $"{what}: the RGB bytes differ from libjpeg-turbo 2.1.5's");
    }

    private static readonly byte[] AdobeCmyk = Segment(0xEE, [.. "Adobe"u8, 0, 100, 0, 0, 0, 0, 0]);
    private static readonly byte[] AdobeYcck = Segment(0xEE, [.. "Adobe"u8, 0, 100, 0, 0, 0, 0, 2]);

    /// <summary>8x8, four DC-only components (quantiser 8: a DC-only block is flat at 128 + DC): 140, 128, 116, 142.</summary>
    private static byte[] FourComponents(params byte[][] markers) => Jpeg(
        [.. markers, Dqt(0, 8), Sof(0xC0, 8, 8, (1, 1, 1), (2, 1, 1), (3, 1, 1), (4, 1, 1)), SmallDcTable, EobOnlyAcTable,
            BaselineSos(1, 2, 3, 4), Bits("01 1100 0  00 0  01 0011 0  01 1110 0")]);

    [Fact]
    public void Cmyk_IsLibjpegsCmykThroughPillowsInvertedCmykToRgb()
    {
        // libjpeg hands out the stored C, M, Y, K = 140, 128, 116, 142; Pillow reads them as Adobe's inverted CMYK
        // (rawmode CMYK;I: 255 - each) and its cmyk2rgb gives nk - MULDIV255(c, nk) with nk = 255 - k = 142 and
        // c = 115, 127, 139: 115 * 142 / 255 = 64.04, 127 * 142 / 255 = 70.72, 139 * 142 / 255 = 77.40, rounded
        // 64, 71, 77, so R, G, B = 78, 71, 65. Without the Adobe marker libjpeg still says CMYK, and Pillow still inverts.
        foreach (var (jpeg, what) in new[] { (FourComponents(AdobeCmyk), "Adobe CMYK"), (FourComponents(), "plain CMYK") })
            AssertSamePixels(new RgbImage(8, 8, [.. Enumerable.Range(0, 64).SelectMany(_ => new byte[] { 78, 71, 65 })]), JpegDecoder.Decode(jpeg, "t.jpg"), what);
    }

    [Fact]
    public void Ycck_IsLibjpegsYcckToCmyk_ThenPillowsCmykToRgb()
    {
        // Adobe transform 2: Y, Cb, Cr, K = 140, 128, 116, 142 with the components read as Y 140, Cb 116, Cr 142 below.
        var jpeg = Jpeg(AdobeYcck, Dqt(0, 8), Sof(0xC0, 8, 8, (1, 1, 1), (2, 1, 1), (3, 1, 1), (4, 1, 1)), SmallDcTable, EobOnlyAcTable,
            BaselineSos(1, 2, 3, 4), Bits("01 1100 0  01 0011 0  01 1110 0  01 1110 0"));
        // jdcolor.c's YCbCr->RGB in 16-bit fixed point: R = 140 + (91881 * 14 + 32768 >> 16) = 160, G = 140 +
        // (-22554 * -12 - 46802 * 14 + 32768 >> 16) = 140 - 6 = 134, B = 140 + (116130 * -12 + 32768 >> 16) = 119
        // (true values 159.6, 134.1, 118.7); stored inverted with K 142, Pillow inverts them back and gives
        // 142 - MULDIV255(x, 142): 160 * 142 / 255 = 89.1 gives 53, 74.6 (rounded 75) gives 67, 66.3 gives 76.
        AssertSamePixels(new RgbImage(8, 8, [.. Enumerable.Range(0, 64).SelectMany(_ => new byte[] { 53, 67, 76 })]), JpegDecoder.Decode(jpeg, "t.jpg"), "YCCK");
    }
}
