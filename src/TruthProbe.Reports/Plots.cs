using System.Globalization;
using ScottPlot;
using TruthProbe.Common;

namespace TruthProbe.Reports;

/// <summary>
/// The project's PNG figures: heat maps (Truth-Score maps, correlation matrices), bar charts and line
/// charts. Each call renders in memory with the embedded font and writes the file atomically; the same
/// input gives the same bytes.
/// </summary>
public sealed class Plots : IFigures
{
    /// <summary>The PNG renderer that output folders are given.</summary>
    public static readonly Plots Writer = new();

    private Plots() { }

    private const int Width = 900;
    private const int Height = 720;
    private const int MaxAutoTicks = 16;

    static Plots() => EmbeddedFonts.Register();

    /// <summary>
    /// values[row, col] drawn with row 0 at the top and a colour bar; for Truth-Score maps rows are layers
    /// (y) and columns heads (x). NaN cells are grey. min/max fix the colour range (default: the data's).
    /// </summary>
    public void Heatmap(string path, double[,] values, string title, string xLabel, string yLabel,
        string? caption = null, string[]? rowLabels = null, string[]? colLabels = null,
        bool annotateCells = false, double? min = null, double? max = null)
    {
        using var plot = BuildHeatmap(values, title, xLabel, yLabel, caption, rowLabels, colLabels, annotateCells, min, max);
        AtomicFile.WriteAllBytes(path, Png(plot));
    }

    internal static Plot BuildHeatmap(double[,] values, string title, string xLabel, string yLabel,
        string? caption = null, string[]? rowLabels = null, string[]? colLabels = null,
        bool annotateCells = false, double? min = null, double? max = null)
    {
        int rows = values.GetLength(0), cols = values.GetLength(1);
        if (rows == 0 || cols == 0) throw new ArgumentException("heat map needs at least one cell", nameof(values));
        if (rowLabels != null && rowLabels.Length != rows) throw new ArgumentException($"{rowLabels.Length} row labels for {rows} rows", nameof(rowLabels));
        if (colLabels != null && colLabels.Length != cols) throw new ArgumentException($"{colLabels.Length} column labels for {cols} columns", nameof(colLabels));

        var plot = NewPlot(title, xLabel, yLabel, caption);
        var (lo, hi) = ColourRange(values, min, max);
        var colormap = new ScottPlot.Colormaps.Viridis();
        var heatmap = plot.Add.Heatmap(values);
        heatmap.ManualRange = new ScottPlot.Range(lo, hi); // first: the colormap setter reads the range
        heatmap.Colormap = colormap;
        heatmap.NaNCellColor = Colors.LightGray;
        // ScottPlot centres cell (r, c) on x = c, y = rows - 1 - r: row 0 at the top, like an image.
        // (Setting its Rectangle or Extent instead draws nothing for a single row or column.)
        plot.Add.ColorBar(heatmap);
        plot.HideGrid();
        plot.Axes.SetLimits(-0.5, cols - 0.5, -0.5, rows - 0.5);

        var (xTicks, xNames) = Ticks(cols, colLabels, position: c => c);
        plot.Axes.Bottom.SetTicks(xTicks, xNames);
        RotateIfCrowded(plot.Axes.Bottom, xNames, Width * 0.7);
        var (yTicks, yNames) = Ticks(rows, rowLabels, position: r => rows - 1 - r);
        plot.Axes.Left.SetTicks(yTicks, yNames);

        if (annotateCells)
        {
            // Sized so that "-0.00" fits a cell of the plot area (roughly 70% of the figure).
            float fontSize = (float)Math.Clamp(Math.Min(Width * 0.7 / cols, Height * 0.7 / rows) / 3.5, 6, 16);
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                {
                    double v = values[r, c];
                    var text = plot.Add.Text(double.IsNaN(v) ? "NaN" : v.ToString("0.00", CultureInfo.InvariantCulture), c, rows - 1 - r);
                    text.Alignment = Alignment.MiddleCenter;
                    text.LabelStyle.FontSize = fontSize;
                    double fraction = hi > lo ? (v - lo) / (hi - lo) : 0.5;
                    text.LabelStyle.ForeColor = double.IsNaN(v) || IsLight(colormap.GetColor(Math.Clamp(fraction, 0, 1)))
                        ? Colors.Black : Colors.White;
                }
        }
        return plot;
    }

