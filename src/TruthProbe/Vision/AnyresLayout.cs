using TruthProbe.Imaging;

namespace TruthProbe.Vision;

/// <summary>An image's size before preprocessing (transformers' <c>image_sizes</c>), which LLaVA-NeXT's grid and token count depend on.</summary>
public readonly record struct ImageSize(int Height, int Width);

/// <summary>
/// Where LLaVA-NeXT's features of one image come from: the grid of tiles chosen for its size, and the window of the
/// grid's feature map (<see cref="Side"/> features per tile side) that survives unpadding. Counted in features, not pixels.
/// </summary>
public readonly record struct AnyresLayout(int GridRows, int GridColumns, int Side, int Top, int Left, int Rows, int Columns)
{
    /// <summary>Tiles through the vision tower: the base image and the grid.</summary>
    public int Tiles => GridRows * GridColumns + 1;

    /// <summary>Rows spliced for the image: the base tile's features, then per kept grid row its features and one <c>image_newline</c>.</summary>
    public int ImageTokens => Side * Side + Rows * (Columns + 1);

    /// <summary>
    /// The layout of an image of <paramref name="size"/> under <paramref name="c"/>: the grid of the best pinpoint (tiles of
    /// the tower's image size), then transformers' unpad on the feature map. The kept extent is computed with the
    /// processor's integers (<c>_get_unpadded_features</c>: <c>height * current_width // width</c>), which is what the model's
    /// <c>int(round(height * (current_width / width), 7))</c> evaluates to for any side under 10^7, so the token count and the
    /// rows spliced agree by construction. A grid with no row or column left is a <see cref="Common.UserError"/>.
    /// </summary>
    public static AnyresLayout For(LlavaConfig c, ImageSize size)
    {
        if (size.Height <= 0 || size.Width <= 0) throw new ArgumentOutOfRangeException(nameof(size), $"image size {size.Width}x{size.Height} must be positive");
        int tile = c.Vision.ImageSize, side = c.Vision.PatchesPerSide;
        var (height, width) = AnyresPreprocessor.SelectBestResolution(size.Height, size.Width, c.GridPinpoints);
        // transformers returns None here and fails inside the processor.
        if (height == 0)
            throw new Common.UserError($"a {size.Width}x{size.Height} image is too thin for LLaVA-NeXT: scaled to fit any of image_grid_pinpoints {Pinpoints(c)} it keeps no whole row or column of pixels; crop or pad the image nearer to square");
        int gridRows = height / tile, gridColumns = width / tile;
        int current = gridRows * side, currentWidth = gridColumns * side;
        int top = 0, left = 0, rows = current, columns = currentWidth;
        // Compares width / height with current_width / current_height as float64 does; the cross products are exact.
        if ((long)size.Width * current > (long)currentWidth * size.Height)
        {
            int kept = (int)((long)size.Height * currentWidth / size.Width);
            top = (current - kept) / 2;
            rows = current - 2 * top;
        }
        else
        {
            int kept = (int)((long)size.Width * current / size.Height);
            left = (currentWidth - kept) / 2;
            columns = currentWidth - 2 * left;
        }
        if (rows <= 0 || columns <= 0)
            throw new Common.UserError($"a {size.Width}x{size.Height} image is too {(rows <= 0 ? "wide" : "tall")} for LLaVA-NeXT's grid {gridColumns}x{gridRows} " +
                $"(best of image_grid_pinpoints {Pinpoints(c)}): unpadding leaves no {(rows <= 0 ? "row" : "column")} of features; crop or pad the image nearer to square");
        return new AnyresLayout(gridRows, gridColumns, side, top, left, rows, columns);
    }

    private static string Pinpoints(LlavaConfig c) => string.Join(", ", c.GridPinpoints.Select(p => $"[{p.Height}, {p.Width}]"));

    /// <summary>The most tiles any image can need: the largest pinpoint's grid plus the base.</summary>
    public static int MaxTiles(LlavaConfig c) =>
        c.GridPinpoints.Count == 0 ? 1 : c.GridPinpoints.Max(p => (p.Height / c.Vision.ImageSize) * (p.Width / c.Vision.ImageSize)) + 1;

    /// <summary>The most image tokens any image can need: a pinpoint's whole feature map kept (unpadding only removes).</summary>
    public static int MaxImageTokens(LlavaConfig c)
    {
        if (c.GridPinpoints.Count == 0) return c.ImageTokens;
        int side = c.Vision.PatchesPerSide, tile = c.Vision.ImageSize;
        return side * side + c.GridPinpoints.Max(p => p.Height / tile * side * (p.Width / tile * side + 1));
    }

    /// <summary>
    /// pack_image_features for one image: <paramref name="tiles"/> holds each tile's projected features
    /// ([tiles, side * side, d_model], base first, then the grid row by row, each tile's features row-major); the
    /// output is the base tile's rows, then the grid's feature map (tile rows and feature rows interleaved as the
    /// tiles sit) cut to the unpadded window, row by row, each row followed by <paramref name="newline"/>.
    /// </summary>
    public void Pack(ReadOnlySpan<float> tiles, ReadOnlySpan<float> newline, Span<float> output)
    {
        int d = newline.Length, perTile = Side * Side * d;
        tiles[..perTile].CopyTo(output);
        int o = perTile;
        for (int r = Top; r < Top + Rows; r++)
        {
            for (int col = Left; col < Left + Columns; col++)
            {
                int tile = 1 + r / Side * GridColumns + col / Side;
                int row = r % Side * Side + col % Side;
                tiles.Slice(tile * perTile + row * d, d).CopyTo(output.Slice(o, d));
                o += d;
            }
            newline.CopyTo(output.Slice(o, d));
            o += d;
        }
    }
}
