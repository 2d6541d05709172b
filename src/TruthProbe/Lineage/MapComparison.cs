using TruthProbe.Common;
using TruthProbe.Probing;

namespace TruthProbe.Lineage;

/// <summary>Pearson r over one layer's heads that both maps score.</summary>
public sealed record LayerPearson(int Layer, int N, double Pearson);

/// <summary>Everything the comparison of two maps reports; N is the number of heads compared.</summary>
public sealed record PairStatistics(
    string A, string B, int N, double Pearson, double Spearman, double KendallTauB,
    int TopK, double TopKJaccard, IReadOnlyList<LayerPearson> PerLayer);

/// <summary>
/// Whether a map carries signal at all. A probe that learned nothing scores the chance accuracy on
/// every head, so its map is noise, and any correlation with it says nothing about inheritance.
/// </summary>
public sealed record ChanceCheck(double Mean, double StdDev, int N, double Chance, double Margin, bool AtChance)
{
    /// <summary>
    /// At chance when the mean score is less than <see cref="MinimumLift"/> above chance, or not above it
    /// by three standard errors (sd / sqrt(n)) of the mean over heads.
    /// </summary>
    public const double MinimumLift = 0.05;

    public static string Rule => $"a map is at chance level when its mean score is less than max({MinimumLift}, 3*sd/sqrt(n)) above chance";

    public static ChanceCheck Of(ScoreMap map, double chance)
    {
        var valid = map.Values.Where(v => !double.IsNaN(v)).ToArray();
        double mean = valid.Average();
        double sd = valid.Length > 1 ? Math.Sqrt(valid.Sum(v => (v - mean) * (v - mean)) / (valid.Length - 1)) : 0;
        double margin = Math.Max(MinimumLift, 3 * sd / Math.Sqrt(valid.Length));
        return new ChanceCheck(mean, sd, valid.Length, chance, margin, mean - chance < margin);
    }
}

/// <summary>
/// Compares Truth-Score maps head by head, as the reference's correlation script does: over the layer
/// and head indices the maps share, dropping heads that are NaN in any of them.
/// </summary>
public static class MapComparison
{
    /// <summary>
    /// The scores of the heads valid in every map of <paramref name="maps"/>, in layer-major order of the
    /// shared indices: one aligned sample per map, plus the layer of each sample.
    /// </summary>
    public static (double[][] samples, int[] layers) Align(IReadOnlyList<ScoreMap> maps)
    {
        int[] layers = maps.Select(m => (IEnumerable<int>)m.LayerIds).Aggregate((a, b) => a.Intersect(b)).Order().ToArray();
        int[] heads = maps.Select(m => (IEnumerable<int>)m.HeadIds).Aggregate((a, b) => a.Intersect(b)).Order().ToArray();
        if (layers.Length == 0 || heads.Length == 0)
            throw new UserError($"maps {string.Join(", ", maps.Select(m => $"{m.Name} ({m.File}, {m.Shape})"))} share no layer or no head index; nothing to compare");

        var rowOf = maps.Select(m => layers.Select(l => Array.IndexOf(m.LayerIds, l)).ToArray()).ToArray();
        var colOf = maps.Select(m => heads.Select(h => Array.IndexOf(m.HeadIds, h)).ToArray()).ToArray();
        var samples = maps.Select(_ => new List<double>()).ToArray();
        var sampleLayers = new List<int>();
        for (int li = 0; li < layers.Length; li++)
            for (int hi = 0; hi < heads.Length; hi++)
            {
                bool allValid = true;
                for (int m = 0; m < maps.Count && allValid; m++)
                    allValid = !double.IsNaN(maps[m][rowOf[m][li], colOf[m][hi]]);
                if (!allValid) continue;
                for (int m = 0; m < maps.Count; m++) samples[m].Add(maps[m][rowOf[m][li], colOf[m][hi]]);
                sampleLayers.Add(layers[li]);
            }
        return (samples.Select(s => s.ToArray()).ToArray(), sampleLayers.ToArray());
    }

    /// <summary>All statistics of two aligned samples. topK is lowered to the number of heads when larger.</summary>
    public static PairStatistics Compare(string nameA, string nameB, double[] a, double[] b, int[] layers, int topK)
    {
        int n = a.Length;
        if (n < 3)
            throw new UserError($"{nameA} and {nameB} have only {n} head{(n == 1 ? "" : "s")} scored in both; a correlation needs at least 3");
        int k = Math.Min(topK, n);
        var perLayer = new List<LayerPearson>();
        for (int start = 0; start < n;)
        {
            int end = start;
            while (end < n && layers[end] == layers[start]) end++;
            perLayer.Add(new LayerPearson(layers[start], end - start, Correlation.Pearson(a.AsSpan(start, end - start), b.AsSpan(start, end - start))));
            start = end;
        }
        return new PairStatistics(nameA, nameB, n,
            Correlation.Pearson(a, b), Correlation.Spearman(a, b), Correlation.KendallTauB(a, b),
            k, Correlation.TopKJaccard(a, b, k), perLayer);
    }

    /// <summary>
    /// Every pair (i &lt; j) of maps. <paramref name="sharedAcrossAll"/> restricts every pair to the heads
    /// valid in all maps, as the reference does; otherwise each pair uses what the two maps share.
    /// </summary>
    public static List<PairStatistics> CompareAll(IReadOnlyList<ScoreMap> maps, int topK, bool sharedAcrossAll)
    {
        var result = new List<PairStatistics>();
        var (allSamples, allLayers) = sharedAcrossAll ? Align(maps) : (Array.Empty<double[]>(), Array.Empty<int>());
        for (int i = 0; i < maps.Count; i++)
            for (int j = i + 1; j < maps.Count; j++)
            {
                if (sharedAcrossAll)
                    result.Add(Compare(maps[i].Name, maps[j].Name, allSamples[i], allSamples[j], allLayers, topK));
                else
                {
                    var (samples, layers) = Align([maps[i], maps[j]]);
                    result.Add(Compare(maps[i].Name, maps[j].Name, samples[0], samples[1], layers, topK));
                }
            }
        return result;
    }
}
