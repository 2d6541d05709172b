namespace TruthProbe.Bench;

/// <summary>The median and range the benchmarks report over their windows or rounds (the upper median of an even count).</summary>
internal static class BenchStats
{
    public static double Median(IEnumerable<double> values) => Spread(values).Median;

    public static (double Median, double Min, double Max) Spread(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return (sorted[sorted.Length / 2], sorted[0], sorted[^1]);
    }
}
