using TruthProbe.Common;

namespace TruthProbe.Imaging;

/// <summary>Reads an image file as RGB, choosing the decoder from the file's first bytes, not its name.</summary>
public static class ImageFile
{
    public static RgbImage Load(string path)
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
        if (data.AsSpan().StartsWith(PngDecoder.Signature))
            return PngDecoder.Decode(data, path);
        if (data.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF]))
            return JpegDecoder.Decode(data, path);
        throw new UserError($"{path}: not a PNG or JPEG image (it starts with bytes {Convert.ToHexString(data.AsSpan(0, Math.Min(8, data.Length)))}); convert it to PNG or JPEG");
    }
}
