using TruthProbe.Imaging;

namespace TruthProbe.Tests.Imaging;

public static class PixelAsserts
{
    /// <summary>Byte-for-byte equality with a Pillow golden; on failure says how many bytes differ and by how much.</summary>
    public static void AssertSamePixels(RgbImage expected, RgbImage actual, string what)
    {
        Assert.Equal((expected.Width, expected.Height), (actual.Width, actual.Height));
        int differing = 0, maxDiff = 0;
        for (int i = 0; i < expected.Pixels.Length; i++)
        {
            int d = Math.Abs(expected.Pixels[i] - actual.Pixels[i]);
            if (d != 0) differing++;
            maxDiff = Math.Max(maxDiff, d);
        }
        Assert.True(differing == 0, $"{what}: {differing} bytes differ from Pillow's, by up to {maxDiff}");
    }
}
