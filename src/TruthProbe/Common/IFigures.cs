namespace TruthProbe.Common;

/// <summary>
/// The figures an output folder includes, drawn by the renderer the caller passes: the PNG renderer lives in
/// the TruthProbe.Reports assembly, so the core library carries no plotting dependency.
/// </summary>
public interface IFigures
{
    /// <summary>values[row, col] with row 0 at the top and a colour bar; min/max fix the colour range (default: the data's).</summary>
    void Heatmap(string path, double[,] values, string title, string xLabel, string yLabel,
        string? caption = null, string[]? rowLabels = null, string[]? colLabels = null,
        bool annotateCells = false, double? min = null, double? max = null);

    /// <summary>One bar per label, its value printed above it.</summary>
    void Bars(string path, string title, string xLabel, string yLabel,
        IReadOnlyList<string> labels, IReadOnlyList<double> values, string? caption = null);

    /// <summary>One line per series; integerX for counts (layers, steps), yFromZero for magnitudes.</summary>
    void Lines(string path, string title, string xLabel, string yLabel,
        IReadOnlyList<(string name, double[] x, double[] y)> series, string? caption = null,
        bool integerX = false, bool yFromZero = false);
}
