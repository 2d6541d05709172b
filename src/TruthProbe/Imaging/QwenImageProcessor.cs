using TruthProbe.Common;

namespace TruthProbe.Imaging;

/// <summary>
/// An image as the Qwen vision encoder takes it: <see cref="PixelValues"/> [<see cref="Patches"/>, 3 x frames x
/// patch x patch], rows in merge-group order, and <c>image_grid_thw</c> = (<see cref="GridT"/>, <see cref="GridH"/>,
/// <see cref="GridW"/>) in patches.
/// </summary>
public sealed record QwenImage(float[] PixelValues, int GridT, int GridH, int GridW, int MergeSize)
{
    public int Patches => GridT * GridH * GridW;
    /// <summary>Image tokens in the LM after the 2 x 2 merge (grid_t x grid_h x grid_w / 4).</summary>
    public int Tokens => Patches / (MergeSize * MergeSize);
    /// <summary>The resized image's size in pixels.</summary>
    public (int Width, int Height) Size(int patchSize) => (GridW * patchSize, GridH * patchSize);
}

/// <summary>
/// transformers' Qwen2VLImageProcessor (the slow, PIL one) on one RGB image: smart_resize chooses a size that is a
/// multiple of 28 on both sides and holds between min and max pixels, PIL resizes to it, rescale and CLIP
/// normalisation as <see cref="ClipPreprocessor.Normalize"/>, then the frame is repeated to the temporal patch size
/// and cut into patches listed merge group by merge group.
/// </summary>
public sealed class QwenImageProcessor(QwenImageConfig config)
{
    public QwenImageConfig Config { get; } = config;

    /// <summary>
    /// smart_resize: each side rounded to a multiple of <paramref name="factor"/> (Python's round, half to even, which is
    /// <see cref="Math.Round(double)"/>'s default too); over <paramref name="maxPixels"/> both sides shrink by
    /// sqrt(H W / max) and floor, under <paramref name="minPixels"/> grow by sqrt(min / (H W)) and ceil. The arithmetic is
    /// Python's float64, step for step, so the results agree at the ties.
    /// </summary>
    public static (int Height, int Width) SmartResize(int height, int width, int factor, int minPixels, int maxPixels)
    {
        if (height < factor || width < factor)
            throw new UserError($"image is {width}x{height} pixels; the Qwen image processor needs both sides at least {factor} (patch x merge size); enlarge or pad the image");
        if ((double)Math.Max(height, width) / Math.Min(height, width) > 200)
            throw new UserError($"image is {width}x{height} pixels, an aspect ratio of {(double)Math.Max(height, width) / Math.Min(height, width):0.#}; the Qwen image processor refuses ratios over 200; crop the image");
        long hBar = (long)Math.Round((double)height / factor) * factor;
        long wBar = (long)Math.Round((double)width / factor) * factor;
        if (hBar * wBar > maxPixels)
        {
            double beta = Math.Sqrt((double)height * width / maxPixels);
            // At least one factor per side, as transformers and qwen_vl_utils keep it; floor could reach 0 only near the ratio limit.
            hBar = Math.Max(factor, (long)Math.Floor(height / beta / factor) * factor);
            wBar = Math.Max(factor, (long)Math.Floor(width / beta / factor) * factor);
        }
        else if (hBar * wBar < minPixels)
        {
            double beta = Math.Sqrt((double)minPixels / ((double)height * width));
            hBar = (long)Math.Ceiling(height * beta / factor) * factor;
            wBar = (long)Math.Ceiling(width * beta / factor) * factor;
        }
        return (checked((int)hBar), checked((int)wBar));
    }

    /// <summary>The size smart_resize gives this image under the config's pixel budget (the image itself when do_resize is off).</summary>
    public (int Height, int Width) TargetSize(int height, int width)
    {
        if (Config.DoResize) return SmartResize(height, width, Config.Factor, Config.MinPixels, Config.MaxPixels);
        if (height % Config.Factor != 0 || width % Config.Factor != 0)
            throw new UserError($"image is {width}x{height} pixels and do_resize is off; both sides must then be multiples of {Config.Factor}");
        return (height, width);
    }

    /// <summary>The uint8 image just before rescaling: PIL's resize to <see cref="TargetSize"/> (a copy when the size is unchanged).</summary>
    public RgbImage Geometry(RgbImage image)
    {
        var (h, w) = TargetSize(image.Height, image.Width);
        return Resample.Resize(image, w, h, Config.Resample);
    }

    public QwenImage Preprocess(RgbImage image)
    {
        var resized = Geometry(image);
        var chw = new float[3 * resized.Width * resized.Height];
        var normalizer = new ClipPreprocessor(new ClipConfig(null, resized.Height, resized.Width, resized.Height, resized.Width, Config.Resample,
            Config.Mean, Config.Std, Config.RescaleFactor, false, false, Config.DoRescale, Config.DoNormalize));
        normalizer.Normalize(resized, chw);
        int gridH = resized.Height / Config.PatchSize, gridW = resized.Width / Config.PatchSize;
        var patches = new float[gridH * gridW * Config.PatchValues];
        Patchify(chw, resized.Height, resized.Width, Config, patches);
        return new QwenImage(patches, 1, gridH, gridW, Config.MergeSize);
    }

    /// <summary>
    /// [3, H, W] to [grid_h x grid_w, 3 x frames x P x P]: rows by (merge-block row, merge-block column, row in the block,
    /// column in the block), each row (channel, frame, y, x), the one image standing for every frame. This is the
    /// processor's reshape to (t, frames, C, H/PM, M, P, W/PM, M, P) permuted to (t, H/PM, W/PM, M, M, C, frames, P, P).
    /// </summary>
    public static void Patchify(ReadOnlySpan<float> chw, int height, int width, QwenImageConfig c, Span<float> patches)
    {
        int p = c.PatchSize, m = c.MergeSize, frames = c.TemporalPatchSize, gridH = height / p, gridW = width / p;
        if (height % (p * m) != 0 || width % (p * m) != 0)
            throw new ArgumentException($"{width}x{height} is not a multiple of {p * m} on both sides");
        if (chw.Length != 3 * height * width || patches.Length != gridH * gridW * c.PatchValues)
            throw new ArgumentException($"needs {3 * height * width} pixels and {gridH * gridW * c.PatchValues} patch values");
        int row = 0;
        for (int by = 0; by < gridH / m; by++)
            for (int bx = 0; bx < gridW / m; bx++)
                for (int iy = 0; iy < m; iy++)
                    for (int ix = 0; ix < m; ix++, row++)
                    {
                        int y0 = (by * m + iy) * p, x0 = (bx * m + ix) * p;
                        var dest = patches.Slice(row * c.PatchValues, c.PatchValues);
                        for (int ch = 0; ch < 3; ch++)
                            for (int f = 0; f < frames; f++)
                                for (int y = 0; y < p; y++)
                                    chw.Slice(ch * height * width + (y0 + y) * width + x0, p).CopyTo(dest.Slice(((ch * frames + f) * p + y) * p, p));
                    }
    }
}
