using System.Globalization;
using TruthProbe.Probing;
using TruthProbe.Reports;

namespace TruthProbe.Demo;

/// <summary>
/// The family's Truth-Score maps drawn on one colour range, to be shown side by side: each model's own
/// heatmap.png spans that map's range, so equal colours in two of them mean different scores.
/// </summary>
public static class FamilyMaps
{
    public const string Folder = "maps";

    public static string PathOf(string name) => $"{Folder}/{name}.png";

    /// <summary>Writes <see cref="PathOf"/> for every model, coloured from the lowest to the highest head score of any map.</summary>
    public static void Write(string outDir, IReadOnlyDictionary<string, ProbeRun> scores)
    {
        var finite = scores.Values.SelectMany(r => r.Scores.Accuracy).Where(double.IsFinite).ToList();
        double min = finite.Count == 0 ? 0 : finite.Min(), max = finite.Count == 0 ? 1 : finite.Max();
        Directory.CreateDirectory(Path.Combine(outDir, Folder));
        foreach (var (name, run) in scores)
        {
            var grid = new double[run.Set.Layers, run.Set.Heads];
            for (int l = 0; l < run.Set.Layers; l++)
                for (int h = 0; h < run.Set.Heads; h++) grid[l, h] = run.Scores.Accuracy[l * run.Set.Heads + h];
            Plots.Writer.Heatmap(Path.Combine(outDir, PathOf(name)), grid, name, "head", "layer",
                caption: string.Create(CultureInfo.InvariantCulture, $"Colours span {min:0.000} to {max:0.000}, the same for every map of the family."),
                min: min, max: max);
        }
    }
}
