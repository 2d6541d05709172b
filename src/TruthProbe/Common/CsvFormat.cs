using System.Globalization;

namespace TruthProbe.Common;

/// <summary>How every CSV we write spells a number: round-trip precision, invariant culture, and "nan" as numpy writes it
/// (pandas, numpy and our own readers all read it back as NaN).</summary>
public static class CsvFormat
{
    public static string Number(double v) => double.IsNaN(v) ? "nan" : v.ToString("R", CultureInfo.InvariantCulture);
}
