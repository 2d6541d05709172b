using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TruthProbe.Common;

namespace TruthProbe.Imaging;

/// <summary>
/// PNG to <see cref="RgbImage"/> with the pixels Pillow 9.4 gives for <c>Image.open(f).convert("RGB")</c>:
/// every colour type at every bit depth, all five filters, Adam7 interlacing. Grey is replicated and alpha
/// dropped without compositing. 16-bit samples follow Pillow's modes rather than rescaling: RGB, RGBA and
/// grey+alpha are unpacked with the "*;16B" raw modes, which keep the high byte; 16-bit grey opens as mode
/// "I" (0..65535) and Convert.c's i2rgb clips it to 0..255, so every sample from 255 up becomes white.
/// 1/2/4-bit grey is scaled to 0..255 (x255, x85, x17) as the "1", "L;2", "L;4" unpackers do. A palette
/// index beyond the PLTE entries reads Pillow's initial palette, the grey ramp (i, i, i). tRNS, gamma, ICC
/// profiles and text are ignored, as convert("RGB") ignores them.
/// </summary>
public static class PngDecoder
{
    public static ReadOnlySpan<byte> Signature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Twice Pillow's <c>Image.MAX_IMAGE_PIXELS</c>: where Pillow 9.4 refuses an image as a decompression bomb.</summary>
    public const long MaxPixels = 2L * 89_478_485;

