using TruthProbe.Common;

namespace TruthProbe.Statistics;

/// <summary>
/// Uncertainty of Pearson's r between two head maps flattened into paired samples a[i], b[i], where
/// <c>layers[i]</c> is the layer of sample i and each layer's samples are contiguous (layer-major order, as
/// <see cref="MapComparison.Align"/> gives them). Each function is deterministic given its seed.
/// </summary>
public static class MapCorrelation
{
    /// <summary>
    /// Percentile bootstrap over heads: resample the n (a, b) pairs with replacement, recompute r, take the
    /// (1 - confidence)/2 and (1 + confidence)/2 quantiles of the resampled r. Heads are treated as exchangeable,
    /// so the interval is about this set of heads, not about other rows; resamples with a constant side
    /// (r undefined) are skipped.
    /// </summary>
    public static Interval BootstrapPearson(ReadOnlySpan<double> a, ReadOnlySpan<double> b, int resamples, ulong seed, double confidence = 0.95)
    {
        CheckPaired(a, b);
        if (resamples < 1) throw new ArgumentOutOfRangeException(nameof(resamples), $"need at least one resample, got {resamples}");
        int n = a.Length;
        if (n < 2) return Interval.Undefined;
        var rng = new SeededRandom(seed);
        var x = new double[n];
        var y = new double[n];
        var r = new double[resamples];
        int kept = 0;
        for (int s = 0; s < resamples; s++)
        {
            for (int i = 0; i < n; i++)
            {
                int j = rng.NextInt(n);
                x[i] = a[j];
                y[i] = b[j];
            }
            double value = Correlation.Pearson(x, y);
            if (!double.IsNaN(value)) r[kept++] = value;
        }
        return PercentileInterval(r.AsSpan(0, kept), confidence);
    }

    /// <summary>
    /// The (1 - confidence)/2 and (1 + confidence)/2 quantiles of bootstrap replicates (sorted in place; numpy's
    /// linear quantiles); undefined without replicates.
    /// </summary>
    public static Interval PercentileInterval(Span<double> replicates, double confidence = 0.95)
    {
        if (replicates.Length == 0) return Interval.Undefined;
        replicates.Sort();
        double tail = (1 - confidence) / 2;
        return new Interval(Spread.Quantile(replicates, tail), Spread.Quantile(replicates, 1 - tail));
    }

    /// <summary>
    /// The layer-preserving permutation p-value of r: b's heads are shuffled within each layer independently
    /// (a Fisher-Yates per layer), so each layer keeps its mean and spread and a shared depth trend survives
    /// every shuffle; only the head-by-head pairing inside a layer is broken. Two-sided,
    /// p = (1 + #{|r_perm| &gt;= |r_obs|}) / (1 + permutations) (Phipson and Smyth 2010: never 0), with the
    /// comparison relaxed by 100 ulps of r_obs, as scipy.stats.permutation_test does, so shuffles that only
    /// reorder the sum are not lost to rounding.
    /// </summary>
    public static double LayerPermutationPValue(ReadOnlySpan<double> a, ReadOnlySpan<double> b, ReadOnlySpan<int> layers, int permutations, ulong seed)
    {
        CheckPaired(a, b);
        if (layers.Length != a.Length) throw new ArgumentException($"one layer per sample: {layers.Length} layers for {a.Length} samples", nameof(layers));
        if (permutations < 1) throw new ArgumentOutOfRangeException(nameof(permutations), $"need at least one permutation, got {permutations}");
        double observed = Math.Abs(Correlation.Pearson(a, b));
        if (double.IsNaN(observed)) return double.NaN;
        double threshold = observed * (1 - 100 * MachineEpsilon);
        var rng = new SeededRandom(seed);
        var shuffled = b.ToArray();
        int atLeast = 0;
        for (int s = 0; s < permutations; s++)
        {
            ShuffleWithinLayers(shuffled, layers, ref rng);
            if (Math.Abs(Correlation.Pearson(a, shuffled)) >= threshold) atLeast++;
        }
        return (1.0 + atLeast) / (1.0 + permutations);
    }

    /// <summary>
    /// One layer-preserving shuffle in place: a Fisher-Yates within each layer's contiguous run of samples, so every
    /// layer keeps its values (mean, spread) and only which head holds which value changes. The generator is advanced
    /// in place (it is a struct), so successive calls give successive shuffles.
    /// </summary>
    public static void ShuffleWithinLayers(Span<double> values, ReadOnlySpan<int> layers, ref SeededRandom rng)
    {
        if (layers.Length != values.Length) throw new ArgumentException($"one layer per sample: {layers.Length} layers for {values.Length} samples", nameof(layers));
        for (int start = 0, end; start < layers.Length; start = end)
        {
            end = LayerEnd(layers, start);
            for (int i = end - 1; i > start; i--)
            {
                int j = start + rng.NextInt(i - start + 1);
                (values[i], values[j]) = (values[j], values[i]);
            }
        }
    }

    /// <summary>
    /// Pearson r after subtracting each layer's mean from both maps: the agreement of heads within their layers,
    /// with any depth trend (a layer-wide shift shared by the maps) removed.
    /// </summary>
    public static double LayerCentredPearson(ReadOnlySpan<double> a, ReadOnlySpan<double> b, ReadOnlySpan<int> layers)
    {
        CheckPaired(a, b);
        return Correlation.Pearson(LayerCentred(a, layers), LayerCentred(b, layers));
    }

    /// <summary>A map with each layer's mean subtracted (samples of a layer are contiguous, as <see cref="LayerCentredPearson"/> takes them).</summary>
    public static double[] LayerCentred(ReadOnlySpan<double> a, ReadOnlySpan<int> layers)
    {
        if (layers.Length != a.Length) throw new ArgumentException($"one layer per sample: {layers.Length} layers for {a.Length} samples", nameof(layers));
        var x = new double[a.Length];
        for (int start = 0, end; start < layers.Length; start = end)
        {
            end = LayerEnd(layers, start);
            double mean = 0;
            for (int i = start; i < end; i++) mean += a[i];
            mean /= end - start;
            for (int i = start; i < end; i++) x[i] = a[i] - mean;
        }
        return x;
    }

    private const double MachineEpsilon = 2.220446049250313e-16;

    /// <summary>One past the last sample of the layer that starts at <paramref name="start"/>.</summary>
    private static int LayerEnd(ReadOnlySpan<int> layers, int start)
    {
        int end = start + 1;
        while (end < layers.Length && layers[end] == layers[start]) end++;
        return end;
    }

    private static void CheckPaired(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"paired samples differ in length: {a.Length} vs {b.Length}");
    }
}
