using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TruthProbe.Imaging;

public enum ResampleFilter { Nearest, Bilinear, Bicubic }

/// <summary>
/// Pillow 9.4's <c>Image.resize(size, filter)</c> for RGB, bit for bit. Bilinear and bicubic follow
/// libImaging/Resample.c: separable, horizontal pass first (over only the rows the vertical pass reads), each
/// pass rounding to uint8; when downscaling the filter is stretched by the scale (antialiasing); per-pixel
/// weights are normalised to sum 1 in double, then fixed point with 22 fraction bits (32 - 8 - 2: room for 8
/// bits of result, negative lobes and overshoot). Nearest follows Geometry.c's affine scale: source positions
/// accumulated by repeated addition of the scale, from half a step in, truncated.
/// </summary>
public static class Resample
{
    private const int PrecisionBits = 32 - 8 - 2;

    /// <summary>Source rows or columns <c>[Start, Start + Count)</c> and fixed-point weights for one output position.</summary>
    private readonly record struct Taps(int[] Start, int[] Count, int[] Weights, int Stride);

    public static RgbImage Resize(RgbImage image, int width, int height, ResampleFilter filter)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if (width == image.Width && height == image.Height)
            return new RgbImage(width, height, (byte[])image.Pixels.Clone());
        if (filter == ResampleFilter.Nearest) return Nearest(image, width, height);

