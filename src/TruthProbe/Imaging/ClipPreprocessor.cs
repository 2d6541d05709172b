namespace TruthProbe.Imaging;

/// <summary>How a non-square image becomes the square the vision tower takes.</summary>
public enum AspectMode
{
    /// <summary>CLIPImageProcessor (llava-hf): short side to size, then centre crop.</summary>
    Crop,
    /// <summary>LLaVA's <c>image_aspect_ratio = "pad"</c>: expand2square with the mean colour first, then as Crop.</summary>
    Pad,
}

/// <summary>
/// transformers' CLIPImageProcessor.preprocess on one RGB image, with LLaVA's optional expand2square before it:
/// the geometry in uint8 exactly as PIL and numpy do it (<see cref="Geometry"/>), then rescale and normalise to
/// channels-first float32 (<see cref="Normalize"/>).
/// </summary>
public sealed class ClipPreprocessor(ClipConfig config, AspectMode aspect = AspectMode.Crop)
{
    public ClipConfig Config { get; } = config;
    public AspectMode Aspect { get; } = aspect;

    public float[] Preprocess(RgbImage image)
    {
        var geometry = Geometry(image);
        var chw = new float[3 * geometry.Width * geometry.Height];
        Normalize(geometry, chw);
        return chw;
    }

    /// <summary>Pad (if asked), resize, centre crop: the uint8 image just before rescaling.</summary>
    public RgbImage Geometry(RgbImage image)
    {
        if (Aspect == AspectMode.Pad) image = ExpandToSquare(image, MeanColour());
        if (Config.DoResize)
        {
            var (w, h) = ResizeSize(image.Width, image.Height);
            image = Resample.Resize(image, w, h, Config.Resample);
        }
        if (Config.DoCenterCrop) image = CenterCrop(image, Config.CropWidth, Config.CropHeight);
        return image;
    }

    /// <summary>
    /// transformers' get_resize_output_image_size with default_to_square=False: the short side becomes the size,
    /// the long side <c>int(size * long / short)</c> (a float division, truncated).
    /// </summary>
    public (int Width, int Height) ResizeSize(int width, int height)
    {
        if (Config.ShortestEdge is not int size) return (Config.ResizeWidth, Config.ResizeHeight);
        int shortSide = Math.Min(width, height), longSide = Math.Max(width, height);
        int newLong = (int)((double)((long)size * longSide) / shortSide);
        return width <= height ? (size, newLong) : (newLong, size);
    }

    /// <summary>LLaVA's background: <c>tuple(int(x * 255) for x in image_mean)</c>, (122, 116, 104) for CLIP.</summary>
    public (byte R, byte G, byte B) MeanColour() =>
        ((byte)(int)(Config.Mean[0] * 255), (byte)(int)(Config.Mean[1] * 255), (byte)(int)(Config.Mean[2] * 255));

    /// <summary>LLaVA's expand2square: the image pasted at <c>((s - w) // 2, (s - h) // 2)</c> on an s x s square of <paramref name="background"/>.</summary>
    public static RgbImage ExpandToSquare(RgbImage image, (byte R, byte G, byte B) background)
    {
        int side = Math.Max(image.Width, image.Height);
        if (image.Width == image.Height) return image;
        var square = new RgbImage(side, side);
        var pixels = square.Pixels.AsSpan();
        for (int i = 0; i < pixels.Length; i += 3)
        {
            pixels[i] = background.R;
            pixels[i + 1] = background.G;
            pixels[i + 2] = background.B;
        }
        int left = (side - image.Width) / 2, top = (side - image.Height) / 2;
        for (int y = 0; y < image.Height; y++) image.Row(y).CopyTo(square.Row(top + y)[(3 * left)..]);
        return square;
    }

    /// <summary>
    /// transformers' center_crop: the window at <c>((W - w) // 2, (H - h) // 2)</c> (floor division); where the
    /// image is smaller than the crop it is first centred on zeros at <c>ceil((new - old) / 2)</c>.
    /// </summary>
    public static RgbImage CenterCrop(RgbImage image, int width, int height)
    {
        if (image.Width == width && image.Height == height) return image;
        int top = FloorHalf(image.Height - height), left = FloorHalf(image.Width - width);
        // Inside the image: a plain window. Otherwise numpy's pad-then-slice, written as one copy with offsets.
        int padTop = Math.Max(0, (height - image.Height + 1) / 2), padLeft = Math.Max(0, (width - image.Width + 1) / 2);
        int paddedHeight = Math.Max(height, image.Height), paddedWidth = Math.Max(width, image.Width);
        int y0 = Math.Max(0, top + padTop), y1 = Math.Min(paddedHeight, top + padTop + height);
        int x0 = Math.Max(0, left + padLeft), x1 = Math.Min(paddedWidth, left + padLeft + width);
        var output = new RgbImage(x1 - x0, y1 - y0);
        for (int y = y0; y < y1; y++)
        {
            int sy = y - padTop;
            if (sy < 0 || sy >= image.Height) continue;
            var dest = output.Row(y - y0);
            for (int x = x0; x < x1; x++)
            {
                int sx = x - padLeft;
                if (sx >= 0 && sx < image.Width) image.Row(sy).Slice(3 * sx, 3).CopyTo(dest.Slice(3 * (x - x0), 3));
            }
        }
        return output;
    }

    private static int FloorHalf(int v) => v >= 0 ? v / 2 : -((-v + 1) / 2);

    /// <summary>
    /// Rescale then normalise, channels first: <c>float32(float64(x) * rescale_factor)</c> as transformers'
    /// rescale, then <c>(x - mean) / std</c> in float32 with mean and std rounded to float32, as its normalize
    /// does with numpy arrays of the image's dtype.
    /// </summary>
    public void Normalize(RgbImage image, Span<float> chw)
    {
        int plane = image.Width * image.Height;
        if (chw.Length != 3 * plane) throw new ArgumentException($"needs {3 * plane} floats, got {chw.Length}", nameof(chw));
        Span<float> table = stackalloc float[3 * 256];
        for (int c = 0; c < 3; c++)
        {
            float mean = (float)Config.Mean[c], std = (float)Config.Std[c];
            for (int v = 0; v < 256; v++)
            {
                float x = Config.DoRescale ? (float)(v * Config.RescaleFactor) : v;
                table[256 * c + v] = Config.DoNormalize ? (x - mean) / std : x;
            }
        }
        var pixels = image.Pixels;
        for (int i = 0; i < plane; i++)
        {
            chw[i] = table[pixels[3 * i]];
            chw[plane + i] = table[256 + pixels[3 * i + 1]];
            chw[2 * plane + i] = table[512 + pixels[3 * i + 2]];
        }
    }
}
