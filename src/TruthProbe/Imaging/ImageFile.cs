using System.Buffers.Binary;
using TruthProbe.Common;

namespace TruthProbe.Imaging;

/// <summary>Reads an image file as RGB, choosing the decoder from the file's first bytes, not its name.</summary>
public static class ImageFile
{
    public static RgbImage Load(string path)
    {
        byte[] data = Read(path);
        if (data.AsSpan().StartsWith(PngDecoder.Signature))
            return PngDecoder.Decode(data, path);
        if (data.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF]))
            return JpegDecoder.Decode(data, path);
        throw NotAnImage(path, data);
    }

    /// <summary>
    /// The width and height the file's header gives (PNG's IHDR, a JPEG's frame header), without decoding the pixels:
    /// what <see cref="Load"/> returns when the rest of the file decodes. A damaged header is a <see cref="UserError"/>.
    /// </summary>
    public static (int Width, int Height) ReadSize(string path)
    {
        byte[] data = Read(path);
        if (data.AsSpan().StartsWith(PngDecoder.Signature))
        {
            if (data.Length < 24 || !data.AsSpan(12, 4).SequenceEqual("IHDR"u8))
                throw new UserError($"{path}: PNG file has no IHDR chunk first; the file is truncated or damaged");
            uint width = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(16)), height = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(20));
            if (width is 0 or > int.MaxValue || height is 0 or > int.MaxValue)
                throw new UserError($"{path}: IHDR gives the size {width}x{height}; width and height must be 1 .. 2^31-1");
            return ((int)width, (int)height);
        }
        if (data.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF]))
            return JpegSize(data, path);
        throw NotAnImage(path, data);
    }

    /// <summary>Walks the JPEG's marker segments to the first frame header (SOFn) and reads its height and width.</summary>
    private static (int Width, int Height) JpegSize(byte[] data, string path)
    {
        int pos = 2;
        while (pos + 4 <= data.Length && data[pos] == 0xFF)
        {
            int marker = data[pos + 1];
            if (marker == 0xFF) { pos++; continue; }   // fill byte before a marker
            pos += 2;
            if (marker is 0x01 or (>= 0xD0 and <= 0xD7)) continue;   // markers without a segment
            if (marker is 0xD9 or 0xDA) break;   // end of image or a scan before any frame header
            int length = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(pos));
            if (length < 2 || pos + length > data.Length) break;
            // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision, height, width.
            if (marker is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC)
            {
                int height = length >= 7 ? BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(pos + 3)) : 0;
                int width = length >= 7 ? BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(pos + 5)) : 0;
                if (width == 0 || height == 0)
                    throw new UserError($"{path}: JPEG frame header gives the size {width}x{height}; width and height must be at least 1");
                return (width, height);
            }
            pos += length;
        }
        throw new UserError($"{path}: JPEG file has no frame header (SOF) before its image data; the file is truncated or damaged");
    }

    private static UserError NotAnImage(string path, byte[] data) =>
        new($"{path}: not a PNG or JPEG image (it starts with bytes {Convert.ToHexString(data.AsSpan(0, Math.Min(8, data.Length)))}); convert it to PNG or JPEG");

    private static byte[] Read(string path)
    {
        byte[] data;
        try
        {
            data = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new UserError($"{path}: image file not found; check the path");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserError($"{path}: cannot read the image file ({e.Message})", e);
        }
        return data;
    }
}