    /// <summary>One bar per label, its value printed above it (NaN: an empty bar marked "n/a").</summary>
    public void Bars(string path, string title, string xLabel, string yLabel,
        IReadOnlyList<string> labels, IReadOnlyList<double> values, string? caption = null)
    {
        using var plot = BuildBars(title, xLabel, yLabel, labels, values, caption);
        AtomicFile.WriteAllBytes(path, Png(plot));
    }

    internal static Plot BuildBars(string title, string xLabel, string yLabel,
        IReadOnlyList<string> labels, IReadOnlyList<double> values, string? caption = null)
    {
        if (labels.Count != values.Count) throw new ArgumentException($"{labels.Count} labels for {values.Count} values", nameof(labels));
        if (labels.Count == 0) throw new ArgumentException("bar chart needs at least one bar", nameof(values));
        var plot = NewPlot(title, xLabel, yLabel, caption);
        var bars = new List<Bar>(values.Count);
        for (int i = 0; i < values.Count; i++)
        {
            double v = values[i];
            bars.Add(new Bar
            {
                Position = i,
                Value = double.IsNaN(v) ? 0 : v,
                Label = double.IsNaN(v) ? "n/a" : v.ToString("G4", CultureInfo.InvariantCulture),
                FillColor = plot.Add.Palette.GetColor(0),
            });
        }
        var barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = 13;
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, labels.Count).Select(i => (double)i).ToArray(), labels.ToArray());
        RotateIfCrowded(plot.Axes.Bottom, labels, Width * 0.8);
        // Bars stand on zero, so zero is always in view; room is left for the value printed past each bar end.
        var finite = values.Where(double.IsFinite).DefaultIfEmpty(0).ToArray();
        double lo = Math.Min(0, finite.Min()), hi = Math.Max(0, finite.Max());
        double pad = hi > lo ? (hi - lo) * 0.08 : 1;
        plot.Axes.SetLimitsY(lo < 0 ? lo - pad : 0, hi > 0 || lo == 0 ? hi + pad : 0);
        return plot;
    }

    /// <summary>One line per series (x and y of equal length); a legend names them when there are several.</summary>
    /// <param name="integerX">x is a count (layers, steps): ticks only at whole numbers.</param>
    /// <param name="yFromZero">y is a magnitude: the axis starts at 0 so that small values look small.</param>
    public void Lines(string path, string title, string xLabel, string yLabel,
        IReadOnlyList<(string name, double[] x, double[] y)> series, string? caption = null,
        bool integerX = false, bool yFromZero = false)
    {
        using var plot = BuildLines(title, xLabel, yLabel, series, caption, integerX, yFromZero);
        AtomicFile.WriteAllBytes(path, Png(plot));
    }

    internal static Plot BuildLines(string title, string xLabel, string yLabel,
        IReadOnlyList<(string name, double[] x, double[] y)> series, string? caption = null,
        bool integerX = false, bool yFromZero = false)
    {
        if (series.Count == 0) throw new ArgumentException("line chart needs at least one series", nameof(series));
        foreach (var (name, x, y) in series)
            if (x.Length != y.Length) throw new ArgumentException($"series '{name}': {x.Length} x values but {y.Length} y values", nameof(series));
        var plot = NewPlot(title, xLabel, yLabel, caption);
        for (int i = 0; i < series.Count; i++)
        {
            var (name, x, y) = series[i];
            var line = plot.Add.ScatterLine(x, y, plot.Add.Palette.GetColor(i));
            line.LineWidth = 2;
            line.MarkerSize = x.Length <= 64 ? 5 : 0;
            line.LegendText = name;
        }
        if (series.Count > 1) plot.ShowLegend(Edge.Right); // beside the axes, never over a line
        if (integerX) plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        if (yFromZero)
        {
            double top = series.SelectMany(s => s.y).Where(double.IsFinite).DefaultIfEmpty(1).Max();
            plot.Axes.SetLimitsY(0, top > 0 ? top * 1.08 : 1);
        }
        return plot;
    }

    /// <summary>Renders at the project's figure size.</summary>
    internal static byte[] Png(Plot plot) => plot.GetImageBytes(Width, Height, ImageFormat.Png);

    private static Plot NewPlot(string title, string xLabel, string yLabel, string? caption)
    {
        var plot = new Plot();
        plot.Title(title, size: 18);
        plot.XLabel(xLabel, size: 15);
        plot.YLabel(yLabel, size: 15);
        if (!string.IsNullOrWhiteSpace(caption))
        {
            plot.Axes.AddPanel(new CaptionPanel(Wrap(caption, 110)));
        }
        return plot;
    }

    private static (double lo, double hi) ColourRange(double[,] values, double? min, double? max)
    {
        double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
        foreach (double v in values)
            if (!double.IsNaN(v)) { lo = Math.Min(lo, v); hi = Math.Max(hi, v); }
        if (double.IsPositiveInfinity(lo)) throw new ArgumentException("heat map has no value that is not NaN", nameof(values));
        (lo, hi) = (min ?? lo, max ?? hi);
        // A constant map gets a unit-wide range centred on its value, so the colour bar still has ticks.
        return hi > lo ? (lo, hi) : (lo - 0.5, lo + 0.5);
    }

    /// <summary>Every label when names are given, else whole-number indices thinned to at most 16 ticks.</summary>
    private static (double[] positions, string[] names) Ticks(int count, string[]? names, Func<int, double> position)
    {
        int step = names != null ? 1 : (count + MaxAutoTicks - 1) / MaxAutoTicks;
        var indices = Enumerable.Range(0, count).Where(i => i % step == 0).ToArray();
        return (indices.Select(position).ToArray(),
                indices.Select(i => names?[i] ?? i.ToString(CultureInfo.InvariantCulture)).ToArray());
    }

    /// <summary>
    /// Slants tick labels that would overlap side by side. ScottPlot does not measure rotated labels, so
    /// the axis is given room for the longest one.
    /// </summary>
    private static void RotateIfCrowded(IXAxis axis, IReadOnlyList<string> labels, double axisPixels)
    {
        const double charPixels = 7.5; // DejaVu Sans at ScottPlot's default tick size
        int longest = labels.Max(l => l.Length);
        if (labels.Count * (longest + 2) * charPixels <= axisPixels) return;
        axis.TickLabelStyle.Rotation = -45;
        axis.TickLabelStyle.Alignment = Alignment.UpperRight;
        axis.MinimumSize = (float)(longest * charPixels * 0.71 + 50);
    }

    private static bool IsLight(Color c) => 0.299 * c.Red + 0.587 * c.Green + 0.114 * c.Blue > 140;

    private static string Wrap(string text, int width)
    {
        var lines = new List<string>();
        foreach (string paragraph in text.Split('\n'))
        {
            var line = new System.Text.StringBuilder();
            foreach (string word in paragraph.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (line.Length > 0 && line.Length + 1 + word.Length > width) { lines.Add(line.ToString()); line.Clear(); }
                if (line.Length > 0) line.Append(' ');
                line.Append(word);
            }
            lines.Add(line.ToString());
        }
        return string.Join('\n', lines);
    }

    /// <summary>Plain text under the x-axis label: what the figure shows and where its numbers come from.</summary>
    private sealed class CaptionPanel : ScottPlot.Panels.PanelBase
    {
        private const float Padding = 8;
        private readonly LabelStyle _label;

        public CaptionPanel(string text)
        {
            Edge = Edge.Bottom;
            _label = new LabelStyle { Text = text, FontSize = 12, Bold = false, Alignment = Alignment.UpperCenter };
        }

        public override float Measure(Paint paint) => IsVisible ? _label.Measure(paint).Height + 2 * Padding : 0;

        public override void Render(RenderPack rp, float size, float offset)
        {
            if (!IsVisible) return;
            PixelRect rect = GetPanelRect(rp.DataRect, size, offset, rp.Paint);
            _label.Render(rp.Canvas, new Pixel(rect.HorizontalCenter, rect.Top + Padding), rp.Paint, true);
        }
    }
}
