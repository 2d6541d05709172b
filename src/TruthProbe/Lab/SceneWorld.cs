using TruthProbe.Common;
using TruthProbe.Imaging;

namespace TruthProbe.Lab;

/// <summary>One object in a scene: its class and colour (indices into <see cref="SceneWorld.Classes"/> and
/// <see cref="SyntheticWorld.Colours"/>) and its cell of the 4 x 4 grid.</summary>
public readonly record struct SceneObject(int Class, int Colour, int Cell)
{
    public int Row => Cell / SceneWorld.Grid;
    public int Column => Cell % SceneWorld.Grid;
}

/// <summary>A synthetic image: a theme and 2-4 objects, each in its own cell.</summary>
public sealed record Scene(int Id, int Theme, IReadOnlyList<SceneObject> Objects)
{
    public string ImageName => $"scene_{Id:D5}.png";
    public bool Has(int cls) => Objects.Any(o => o.Class == cls);
}

/// <summary>
/// The lab's visual world, tied to its text world: the objects people own in <see cref="SyntheticWorld"/> (16
/// classes) drawn in its 12 colours as flat glyphs on a 4 x 4 grid. Scenes follow themes (home, music, outdoor,
/// tech) with unequal frequencies, so classes differ in popularity and co-occur within a theme: the statistics POPE's
/// "popular" and "adversarial" negatives are built from. Everything is fixed by the seed.
/// </summary>
public static class SceneWorld
{
    /// <summary>Singular class names, in the order of <see cref="SyntheticWorld.Objects"/> (whose plurals they are).</summary>
    public static readonly string[] Classes =
        ["lamp", "bicycle", "guitar", "kettle", "camera", "violin", "tent", "clock", "kayak", "piano", "drone", "telescope", "scooter", "radio", "laptop", "sofa"];

    public static readonly string[] ThemeNames = ["home", "music", "outdoor", "tech"];
    /// <summary>The classes of each theme, by index into <see cref="Classes"/>.</summary>
    public static readonly int[][] Themes = [[0, 3, 7, 15], [2, 5, 9, 13], [1, 6, 8, 12], [4, 10, 11, 14]];
    /// <summary>How often each theme is drawn: unequal on purpose, so "popular" means something.</summary>
    public static readonly double[] ThemeWeights = [0.4, 0.3, 0.2, 0.1];
    /// <summary>Share of a scene's objects drawn from its theme; the rest from any class.</summary>
    public const double InTheme = 0.8;

    public const int Grid = 4, GlyphSize = 5;

    /// <summary>The RGB of each of <see cref="SyntheticWorld.Colours"/>, and a background none of them is near.</summary>
    public static readonly (byte R, byte G, byte B)[] ColourRgb =
    [
        (220, 30, 30), (40, 70, 220), (40, 170, 60), (235, 210, 40), (140, 60, 180), (245, 140, 30),
        (20, 20, 20), (250, 250, 250), (245, 150, 190), (130, 80, 40), (128, 128, 128), (192, 192, 208),
    ];
    public static readonly (byte R, byte G, byte B) Background = (70, 140, 130);

    /// <summary>
    /// Each class's 5 x 5 glyph: drawn from a fixed SplitMix64 stream, keeping a candidate only when it sets 9-16
    /// cells and differs from every earlier glyph in at least 7 cells, so that no two classes look alike.
    /// </summary>
    public static readonly bool[][] Glyphs = MakeGlyphs();

    private static bool[][] MakeGlyphs()
    {
        var rng = new SeededRandom(0x5CE4E5);
        var glyphs = new List<bool[]>();
        while (glyphs.Count < Classes.Length)
        {
            ulong bits = rng.NextUInt64();
            var g = Enumerable.Range(0, GlyphSize * GlyphSize).Select(i => ((bits >> i) & 1) == 1).ToArray();
            int set = g.Count(b => b);
            if (set is >= 9 and <= 16 && glyphs.All(o => o.Zip(g).Count(p => p.First != p.Second) >= 7)) glyphs.Add(g);
        }
        return glyphs.ToArray();
    }

