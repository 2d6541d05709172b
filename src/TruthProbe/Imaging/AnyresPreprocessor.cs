namespace TruthProbe.Imaging;

/// <summary>
/// An image as LLaVA-NeXT's processor hands it to the vision tower: <see cref="Tiles"/> normalised
/// [3, tile, tile] planes back to back (the squashed base image first, then the grid row by row) and the size of
/// the image before any resizing, which fixes the grid, the unpadding and the image-token count.
/// </summary>
public sealed record AnyresPixels(float[] Values, int Tiles, int ImageHeight, int ImageWidth);

/// <summary>
/// transformers' LlavaNextImageProcessor ("anyres") on one RGB image, in uint8 exactly as PIL and numpy do it:
/// the best grid resolution among the pinpoints (<see cref="SelectBestResolution"/>), an aspect-preserving PIL resize
/// to fit it (<see cref="FittedSize"/>), a centred pad with zeros (black, the extra pixel of an odd remainder at the
/// bottom or right), the padded image cut into crop-sized tiles row by row, and in front of them the whole image
/// resized to the square shortest edge without keeping its aspect; each of those then goes through the CLIP steps
/// (<see cref="ClipPreprocessor"/>: resize, centre crop, rescale, normalise).
/// </summary>
public sealed class AnyresPreprocessor
{
    private readonly ClipPreprocessor _clip;
    public IReadOnlyList<(int Height, int Width)> Pinpoints { get; }

    /// <param name="pinpoints">candidate resolutions (height, width), each a multiple of the crop size (the model's config reader checks it).</param>
    public AnyresPreprocessor(ClipConfig config, IReadOnlyList<(int Height, int Width)> pinpoints)
    {
        if (config.CropHeight != config.CropWidth) throw new ArgumentException($"anyres tiles are square; crop size is {config.CropWidth}x{config.CropHeight}", nameof(config));
        if (pinpoints.Count == 0 || pinpoints.Any(p => p.Height <= 0 || p.Width <= 0 || p.Height % config.CropHeight != 0 || p.Width % config.CropHeight != 0))
            throw new ArgumentException($"every pinpoint must be a positive multiple of the tile size {config.CropHeight}", nameof(pinpoints));
        _clip = new ClipPreprocessor(config, AspectMode.Crop);
        Pinpoints = pinpoints;
    }

    public ClipConfig Config => _clip.Config;
    public int TileSize => Config.CropHeight;

    /// <summary>
    /// transformers' select_best_resolution: per candidate the image scaled to fit (float64 scale, sides truncated),
    /// its area capped at the original's is the effective resolution; the largest wins, ties go to the least wasted
    /// area (candidate area minus effective), remaining ties to the earlier candidate.
    /// </summary>
    public static (int Height, int Width) SelectBestResolution(int height, int width, IReadOnlyList<(int Height, int Width)> pinpoints)
    {
        (int, int) best = default;
        long bestEffective = 0, bestWasted = long.MaxValue;
        foreach (var (h, w) in pinpoints)
        {
            double scale = Math.Min((double)w / width, (double)h / height);
            long effective = Math.Min((long)(width * scale) * (long)(height * scale), (long)width * height);
            long wasted = (long)w * h - effective;
            if (effective > bestEffective || (effective == bestEffective && wasted < bestWasted))
            {
                (best, bestEffective, bestWasted) = ((h, w), effective, wasted);
            }
        }
        return best;
    }

    /// <summary>
    /// transformers' get_patch_output_size: the side with the smaller scale becomes the target's, the other
    /// <c>min(ceil(side * scale), target)</c> in float64 (so 20 x 1.12 = 22.400000000000002 gives 23).
    /// </summary>
    public static (int Height, int Width) FittedSize(int height, int width, (int Height, int Width) target)
    {
        double scaleW = (double)target.Width / width, scaleH = (double)target.Height / height;
        return scaleW < scaleH
            ? (Math.Min((int)Math.Ceiling(height * scaleW), target.Height), target.Width)
            : (target.Height, Math.Min((int)Math.Ceiling(width * scaleH), target.Width));
    }

    /// <summary>The uint8 images before rescaling, in the order the tower sees them: the squashed base image, then the grid's tiles row by row.</summary>
    public IReadOnlyList<RgbImage> Geometry(RgbImage image)
    {
        var best = SelectBestResolution(image.Height, image.Width, Pinpoints);
        var (fitHeight, fitWidth) = FittedSize(image.Height, image.Width, best);
        var fitted = Resample.Resize(image, fitWidth, fitHeight, Config.Resample);
        // numpy's constant pad ((top, top + r), (left, left + r)) with zeros: divmod puts the odd pixel after the image.
        var padded = new RgbImage(best.Width, best.Height);
        int top = (best.Height - fitHeight) / 2, left = (best.Width - fitWidth) / 2;
        for (int y = 0; y < fitHeight; y++) fitted.Row(y).CopyTo(padded.Row(top + y)[(3 * left)..]);

        int baseSide = Config.ShortestEdge ?? Math.Min(Config.ResizeHeight, Config.ResizeWidth);
        var images = new List<RgbImage> { Resample.Resize(image, baseSide, baseSide, Config.Resample) };
        int tile = TileSize;
        for (int ty = 0; ty < best.Height; ty += tile)
            for (int tx = 0; tx < best.Width; tx += tile)
            {
                var cut = new RgbImage(tile, tile);
                for (int y = 0; y < tile; y++) padded.Row(ty + y).Slice(3 * tx, 3 * tile).CopyTo(cut.Row(y));
                images.Add(cut);
            }
        return images.Select(_clip.Geometry).ToArray();
    }

    public AnyresPixels Preprocess(RgbImage image)
    {
        var tiles = Geometry(image);
        int plane = 3 * TileSize * TileSize;
        var values = new float[tiles.Count * plane];
        for (int t = 0; t < tiles.Count; t++) _clip.Normalize(tiles[t], values.AsSpan(t * plane, plane));
        return new AnyresPixels(values, tiles.Count, image.Height, image.Width);
    }
}