        var columns = Coefficients(image.Width, width, filter);
        var rows = Coefficients(image.Height, height, filter);
        var source = image;
        if (width != image.Width)
        {
            // Pillow resamples horizontally only the rows the vertical pass will read, then shifts its row bounds.
            int first = rows.Start[0], last = rows.Start[height - 1] + rows.Count[height - 1];
            source = new RgbImage(width, last - first);
            for (int y = 0; y < source.Height; y++) Horizontal(image.Row(first + y), source.Row(y), columns);
            for (int i = 0; i < height; i++) rows.Start[i] -= first;
        }
        if (height == image.Height) return source;
        var output = new RgbImage(width, height);
        for (int y = 0; y < height; y++) Vertical(source, y, output.Row(y), rows);
        return output;
    }

    private static double Bilinear(double x)
    {
        x = Math.Abs(x);
        return x < 1.0 ? 1.0 - x : 0.0;
    }

    private static double Bicubic(double x)
    {
        const double a = -0.5;
        x = Math.Abs(x);
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    /// <summary>Resample.c's precompute_coeffs then normalize_coeffs_8bpc, for the whole input range.</summary>
    private static Taps Coefficients(int inSize, int outSize, ResampleFilter filter)
    {
        Func<double, double> kernel = filter == ResampleFilter.Bicubic ? Bicubic : Bilinear;
        double support = filter == ResampleFilter.Bicubic ? 2.0 : 1.0;
        double scale = (double)(float)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        support *= filterScale;
        // Multiplying by the reciprocal, not dividing, as Pillow does: the two differ in the last bit.
        double invScale = 1.0 / filterScale;
        int stride = (int)Math.Ceiling(support) * 2 + 1;
        var start = new int[outSize];
        var count = new int[outSize];
        var weights = new int[outSize * stride];
        var k = new double[stride];
        for (int xx = 0; xx < outSize; xx++)
        {
            double center = (xx + 0.5) * scale;
            // (int) truncates toward zero, as C's cast does; negatives are clamped to 0 anyway.
            int xmin = Math.Max((int)(center - support + 0.5), 0);
            int xmax = Math.Min((int)(center + support + 0.5), inSize) - xmin;
            double sum = 0.0;
            for (int x = 0; x < xmax; x++)
            {
                k[x] = kernel((x + xmin - center + 0.5) * invScale);
                sum += k[x];
            }
            for (int x = 0; x < xmax; x++)
            {
                double v = sum != 0.0 ? k[x] / sum : k[x];
                weights[xx * stride + x] = (int)(v < 0 ? -0.5 + v * (1 << PrecisionBits) : 0.5 + v * (1 << PrecisionBits));
            }
            start[xx] = xmin;
            count[xx] = xmax;
        }
        return new Taps(start, count, weights, stride);
    }

    private static byte Clip8(int sum) => (byte)Math.Clamp(sum >> PrecisionBits, 0, 255);

    /// <summary>
    /// One row: each output pixel a weighted sum of the source pixels under its taps. Where a 4-byte read at the
    /// last tap stays inside the row, R, G, B (and the next byte, ignored) ride four int lanes together.
    /// </summary>
    private static void Horizontal(ReadOnlySpan<byte> input, Span<byte> output, Taps taps)
    {
        for (int xx = 0; xx < taps.Start.Length; xx++)
        {
            var k = taps.Weights.AsSpan(xx * taps.Stride, taps.Count[xx]);
            int first = 3 * taps.Start[xx];
            int r = 1 << (PrecisionBits - 1), g = r, b = r;
            if (Vector128.IsHardwareAccelerated && first + 3 * k.Length + 1 <= input.Length)
            {
                ref byte p = ref Unsafe.AsRef(in input[first]);
                var sum = Vector128.Create(r);
                for (int x = 0; x < k.Length; x++)
                {
                    var four = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, 3 * x))).AsByte();
                    sum += Vector128.WidenLower(Vector128.WidenLower(four)).AsInt32() * Vector128.Create(k[x]);
                }
                (r, g, b) = (sum.GetElement(0), sum.GetElement(1), sum.GetElement(2));
            }
            else
            {
                var pixels = input.Slice(first, 3 * k.Length);
                for (int x = 0; x < k.Length; x++)
                {
                    r += pixels[3 * x] * k[x];
                    g += pixels[3 * x + 1] * k[x];
                    b += pixels[3 * x + 2] * k[x];
                }
            }
            output[3 * xx] = Clip8(r);
            output[3 * xx + 1] = Clip8(g);
            output[3 * xx + 2] = Clip8(b);
        }
    }

    /// <summary>
    /// One output row as the weighted sum of source rows, <see cref="Vector{T}"/> lanes of bytes at a time, each
    /// lane's sum kept in registers across the taps; the same integer arithmetic as the scalar tail.
    /// </summary>
    private static void Vertical(RgbImage input, int yy, Span<byte> output, Taps taps)
    {
        var k = taps.Weights.AsSpan(yy * taps.Stride, taps.Count[yy]);
        var source = input.Pixels.AsSpan(taps.Start[yy] * output.Length, k.Length * output.Length);
        int n = output.Length, lanes = Vector<byte>.Count, i = 0;
        var half = new Vector<int>(1 << (PrecisionBits - 1));
        var max = new Vector<int>(255);
        for (; i <= n - lanes; i += lanes)
        {
            Vector<int> s0 = half, s1 = half, s2 = half, s3 = half;
            for (int y = 0; y < k.Length; y++)
            {
                var weight = new Vector<int>(k[y]);
                Vector.Widen(new Vector<byte>(source.Slice(y * n + i, lanes)), out var lo, out var hi);
                Vector.Widen(lo, out var w0, out var w1);
                Vector.Widen(hi, out var w2, out var w3);
                s0 += Vector.AsVectorInt32(w0) * weight;
                s1 += Vector.AsVectorInt32(w1) * weight;
                s2 += Vector.AsVectorInt32(w2) * weight;
                s3 += Vector.AsVectorInt32(w3) * weight;
            }
            // clip8: the arithmetic shift floors, then 0..255.
            var c0 = Vector.AsVectorUInt32(Vector.Min(Vector.Max(Vector.ShiftRightArithmetic(s0, PrecisionBits), Vector<int>.Zero), max));
            var c1 = Vector.AsVectorUInt32(Vector.Min(Vector.Max(Vector.ShiftRightArithmetic(s1, PrecisionBits), Vector<int>.Zero), max));
            var c2 = Vector.AsVectorUInt32(Vector.Min(Vector.Max(Vector.ShiftRightArithmetic(s2, PrecisionBits), Vector<int>.Zero), max));
            var c3 = Vector.AsVectorUInt32(Vector.Min(Vector.Max(Vector.ShiftRightArithmetic(s3, PrecisionBits), Vector<int>.Zero), max));
            Vector.Narrow(Vector.Narrow(c0, c1), Vector.Narrow(c2, c3)).CopyTo(output.Slice(i, lanes));
        }
        for (; i < n; i++)
        {
            int sum = 1 << (PrecisionBits - 1);
            for (int y = 0; y < k.Length; y++) sum += source[y * n + i] * k[y];
            output[i] = Clip8(sum);
        }
    }

    /// <summary>
    /// Geometry.c's ImagingScaleAffine with Pillow's resize box: positions accumulate, they are not multiplied,
    /// and a position that rounding pushes past the edge leaves its pixel black (Pillow fills the output with 0).
    /// </summary>
    private static RgbImage Nearest(RgbImage image, int width, int height)
    {
        double dx = (double)(float)image.Width / width, dy = (double)(float)image.Height / height;
        var columns = new int[width];
        double xo = dx * 0.5;
        for (int x = 0; x < width; x++, xo += dx) columns[x] = (int)xo;
        var output = new RgbImage(width, height);
        double yo = dy * 0.5;
        for (int y = 0; y < height; y++, yo += dy)
        {
            if ((int)yo >= image.Height) continue;
            var input = image.Row((int)yo);
            var row = output.Row(y);
            for (int x = 0; x < width; x++)
                if (columns[x] < image.Width) input.Slice(3 * columns[x], 3).CopyTo(row.Slice(3 * x, 3));
        }
        return output;
    }
}