    /// <summary>Where a cell is, in the words captions and questions use ("top left", ...).</summary>
    public static string Place(int cell) => (cell / Grid < Grid / 2 ? "top" : "bottom") + " " + (cell % Grid < Grid / 2 ? "left" : "right");

    public static Scene Sample(int id, ref SeededRandom rng)
    {
        double u = rng.NextDouble(), sum = 0;
        int theme = ThemeWeights.Length - 1;
        for (int t = 0; t < ThemeWeights.Length; t++)
            if (u < (sum += ThemeWeights[t])) { theme = t; break; }
        int count = 2 + (int)(rng.NextDouble() * 3);
        var classes = new List<int>();
        var colours = new List<int>();
        var cells = new List<int>();
        while (classes.Count < count)
        {
            int cls = rng.NextDouble() < InTheme ? Themes[theme][(int)(rng.NextDouble() * Themes[theme].Length)] : (int)(rng.NextDouble() * Classes.Length);
            if (!classes.Contains(cls)) classes.Add(cls);
        }
        // Distinct colours and cells, so that "the red one" and "the top left" each name one object.
        while (colours.Count < count) { int c = (int)(rng.NextDouble() * ColourRgb.Length); if (!colours.Contains(c)) colours.Add(c); }
        while (cells.Count < count) { int c = (int)(rng.NextDouble() * Grid * Grid); if (!cells.Contains(c)) cells.Add(c); }
        return new Scene(id, theme, classes.Select((cls, i) => new SceneObject(cls, colours[i], cells[i])).ToList());
    }

    /// <summary>
    /// The scene as pixels, <paramref name="size"/> square (at least 20): each object's glyph scaled to fill most of
    /// its cell, one pixel of margin. Pure function of the scene and size.
    /// </summary>
    public static RgbImage Render(Scene scene, int size)
    {
        if (size < 4 * Grid + Grid || size > 4096) throw new UserError($"scene size {size} must be from {4 * Grid + Grid} to 4096 pixels") { Field = "size" };
        var image = new RgbImage(size, size);
        var px = image.Pixels;
        for (int i = 0; i < px.Length; i += 3) (px[i], px[i + 1], px[i + 2]) = Background;
        int cell = size / Grid, scale = Math.Max(1, (cell - 2) / GlyphSize), offset = (cell - scale * GlyphSize) / 2;
        foreach (var o in scene.Objects)
        {
            var (r, g, b) = ColourRgb[o.Colour];
            var glyph = Glyphs[o.Class];
            int x0 = o.Column * cell + offset, y0 = o.Row * cell + offset;
            for (int gy = 0; gy < GlyphSize; gy++)
                for (int gx = 0; gx < GlyphSize; gx++)
                {
                    if (!glyph[gy * GlyphSize + gx]) continue;
                    for (int y = y0 + gy * scale; y < y0 + (gy + 1) * scale; y++)
                        for (int x = x0 + gx * scale; x < x0 + (gx + 1) * scale; x++)
                        {
                            int at = 3 * (y * size + x);
                            (px[at], px[at + 1], px[at + 2]) = (r, g, b);
                        }
                }
        }
        return image;
    }

    private static string Article(string word) => "aeiou".Contains(word[0]) ? "an" : "a";

    /// <summary>The caption naming every object with its colour and place, in reading order of the cells.</summary>
    public static string Caption(Scene scene)
    {
        var parts = scene.Objects.OrderBy(o => o.Cell).Select(o => $"{Article(SyntheticWorld.Colours[o.Colour])} {SyntheticWorld.Colours[o.Colour]} {Classes[o.Class]} at the {Place(o.Cell)}").ToList();
        return "There is " + (parts.Count == 1 ? parts[0] : string.Join(", ", parts.Take(parts.Count - 1)) + " and " + parts[^1]) + ".";
    }
}
