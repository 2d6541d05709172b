namespace TruthProbe.Imaging;

/// <summary>
/// 8-bit RGB pixels, row-major and interleaved (R, G, B), as Pillow holds an image after <c>convert("RGB")</c>:
/// every decoder produces this and every preprocessing step starts from it.
/// </summary>
public sealed class RgbImage
{
    public int Width { get; }
    public int Height { get; }
    public byte[] Pixels { get; }

    public RgbImage(int width, int height, byte[] pixels)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if (pixels.LongLength != 3L * width * height)
            throw new ArgumentException($"{width}x{height} RGB needs {3L * width * height} bytes, got {pixels.LongLength}", nameof(pixels));
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    public RgbImage(int width, int height) : this(width, height, new byte[checked(3 * width * height)]) { }

    public Span<byte> Row(int y) => Pixels.AsSpan(y * Width * 3, Width * 3);
}
