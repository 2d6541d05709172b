using TruthProbe.Imaging;

namespace TruthProbe.Tests.Imaging;

/// <summary>
/// Small cases worked by hand from Pillow's Resample.c arithmetic (the CLIP goldens check real photos).
/// </summary>
public class ResampleTests
{
    private static RgbImage Grey(int width, int height, params byte[] values) =>
        new(width, height, [.. values.SelectMany(v => new[] { v, v, v })]);

    private static byte[] Channel0(RgbImage image) => [.. image.Pixels.Where((_, i) => i % 3 == 0)];

    [Fact]
    public void Bilinear_TwoToFour_HorizontalAndVertical_WorkedByHand()
    {
        // 2 -> 4: scale 0.5, support 1. Output centres 0.25, 0.75, 1.25, 1.75; the edge outputs see one input
        // (xmin = 0, xmax = int(1.75) = 1), the inner ones weigh (0.75, 0.25) and (0.25, 0.75).
        // With 0 and 201: 0, 50.25 -> 50, 150.75 -> 151 (the 2^21 rounding offset), 201.
        byte[] expected = [0, 50, 151, 201];
        Assert.Equal(expected, Channel0(Resample.Resize(Grey(2, 1, 0, 201), 4, 1, ResampleFilter.Bilinear)));
        Assert.Equal(expected, Channel0(Resample.Resize(Grey(1, 2, 0, 201), 1, 4, ResampleFilter.Bilinear)));
    }

    [Fact]
    public void Bicubic_FourToTwo_AntialiasedWeights_WorkedByHand()
    {
        // 4 -> 2: scale 2 stretches the a = -0.5 cubic to support 4. Output 0 (centre 1) reads inputs 0..3 at
        // distances 0.25, 0.25, 0.75, 1.25 (in filter units): weights 0.8671875, 0.8671875, 0.2265625, -0.0703125,
        // sum 1.890625. For 10, 20, 200, 40: 68.515625 / 1.890625 = 36.24 -> 36. Output 1 (centre 3) reads the
        // same inputs (xmin = int(-0.5) = 0) mirrored, at 1.25, 0.75, 0.25, 0.25:
        // (-0.703125 + 4.53125 + 173.4375 + 34.6875) / 1.890625 = 112.11 -> 112.
        var image = Grey(4, 1, 10, 20, 200, 40);
        Assert.Equal([36, 112], Channel0(Resample.Resize(image, 2, 1, ResampleFilter.Bicubic)));
    }

    [Fact]
    public void Bicubic_Overshoot_IsClippedTo0And255()
    {
        // Upscaling a hard edge: the negative lobe overshoots below 0 and above 255, and clip8 bounds it.
        var image = Grey(4, 1, 0, 0, 255, 255);
        var row = Channel0(Resample.Resize(image, 8, 1, ResampleFilter.Bicubic));
        Assert.Equal(0, row[0]);
        Assert.Equal(255, row[7]);
        Assert.True(row.Zip(row.Skip(1)).All(p => p.First <= p.Second), string.Join(",", row));
    }

    [Fact]
    public void Nearest_AccumulatedPositions_WorkedByHand()
    {
        // 3 -> 5: step 0.6 from 0.3: 0.3, 0.9, 1.5, 2.1, 2.7 -> 0, 0, 1, 2, 2. 4 -> 2: 1, 3.
        Assert.Equal([10, 10, 20, 30, 30], Channel0(Resample.Resize(Grey(3, 1, 10, 20, 30), 5, 1, ResampleFilter.Nearest)));
        Assert.Equal([20, 40], Channel0(Resample.Resize(Grey(1, 4, 10, 20, 30, 40), 1, 2, ResampleFilter.Nearest)));
    }

    [Fact]
    public void SameSize_IsACopy()
    {
        var image = Grey(2, 1, 1, 2);
        var same = Resample.Resize(image, 2, 1, ResampleFilter.Bicubic);
        Assert.NotSame(image.Pixels, same.Pixels);
        Assert.Equal(image.Pixels, same.Pixels);
    }
}
