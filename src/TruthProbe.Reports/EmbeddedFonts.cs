using ScottPlot;
using SkiaSharp;

namespace TruthProbe.Reports;

/// <summary>
/// DejaVu Sans, shipped inside the assembly (Fonts/, licence beside it). Servers and CI machines often have
/// no fonts at all, and SkiaSharp then draws no text; resolving every font name to this one typeface also
/// makes the same plot come out pixel-identical on every machine.
/// </summary>
internal static class EmbeddedFonts
{
    public const string Family = "DejaVu Sans";

    public static SKTypeface Regular { get; } = Load("DejaVuSans.ttf");
    public static SKTypeface Bold { get; } = Load("DejaVuSans-Bold.ttf");

    private static readonly object RegisterLock = new();
    private static bool _registered;

    /// <summary>Makes ScottPlot resolve every font to the embedded typefaces. Idempotent and thread-safe.</summary>
    public static void Register()
    {
        lock (RegisterLock)
        {
            if (_registered) return;
            Fonts.FontResolvers.Insert(0, new Resolver());
            Fonts.Default = Family;
            Fonts.Sans = Family;
            _registered = true;
        }
    }

    private static SKTypeface Load(string file)
    {
        string name = $"TruthProbe.Reports.Fonts.{file}";
        using Stream stream = typeof(EmbeddedFonts).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"embedded font {name} is missing from the assembly (see TruthProbe.csproj)");
        using var data = SKData.Create(stream);
        return SKTypeface.FromData(data)
            ?? throw new InvalidOperationException($"embedded font {name} could not be read by SkiaSharp");
    }

    /// <summary>Answers every name (Arial, Segoe UI, ...) so that no lookup ever reaches the system's fonts.</summary>
    private sealed class Resolver : IFontResolver
    {
        public SKTypeface CreateTypeface(string fontName, bool bold, bool italic) => bold ? Bold : Regular;

        public SKTypeface CreateTypeface(string fontName, FontWeight weight, FontSlant slant, FontSpacing width) =>
            weight >= FontWeight.SemiBold ? Bold : Regular;
    }
}
