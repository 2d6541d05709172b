using ScottPlot;
using SkiaSharp;
using TruthProbe.Reports;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Reports;

public class PlotsTests
{
    private static readonly IReadOnlyList<(string, double[], double[])> TwoSeries =
    [
        ("Q", [0, 1, 2, 3], [0.05, 0.03, 0.03, 0.02]),
        ("K", [0, 1, 2, 3], [0.04, 0.035, 0.02, 0.03]),
    ];

    /// <summary>Pixels inside rect whose luminance is far below the white background: glyph ink.</summary>
    private static int DarkPixels(byte[] png, PixelRect rect)
    {
        using var bitmap = SKBitmap.Decode(png);
        int count = 0;
        for (int y = Math.Max(0, (int)rect.Top); y < Math.Min(bitmap.Height, (int)Math.Ceiling(rect.Bottom)); y++)
            for (int x = Math.Max(0, (int)rect.Left); x < Math.Min(bitmap.Width, (int)Math.Ceiling(rect.Right)); x++)
            {
                SKColor c = bitmap.GetPixel(x, y);
                if (0.299 * c.Red + 0.587 * c.Green + 0.114 * c.Blue < 100) count++;
            }
        return count;
    }

    [Fact]
    public void Title_DrawsGlyphsInsideItsOwnBox()
    {
        // Without a usable font SkiaSharp lays the title out but draws nothing: the box stays white.
        using var plot = Plots.BuildLines("Truth Scores per head", "layer", "drift", TwoSeries);
        byte[] png = Plots.Png(plot);
        PixelRect box = plot.Axes.Title.Label.LastRenderPixelRect;
        Assert.True(box.Width > 100 && box.Height > 10, $"title box {box}");
        Assert.True(DarkPixels(png, box) > 200, $"title box {box} has {DarkPixels(png, box)} dark pixels");
    }

    [Fact]
    public void Caption_DrawsTextBelowTheAxisLabel_AndNothingThereWithoutOne()
    {
        using var with = Plots.BuildBars("r", "model", "r", ["a", "b"], [0.5, 0.25], caption: "n = 1024 heads; chance level marked");
        using var without = Plots.BuildBars("r", "model", "r", ["a", "b"], [0.5, 0.25]);
        byte[] withPng = Plots.Png(with), withoutPng = Plots.Png(without);
        PixelRect BelowXLabel(Plot p, byte[] png)
        {
            using var bitmap = SKBitmap.Decode(png);
            return new PixelRect(0, bitmap.Width, bitmap.Height, p.Axes.Bottom.Label.LastRenderPixelRect.Bottom + 1);
        }
        Assert.True(DarkPixels(withPng, BelowXLabel(with, withPng)) > 100);
        Assert.Equal(0, DarkPixels(withoutPng, BelowXLabel(without, withoutPng)));
    }

    [Fact]
    public void EmbeddedFont_AnswersEveryFontName_SoSystemFontsAreNeverUsed()
    {
        using var plot = Plots.BuildLines("t", "x", "y", TwoSeries); // registers the font
        Assert.Same(EmbeddedFonts.Regular, Fonts.GetTypeface("Arial", bold: false, italic: false));
        Assert.Same(EmbeddedFonts.Bold, Fonts.GetTypeface("Segoe UI", bold: true, italic: false));
        Assert.Equal("DejaVu Sans", EmbeddedFonts.Regular.FamilyName);
        Assert.True(EmbeddedFonts.Regular.GlyphCount > 3000, "DejaVu Sans has thousands of glyphs");
    }

    [Fact]
    public void Heatmap_RowZeroIsDrawnAtTheTop_WithTheLowEndOfTheColourMap()
    {
        double[,] values = { { 0.0 }, { 1.0 } };
        using var plot = Plots.BuildHeatmap(values, "t", "head", "layer", min: 0, max: 1);
        using var bitmap = SKBitmap.Decode(Plots.Png(plot));
        PixelRect data = plot.LastRender.DataRect;
        SKColor top = bitmap.GetPixel((int)data.HorizontalCenter, (int)(data.Top + data.Height * 0.25));
        SKColor bottom = bitmap.GetPixel((int)data.HorizontalCenter, (int)(data.Top + data.Height * 0.75));
        var viridis = new ScottPlot.Colormaps.Viridis();
        AssertClose(viridis.GetColor(0), top);
        AssertClose(viridis.GetColor(1), bottom);
    }

