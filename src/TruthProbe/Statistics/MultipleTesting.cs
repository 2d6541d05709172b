namespace TruthProbe.Statistics;

/// <summary>Control of false discoveries when every head of a map is tested at once.</summary>
public static class MultipleTesting
{
    /// <summary>
    /// Benjamini-Hochberg adjusted p-values (q-values), as R's <c>p.adjust(p, "BH")</c> and
    /// <c>scipy.stats.false_discovery_control</c>: q of the i-th smallest of m p-values is
    /// min over j &gt;= i of min(1, p_(j) m / j), so q is monotone in p. Calling the heads with q &lt;= alpha
    /// discoveries keeps the expected share of false ones among them at most alpha. NaN p-values are left
    /// out of m and get NaN, as R leaves out NA.
    /// </summary>
    public static void BenjaminiHochberg(ReadOnlySpan<double> p, Span<double> q)
    {
        if (q.Length != p.Length) throw new ArgumentException("q must have one slot per p-value", nameof(q));
        int m = 0;
        foreach (double v in p)
        {
            if (double.IsNaN(v)) continue;
            if (v < 0 || v > 1) throw new ArgumentOutOfRangeException(nameof(p), $"p-values must be in [0, 1], got {v}");
            m++;
        }
        var order = new int[m];
        var keys = new double[m];
        for (int i = 0, j = 0; i < p.Length; i++)
        {
            if (double.IsNaN(p[i])) { q[i] = double.NaN; continue; }
            order[j] = i;
            keys[j++] = p[i];
        }
        Array.Sort(keys, order);
        double running = 1;
        for (int rank = m; rank >= 1; rank--)
        {
            running = Math.Min(running, keys[rank - 1] * m / rank);
            q[order[rank - 1]] = running;
        }
    }
}