    // Adam7 passes: first column, first row, column step, row step.
    private static readonly (int X0, int Y0, int Dx, int Dy)[] Adam7 =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];

    private const byte Grey = 0, Rgb = 2, Palette = 3, GreyAlpha = 4, Rgba = 6;

    private readonly record struct Header(int Width, int Height, int BitDepth, int ColourType, bool Interlaced)
    {
        public int Channels => ColourType switch { Grey or Palette => 1, GreyAlpha => 2, Rgb => 3, _ => 4 };
        public int BitsPerPixel => BitDepth * Channels;
        /// <summary>Filter byte distance: bytes per complete pixel, at least one.</summary>
        public int FilterStride => Math.Max(1, BitsPerPixel / 8);
        public int RowBytes(int width) => (int)(((long)width * BitsPerPixel + 7) / 8);
    }

    public static RgbImage Decode(ReadOnlySpan<byte> data, string fileName)
    {
        if (data.Length < Signature.Length || !data[..Signature.Length].SequenceEqual(Signature))
            throw Bad(fileName, "does not start with the PNG signature");

        Header? header = null;
        byte[]? lookup = null;
        using var compressed = new MemoryStream();
        int pos = Signature.Length;
        while (true)
        {
            if (data.Length - pos < 12)
                throw Bad(fileName, $"ends at byte {data.Length} before its IEND chunk (the file is truncated)");
            uint length = BinaryPrimitives.ReadUInt32BigEndian(data[pos..]);
            if (length > (uint)(data.Length - pos - 12))
                throw Bad(fileName, $"the chunk at byte {pos} claims {length} bytes but only {data.Length - pos - 12} follow (the file is truncated or corrupt)");
            var typeAndBody = data.Slice(pos + 4, 4 + (int)length);
            var type = typeAndBody[..4];
            var body = typeAndBody[4..];
            string name = ChunkName(type);
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(data[(pos + 8 + (int)length)..]);
            if (Crc32.Compute(typeAndBody) != stored)
                throw Bad(fileName, $"chunk {name} at byte {pos} fails its CRC check (the file is corrupt)");
            if (header == null && name != "IHDR")
                throw Bad(fileName, $"the first chunk is {name}, not IHDR");

            switch (name)
            {
                case "IHDR":
                    if (header != null) throw Bad(fileName, "has a second IHDR chunk");
                    header = ReadHeader(body, fileName);
                    break;
                // In a truecolour image PLTE is only a quantisation hint.
                case "PLTE" when header!.Value.ColourType == Palette:
                    lookup = ReadPalette(body, fileName);
                    break;
                case "IDAT":
                    compressed.Write(body);
                    break;
                case "IEND":
                    return Pixels(header!.Value, lookup, compressed, fileName);
                // Ancillary chunks (tRNS, gAMA, iCCP, text, APNG frames ...) do not change convert("RGB")'s pixels,
                // and Pillow skips unknown chunks too.
            }
            pos += 12 + (int)length;
        }
    }

    private static Header ReadHeader(ReadOnlySpan<byte> body, string fileName)
    {
        if (body.Length != 13) throw Bad(fileName, $"IHDR has {body.Length} bytes, not 13");
        uint width = BinaryPrimitives.ReadUInt32BigEndian(body);
        uint height = BinaryPrimitives.ReadUInt32BigEndian(body[4..]);
        int depth = body[8], colour = body[9];
        if (width == 0 || height == 0 || width > int.MaxValue || height > int.MaxValue)
            throw Bad(fileName, $"IHDR gives the size {width}x{height}; width and height must be 1 .. 2^31-1");
        if ((long)width * height > MaxPixels)
            throw Bad(fileName, $"{width}x{height} is {(long)width * height} pixels, over the limit of {MaxPixels} (Pillow's decompression-bomb limit); downscale the image first");
        bool valid = colour switch
        {
            Grey => depth is 1 or 2 or 4 or 8 or 16,
            Palette => depth is 1 or 2 or 4 or 8,
            Rgb or GreyAlpha or Rgba => depth is 8 or 16,
            _ => false,
        };
        if (!valid) throw Bad(fileName, $"IHDR has colour type {colour} with bit depth {depth}, which PNG does not define");
        if (body[10] != 0 || body[11] != 0)
            throw Bad(fileName, $"IHDR has compression method {body[10]} and filter method {body[11]}; PNG defines only 0");
        if (body[12] > 1) throw Bad(fileName, $"IHDR has interlace method {body[12]}; PNG defines 0 (none) and 1 (Adam7)");
        return new Header((int)width, (int)height, depth, colour, body[12] == 1);
    }

    /// <summary>256 RGB entries: the PLTE colours, then Pillow's initial grey ramp for indices the PLTE lacks.</summary>
    private static byte[] ReadPalette(ReadOnlySpan<byte> body, string fileName)
    {
        if (body.Length == 0 || body.Length % 3 != 0 || body.Length > 3 * 256)
            throw Bad(fileName, $"PLTE has {body.Length} bytes; it must hold 1 to 256 RGB entries of 3 bytes");
        byte[] lookup = GreyRamp(255);
        body.CopyTo(lookup);
        return lookup;
    }

    /// <summary>256 RGB entries mapping a sample of maximum <paramref name="max"/> to grey scaled onto 0..255.</summary>
    private static byte[] GreyRamp(int max)
    {
        var lookup = new byte[3 * 256];
        for (int i = 0; i <= max; i++)
            lookup[3 * i] = lookup[3 * i + 1] = lookup[3 * i + 2] = (byte)(i * 255 / max);
        return lookup;
    }

    private static RgbImage Pixels(Header h, byte[]? palette, MemoryStream compressed, string fileName)
    {
        if (h.ColourType == Palette && palette == null) throw Bad(fileName, "is a palette image without a PLTE chunk");
        if (compressed.Length == 0) throw Bad(fileName, "has no IDAT chunk (no image data)");
        byte[]? lookup = h.ColourType == Palette ? palette
            : h.ColourType == Grey && h.BitDepth < 16 ? GreyRamp((1 << h.BitDepth) - 1) : null;

        var image = new RgbImage(h.Width, h.Height);
        var prev = new byte[h.RowBytes(h.Width) + 1];
        var cur = new byte[prev.Length];
        var scatter = h.Interlaced ? new byte[3 * ((h.Width + 1) / 2)] : [];
        compressed.Position = 0;
        // Reading exactly the rows the header promises bounds the inflated size: a decompression bomb stops there.
        // Like Pillow, whatever follows the last row (extra data, the Adler-32) is not read.
        using var zlib = new ZLibStream(compressed, CompressionMode.Decompress);
        try
        {
            foreach (var (x0, y0, dx, dy) in h.Interlaced ? Adam7 : [(0, 0, 1, 1)])
            {
                int w = (h.Width - x0 + dx - 1) / dx, rows = (h.Height - y0 + dy - 1) / dy;
                if (w == 0 || rows == 0) continue;
                int rowBytes = h.RowBytes(w);
                prev.AsSpan(0, rowBytes + 1).Clear();
                for (int r = 0; r < rows; r++)
                {
                    var line = cur.AsSpan(0, rowBytes + 1);
                    zlib.ReadExactly(line);
                    Unfilter(line[0], line[1..], prev.AsSpan(1, rowBytes), h.FilterStride, fileName);
                    var dest = image.Row(y0 + r * dy);
                    if (dx == 1)
                        ToRgb(h, lookup, line[1..], w, dest);
                    else
                    {
                        var rgb = scatter.AsSpan(0, 3 * w);
                        ToRgb(h, lookup, line[1..], w, rgb);
                        for (int i = 0, x = 3 * x0; i < rgb.Length; i += 3, x += 3 * dx)
                        {
                            dest[x] = rgb[i];
                            dest[x + 1] = rgb[i + 1];
                            dest[x + 2] = rgb[i + 2];
                        }
                    }
                    (prev, cur) = (cur, prev);
                }
            }
        }
        catch (EndOfStreamException)
        {
            throw Bad(fileName, "its image data ends before the last row (the file is truncated)");
        }
        catch (InvalidDataException e)
        {
            throw Bad(fileName, $"its compressed image data is corrupt ({e.Message})");
        }
        return image;
    }

    private static void Unfilter(byte filter, Span<byte> row, ReadOnlySpan<byte> prev, int stride, string fileName)
    {
        // Average and Paeth are the filters photos use: unfiltering is half the decode time (1.9 of 3.5 ms per
        // shared photo), so their loops index by reference, without bounds checks on three neighbours.
        ref byte r = ref MemoryMarshal.GetReference(row);
        ref byte p = ref MemoryMarshal.GetReference(prev[..row.Length]);
        switch (filter)
        {
            case 0:
                break;
            case 1:
                for (int i = stride; i < row.Length; i++) row[i] += row[i - stride];
                break;
            case 2:
                TensorPrimitives.Add(row, prev[..row.Length], row); // wraps modulo 256, as the filter needs
                break;
            case 3:
                for (int i = 0; i < stride; i++) row[i] += (byte)(prev[i] >> 1);
                for (int i = stride; i < row.Length; i++) Unsafe.Add(ref r, i) += (byte)((Unsafe.Add(ref r, i - stride) + Unsafe.Add(ref p, i)) >> 1);
                break;
            case 4:
                for (int i = 0; i < stride; i++) row[i] += prev[i];
                for (int i = stride; i < row.Length; i++)
                    Unsafe.Add(ref r, i) += Paeth(Unsafe.Add(ref r, i - stride), Unsafe.Add(ref p, i), Unsafe.Add(ref p, i - stride));
                break;
            default:
                throw Bad(fileName, $"a row uses filter type {filter}; PNG defines 0 to 4 (the file is corrupt)");
        }
    }

    /// <summary>
    /// The spec's predictor (a if pa &lt;= pb and pa &lt;= pc, else b if pb &lt;= pc, else c) written as selects the
    /// JIT turns into conditional moves: photo bytes make the branches unpredictable.
    /// </summary>
    private static byte Paeth(int a, int b, int c)
    {
        int pa = Math.Abs(b - c), pb = Math.Abs(a - c), pc = Math.Abs(a + b - 2 * c);
        int bOrC = pb <= pc ? b : c;
        return (byte)(pa <= Math.Min(pb, pc) ? a : bOrC);
    }

    /// <summary>One unfiltered row of <paramref name="width"/> pixels to RGB, as Pillow's unpacker then convert("RGB").</summary>
    private static void ToRgb(Header h, byte[]? lookup, ReadOnlySpan<byte> row, int width, Span<byte> rgb)
    {
        rgb = rgb[..(3 * width)];
        if (lookup != null)
        {
            int depth = h.BitDepth, mask = (1 << depth) - 1;
            for (int x = 0, o = 0; o < rgb.Length; x++, o += 3)
            {
                int bit = x * depth;
                int index = 3 * (depth == 8 ? row[x] : (row[bit >> 3] >> (8 - depth - (bit & 7))) & mask);
                rgb[o] = lookup[index];
                rgb[o + 1] = lookup[index + 1];
                rgb[o + 2] = lookup[index + 2];
            }
            return;
        }
        if (h.ColourType == Rgb && h.BitDepth == 8)
        {
            row[..rgb.Length].CopyTo(rgb);
            return;
        }
        // Remaining layouts: whole-byte samples; the first (grey) or first three (colour) of each pixel are kept,
        // taking the high byte of 16-bit samples.
        int sample = h.BitDepth / 8, pixel = sample * h.Channels;
        row = row[..(pixel * width)];
        if (h.ColourType == Grey)
            // 16-bit only (lower depths took the lookup path): Pillow's clip of 0..65535 to 0..255.
            for (int i = 0, o = 0; o < rgb.Length; i += 2, o += 3)
                rgb[o] = rgb[o + 1] = rgb[o + 2] = row[i] > 0 ? (byte)255 : row[i + 1];
        else if (h.ColourType == GreyAlpha)
            for (int i = 0, o = 0; o < rgb.Length; i += pixel, o += 3)
                rgb[o] = rgb[o + 1] = rgb[o + 2] = row[i];
        else
            for (int i = 0, o = 0; o < rgb.Length; i += pixel, o += 3)
            {
                rgb[o] = row[i];
                rgb[o + 1] = row[i + sample];
                rgb[o + 2] = row[i + 2 * sample];
            }
    }

    private static string ChunkName(ReadOnlySpan<byte> type)
    {
        Span<char> chars = stackalloc char[4];
        for (int i = 0; i < 4; i++) chars[i] = type[i] is >= 0x20 and < 0x7F ? (char)type[i] : '?';
        return new string(chars);
    }

    private static UserError Bad(string fileName, string what) =>
        new($"{fileName}: not a readable PNG: {what}; re-save the image as PNG or JPEG");
}