    private static void AssertClose(ScottPlot.Color expected, SKColor actual)
    {
        int diff = Math.Abs(expected.Red - actual.Red) + Math.Abs(expected.Green - actual.Green) + Math.Abs(expected.Blue - actual.Blue);
        Assert.True(diff < 12, $"expected {expected}, got {actual}");
    }

    [Fact]
    public void SameInput_GivesIdenticalBytes_AndChangedInputDifferentBytes()
    {
        double[,] values = { { 0.5, 0.7 }, { 0.9, double.NaN } };
        string[] names = ["vicuna", "llava1.5"];
        byte[] Render(double[,] v)
        {
            using var plot = Plots.BuildHeatmap(v, "r", "", "", "caption", names, names, annotateCells: true);
            return Plots.Png(plot);
        }
        byte[] first = Render(values), second = Render(values);
        Assert.Equal(first, second);
        values[0, 1] = 0.71;
        Assert.NotEqual(first, Render(values));
    }

    [Fact]
    public void PublicCalls_WritePngFiles()
    {
        using var tmp = new TempDir();
        Plots.Writer.Heatmap(tmp.File("map.png"), new double[,] { { 0.5, 0.6 }, { 0.7, 0.8 } }, "map", "head", "layer", caption: "c");
        Plots.Writer.Bars(tmp.File("bars.png"), "bars", "model", "r", ["a", "b", "c"], [0.6, -0.2, double.NaN]);
        Plots.Writer.Lines(tmp.File("lines.png"), "lines", "layer", "drift", TwoSeries);
        byte[] pngMagic = [0x89, (byte)'P', (byte)'N', (byte)'G'];
        foreach (string name in new[] { "map.png", "bars.png", "lines.png" })
            Assert.Equal(pngMagic, File.ReadAllBytes(tmp.File(name))[..4]);
        Assert.Equal(3, Directory.GetFiles(tmp.Path).Length); // no temporaries left behind
    }

    [Fact]
    public void Bars_AllNegative_StillShowZero_WhereTheBarsStart()
    {
        using var plot = Plots.BuildBars("r", "model", "r", ["a", "b"], [-0.5, -0.2]);
        Plots.Png(plot);
        var limits = plot.Axes.GetLimits();
        Assert.True(limits.Top >= 0 && limits.Bottom < -0.5, $"y range {limits.Bottom}..{limits.Top}");
    }

    [Fact]
    public void Heatmap_ConstantMap_GetsAColourRangeAroundItsValue()
    {
        // A zero-width colour range would leave the colour bar without ticks and every cell at one end.
        using var plot = Plots.BuildHeatmap(new double[,] { { 0.5, 0.5 }, { 0.5, 0.5 } }, "t", "head", "layer");
        using var bitmap = SKBitmap.Decode(Plots.Png(plot));
        PixelRect data = plot.LastRender.DataRect;
        AssertClose(new ScottPlot.Colormaps.Viridis().GetColor(0.5), bitmap.GetPixel((int)(data.Left + 5), (int)(data.Top + 5)));
    }

    [Fact]
    public void MismatchedLabelsOrSeries_AreRejected()
    {
        Assert.Throws<ArgumentException>(() => Plots.BuildHeatmap(new double[2, 2], "t", "x", "y", rowLabels: ["only one"]));
        Assert.Throws<ArgumentException>(() => Plots.BuildBars("t", "x", "y", ["a"], [1.0, 2.0]));
        Assert.Throws<ArgumentException>(() => Plots.BuildLines("t", "x", "y", [("s", new double[3], new double[2])]));
        Assert.Throws<ArgumentException>(() => Plots.BuildHeatmap(new double[,] { { double.NaN } }, "t", "x", "y"));
    }
}
