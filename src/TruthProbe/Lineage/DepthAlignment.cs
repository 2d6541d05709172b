using TruthProbe.Common;
using TruthProbe.Probing;

namespace TruthProbe.Lineage;

/// <summary>How two maps' heads are paired: by layer and head index, or by relative depth (<see cref="DepthAlignment"/>).</summary>
public enum MapAlignment { Index, Depth }

/// <summary>Two maps paired for correlation: samples A[i], B[i] with the layer of each (the smaller map's layer).</summary>
public sealed record AlignedPair(double[] A, double[] B, int[] Layers, bool HeadLevel);

/// <summary>
/// Comparison of maps with different layer counts by relative depth. Each layer i of the map with fewer
/// layers (S of them) is matched to the layer of the larger map (L layers) whose centre is nearest its own
/// relative depth (i + 1/2) / S, i.e. layer floor((i + 1/2) L / S): first and last layers stay at the ends,
/// equal counts give the identity, and no matched layer is used twice. Heads: with equal head counts, head h
/// of a matched layer is paired with head h (an index is a head's identity inside one lineage, as for maps
/// of one shape). With different head counts no head of one model corresponds to a head of the other, so
/// head-level statistics are refused and the pair is compared over its layers' mean scores (one sample per
/// matched layer: the depth profiles); top-k overlap, the layer-preserving null and the layer-centred r,
/// which all need heads, are then left undefined.
/// </summary>
public static class DepthAlignment
{
    /// <summary>The layer of a map with <paramref name="larger"/> layers matched to layer <paramref name="layer"/> of one with <paramref name="smaller"/>.</summary>
    public static int MatchedLayer(int layer, int smaller, int larger) => (int)((2L * layer + 1) * larger / (2L * smaller));

    public static AlignedPair Align(ScoreMap a, ScoreMap b)
    {
        bool swap = a.Layers > b.Layers;
        var (small, large) = swap ? (b, a) : (a, b);
        var xs = new List<double>();
        var ys = new List<double>();
        var layers = new List<int>();
        bool headLevel = a.Heads == b.Heads;
        for (int i = 0; i < small.Layers; i++)
        {
            int j = MatchedLayer(i, small.Layers, large.Layers);
            if (headLevel)
                for (int h = 0; h < small.Heads; h++)
                {
                    double x = small[i, h], y = large[j, h];
                    if (double.IsNaN(x) || double.IsNaN(y)) continue;
                    xs.Add(x);
                    ys.Add(y);
                    layers.Add(small.LayerIds[i]);
                }
            else
            {
                double x = LayerMean(small, i), y = LayerMean(large, j);
                if (double.IsNaN(x) || double.IsNaN(y)) continue;
                xs.Add(x);
                ys.Add(y);
                layers.Add(small.LayerIds[i]);
            }
        }
        if (!headLevel && xs.Count < 3)
            throw new UserError($"{a.Name} ({a.Shape}) and {b.Name} ({b.Shape}) differ in head count, so they are compared over depth-matched layer means, " +
                                $"and only {xs.Count} layer{(xs.Count == 1 ? "" : "s")} can be matched; a correlation needs at least 3");
        var (first, second) = swap ? (ys, xs) : (xs, ys);
        return new AlignedPair(first.ToArray(), second.ToArray(), layers.ToArray(), headLevel);
    }

    /// <summary>Mean over the layer's scored heads; NaN when none is scored.</summary>
    private static double LayerMean(ScoreMap map, int layer)
    {
        double sum = 0;
        int n = 0;
        for (int h = 0; h < map.Heads; h++)
            if (!double.IsNaN(map[layer, h])) { sum += map[layer, h]; n++; }
        return n == 0 ? double.NaN : sum / n;
    }

    /// <summary>Every pair (i &lt; j) of maps, depth-aligned; a note per pair compared over layer means goes to <paramref name="warnings"/>.</summary>
    public static List<PairStatistics> CompareAll(IReadOnlyList<ScoreMap> maps, int topK, PairUncertainty? uncertainty, List<string> warnings)
    {
        var result = new List<PairStatistics>();
        for (int i = 0; i < maps.Count; i++)
            for (int j = i + 1; j < maps.Count; j++)
            {
                var (a, b) = (maps[i], maps[j]);
                var pair = Align(a, b);
                var stats = MapComparison.Compare(a.Name, b.Name, pair.A, pair.B, pair.Layers, topK, uncertainty);
                if (!pair.HeadLevel)
                {
                    warnings.Add($"{a.Name} ({a.Shape}) vs {b.Name} ({b.Shape}): different head counts, so no head of one corresponds to a head of the other; " +
                                 $"r is over the mean scores of {pair.A.Length} depth-matched layers, and top-k, p_layer_perm and the layer-centred r do not apply");
                    stats = stats with
                    {
                        PerLayer = [], PLayerPermutation = double.NaN, PearsonLayerCentred = double.NaN,
                        TopK = 0, TopKJaccard = double.NaN, TopKOverlap = 0, TopKExpected = double.NaN, TopKPValue = double.NaN,
                    };
                }
                result.Add(stats);
            }
        if (maps.Any(m => m.Layers != maps[0].Layers))
            warnings.Add("maps differ in layer count; layers are matched by relative depth (layer i of S matched to layer floor((i + 1/2) L / S) of L), labelled by the smaller map's layer");
        return result;
    }
}
