using System.Globalization;

namespace TruthProbe.Statistics;

/// <summary>p-values for people: never "0.000", which reads as impossible rather than as below the resolution.</summary>
public static class PValueText
{
    /// <summary>"p < 1e-4" below 1e-4, two significant digits ("p = 0.0023") otherwise, "p = nan" when undefined.</summary>
    public static string Format(double p)
    {
        if (double.IsNaN(p)) return "p = nan";
        if (p < 1e-4) return "p < 1e-4";
        return "p = " + p.ToString("G2", CultureInfo.InvariantCulture);
    }
}
