using TruthProbe.Common;

namespace TruthProbe.Evaluation;

/// <summary>
/// Picking lambda without touching the test items (the paper grid-searches on a held-out 20%): the rows
/// are split once, by a seed, into tuning and test rows; every candidate is scored on the tuning rows
/// only, and the test rows are evaluated at the chosen lambda only.
/// </summary>
public static class HaluEvalSweep
{
    public const double TuningFraction = 0.2;

    /// <summary>
    /// round(20% of n) rows, at least one, go to tuning: those with the smallest
    /// <see cref="HaluEvalData.SeededHash"/>(splitSeed, row index), ties by index. Row order is kept in both parts.
    /// </summary>
    public static (List<HaluEvalRow> Tuning, List<HaluEvalRow> Test) Split(IReadOnlyList<HaluEvalRow> rows, int splitSeed)
    {
        if (rows.Count < 2)
            throw new UserError($"a lambda sweep needs at least 2 rows (one to tune on, one to test on), got {rows.Count}; evaluate more rows") { Field = "limit" };
        int tuningCount = Math.Max(1, (int)Math.Round(TuningFraction * rows.Count, MidpointRounding.AwayFromZero));
        var tuningIds = rows
            .OrderBy(r => HaluEvalData.SeededHash(splitSeed, r.Index)).ThenBy(r => r.Index)
            .Take(tuningCount).Select(r => r.Index).ToHashSet();
        return (rows.Where(r => tuningIds.Contains(r.Index)).ToList(), rows.Where(r => !tuningIds.Contains(r.Index)).ToList());
    }

    /// <summary>The candidate with the highest tuning F1 (mean over seeds); on a tie the smaller lambda, the milder intervention.</summary>
    public static double Choose(IReadOnlyList<(double Lambda, double TuningF1)> candidates)
    {
        if (candidates.Count == 0) throw new ArgumentException("no lambda candidates");
        var best = candidates[0];
        foreach (var c in candidates.Skip(1))
            if (c.TuningF1 > best.TuningF1 || (c.TuningF1 == best.TuningF1 && c.Lambda < best.Lambda)) best = c;
        return best.Lambda;
    }
}
