using System.Buffers.Binary;
using System.IO.Compression;
using TruthProbe.Imaging;

namespace TruthProbe.Tests.Imaging;

/// <summary>
/// Writes small PNGs for decoder tests from raw (unfiltered) scanlines: the PNG encoding steps (filtering,
/// Adam7 pass extraction, zlib, chunk framing) done forwards, so the decoder is checked against pixels the
/// test states rather than against itself.
/// </summary>
internal static class PngBuilder
{
    public static byte[] Ihdr(int width, int height, int depth, int colourType, bool interlaced = false)
    {
        var body = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(body, width);
        BinaryPrimitives.WriteInt32BigEndian(body.AsSpan(4), height);
        body[8] = (byte)depth;
        body[9] = (byte)colourType;
        body[12] = (byte)(interlaced ? 1 : 0);
        return body;
    }

    public static byte[] Chunk(string type, ReadOnlySpan<byte> body)
    {
        var chunk = new byte[12 + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(chunk, body.Length);
        for (int i = 0; i < 4; i++) chunk[4 + i] = (byte)type[i];
        body.CopyTo(chunk.AsSpan(8));
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + body.Length), Crc32.Compute(chunk.AsSpan(4, 4 + body.Length)));
        return chunk;
    }

    public static byte[] File(params byte[][] chunks) => [.. PngDecoder.Signature, .. chunks.SelectMany(c => c)];

    public static byte[] Zlib(ReadOnlySpan<byte> raw)
    {
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Optimal)) z.Write(raw);
        return ms.ToArray();
    }

    /// <summary>A whole PNG: IHDR, the extra chunks, one IDAT of <paramref name="filteredRows"/> compressed, IEND.</summary>
    public static byte[] Png(byte[] ihdr, byte[] filteredRows, params byte[][] extra) =>
        File([Chunk("IHDR", ihdr), .. extra, Chunk("IDAT", Zlib(filteredRows)), Chunk("IEND", [])]);

    /// <summary>Rows of <paramref name="rowBytes"/> each, every row filtered with <paramref name="filter"/> (PNG spec forward filters).</summary>
    public static byte[] Filter(ReadOnlySpan<byte> raw, int rowBytes, int stride, int filter)
    {
        int rows = raw.Length / rowBytes;
        var output = new byte[rows * (rowBytes + 1)];
        for (int r = 0; r < rows; r++)
        {
            output[r * (rowBytes + 1)] = (byte)filter;
            for (int i = 0; i < rowBytes; i++)
            {
                int x = raw[r * rowBytes + i];
                int a = i >= stride ? raw[r * rowBytes + i - stride] : 0;
                int b = r > 0 ? raw[(r - 1) * rowBytes + i] : 0;
                int c = r > 0 && i >= stride ? raw[(r - 1) * rowBytes + i - stride] : 0;
                int predictor = filter switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    _ => PaethPredictor(a, b, c),
                };
                output[r * (rowBytes + 1) + 1 + i] = (byte)(x - predictor);
            }
        }
        return output;
    }

    // The PNG specification's reference predictor, written as the spec gives it.
    private static int PaethPredictor(int a, int b, int c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        if (pa <= pb && pa <= pc) return a;
        return pb <= pc ? b : c;
    }

    /// <summary>8-bit RGB pixels laid out as Adam7's seven sub-images, each filtered with <paramref name="filter"/>.</summary>
    public static byte[] Adam7Rgb(byte[] rgb, int width, int height, int filter)
    {
        int[] x0 = [0, 4, 0, 2, 0, 1, 0], y0 = [0, 0, 4, 0, 2, 0, 1], dx = [8, 8, 4, 4, 2, 2, 1], dy = [8, 8, 8, 4, 4, 2, 2];
        var output = new List<byte>();
        for (int p = 0; p < 7; p++)
        {
            var pass = new List<byte>();
            int w = 0;
            for (int y = y0[p]; y < height; y += dy[p])
            {
                w = 0;
                for (int x = x0[p]; x < width; x += dx[p], w++)
                    pass.AddRange(rgb.AsSpan(3 * (y * width + x), 3).ToArray());
            }
            if (w > 0 && pass.Count > 0) output.AddRange(Filter(pass.ToArray(), 3 * w, 3, filter));
        }
        return output.ToArray();
    }
}
