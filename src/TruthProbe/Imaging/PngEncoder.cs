using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace TruthProbe.Imaging;

/// <summary>
/// 8-bit RGB PNG files (colour type 2, no interlace, filter 0 on every row, zlib at the smallest size): what the lab's
/// synthetic scenes are saved as, so that every verb reads them through the same decoder as any downloaded image.
/// Deterministic: the same pixels always give the same bytes.
/// </summary>
public static class PngEncoder
{
    public static byte[] Encode(RgbImage image)
    {
        var raw = new byte[(long)image.Height * (1 + 3L * image.Width)];
        for (int y = 0; y < image.Height; y++)
        {
            // Filter type 0 (None) before each row; the scenes are flat colour, which zlib packs well without filters.
            int at = y * (1 + 3 * image.Width);
            raw[at] = 0;
            image.Row(y).CopyTo(raw.AsSpan(at + 1));
        }
        byte[] compressed;
        using (var buffer = new MemoryStream())
        {
            using (var zlib = new ZLibStream(buffer, CompressionLevel.SmallestSize, leaveOpen: true)) zlib.Write(raw);
            compressed = buffer.ToArray();
        }

        var png = new MemoryStream();
        png.Write(PngDecoder.Signature);
        Span<byte> header = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, image.Width);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], image.Height);
        header[8] = 8;  // bit depth
        header[9] = 2;  // colour type: RGB
        header[10] = 0; // compression: deflate
        header[11] = 0; // filter method 0
        header[12] = 0; // no interlace
        Chunk(png, "IHDR", header);
        Chunk(png, "IDAT", compressed);
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream png, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        png.Write(word);
        var typed = new byte[4 + data.Length];
        Encoding.ASCII.GetBytes(type, typed);
        data.CopyTo(typed.AsSpan(4));
        png.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32.Compute(typed));
        png.Write(word);
    }
}
