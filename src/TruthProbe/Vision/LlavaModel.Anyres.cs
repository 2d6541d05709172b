using TruthProbe.Common;
using TruthProbe.Imaging;
using TruthProbe.Model;

namespace TruthProbe.Vision;

/// <summary>An image ready for a LLaVA model: its normalised pixels ([3, H, W], or LLaVA-NeXT's [tiles, 3, H, W]) and its size before preprocessing.</summary>
public sealed record LlavaImage(float[] Pixels, ImageSize Size);

/// <summary>
/// LLaVA-NeXT's image path: the image as anyres tiles, each through the CLIP tower and projector, packed into one
/// sequence of features whose length depends on the image's size (<see cref="AnyresLayout"/>).
/// </summary>
public sealed partial class LlavaModel
{
    /// <summary>Whether images go through LLaVA-NeXT's anyres tiling (its <c>image_grid_pinpoints</c>).</summary>
    public bool IsAnyres => Config.Architecture == "llava_next";

    /// <summary>Rows spliced for one image: fixed for LLaVA-1.5, a function of the image's size for LLaVA-NeXT.</summary>
    public int ImageTokens(ImageSize? imageSize) => IsAnyres ? Anyres(imageSize).ImageTokens : Config.ImageTokens;

    private AnyresLayout Anyres(ImageSize? imageSize) => AnyresLayout.For(Config,
        imageSize ?? throw new ArgumentException("LLaVA-NeXT's image features depend on the image's size; pass the imageSize that PrepareImage returns", nameof(imageSize)));

    /// <summary>
    /// The image preprocessed as the checkpoint's processor does: CLIPImageProcessor with <paramref name="aspect"/>
    /// (default <see cref="DefaultAspect"/>) for LLaVA-1.5, LlavaNextImageProcessor's anyres tiles for LLaVA-NeXT
    /// (which has no aspect choice: asking for one is a <see cref="UserError"/>).
    /// </summary>
    public LlavaImage PrepareImage(RgbImage image, AspectMode? aspect = null)
    {
        var size = new ImageSize(image.Height, image.Width);
        if (!IsAnyres) return new LlavaImage(ImagePreprocessor(aspect ?? DefaultAspect).Preprocess(image), size);
        if (aspect != null)
            throw new UserError($"{Language.Source}: LLaVA-NeXT tiles the image at its best grid resolution (anyres); an aspect mode (pad or crop) applies to LLaVA-1.5 only");
        var layout = Anyres(size);   // a grid that unpads to nothing fails here, before the resizing
        var pixels = new AnyresPreprocessor(ImagePreprocessor(AspectMode.Crop).Config, Config.GridPinpoints).Preprocess(image);
        if (pixels.Tiles != layout.Tiles) throw new InvalidOperationException($"the processor cut {pixels.Tiles} tiles where the grid has {layout.Tiles}");
        return new LlavaImage(pixels.Values, size);
    }

    private ReadOnlySpan<float> EncodeAnyres(VisionState s, ReadOnlySpan<float> pixels, VisionCapture? capture, AnyresLayout layout)
    {
        var v = Config.Vision;
        int plane = v.Channels * v.ImageSize * v.ImageSize, dModel = Config.Text.DModel, perTile = Config.ImageTokens * dModel;
        if (pixels.Length != layout.Tiles * plane)
            throw new UserError($"pixel values have {pixels.Length} floats but this image's grid takes {layout.Tiles} tiles of [{v.Channels}, {v.ImageSize}, {v.ImageSize}] = {layout.Tiles * plane}; preprocess the image with LLaVA-NeXT's anyres tiling");
        capture?.Begin(layout.Tiles, layout.ImageTokens);
        capture?.Record(HookKind.VisionPixelValues, -1, pixels);
        var tiles = s.TileFeatures.AsSpan(0, layout.Tiles * perTile);
        for (int t = 0; t < layout.Tiles; t++)
            ClipVision.EncodeTile(Config, Vision, Projector, s, pixels.Slice(t * plane, plane), capture, t, tiles.Slice(t * perTile, perTile));
        var image = s.ImageFeatures.AsSpan(0, layout.ImageTokens * dModel);
        layout.Pack(tiles, Projector.ImageNewline, image);
        capture?.Record(HookKind.ImageFeatures, -1, image);
        return image;
    }
}
