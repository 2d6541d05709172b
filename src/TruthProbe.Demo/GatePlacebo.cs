using TruthProbe.Common;
using TruthProbe.Statistics;

namespace TruthProbe.Demo;

/// <summary>
/// The control a skeptic asks of "the base's gates help": the same protocol (lambda chosen on the same tuning rows from
/// the same candidates, scored on the same test rows) with a placebo map, the base's scores shuffled among the heads of
/// each layer. Contrast and min-max gates are computed layer by layer, so the placebo's gates take exactly the base's
/// values in every layer, the same strength of intervention; only which head gets which gate is random. A gain the
/// placebo matches shows that gating of that strength moves the model, not that the map knows which heads carry truth.
/// </summary>
public static class GatePlacebo
{
    /// <summary>The shuffle's seed, recorded in summary.json's provenance.</summary>
    public const ulong Seed = 7;
    /// <summary>Per model: the placebo arm's lambda and test accuracy, its McNemar against vanilla and against the base's gates.</summary>
    public const string File = "eval_placebo.csv";
    /// <summary>The placebo map itself under gates/, so <c>--scores</c> reruns the arm with any verb.</summary>
    public const string ScoresFile = "placebo_scores.npy";

    /// <summary>The scores, [layers, heads] row-major, with each layer's heads shuffled (one seeded Fisher-Yates per layer).</summary>
    public static double[] Shuffled(ReadOnlySpan<double> scores, int layers, int heads, ulong seed)
    {
        if (scores.Length != layers * heads) throw new ArgumentException($"{scores.Length} scores for {layers} layers x {heads} heads", nameof(scores));
        var values = scores.ToArray();
        var layerOf = new int[values.Length];
        for (int i = 0; i < layerOf.Length; i++) layerOf[i] = i / heads;
        var rng = new SeededRandom(seed);
        MapCorrelation.ShuffleWithinLayers(values, layerOf, ref rng);
        return values;
    }

    /// <summary>
    /// The gating check: INCONCLUSIVE unless the base's gates change accuracy (McNemar against vanilla below
    /// <paramref name="alpha"/>); FAIL when they lower it; PASS only when they raise it and also beat the placebo arm
    /// (McNemar of the two gated arms below alpha, base above placebo), else INCONCLUSIVE: a placebo that does as well
    /// leaves nothing to credit to the map.
    /// </summary>
    public static DemoCheck.Result Outcome(double vanilla, double gated, double pVsVanilla, double placebo, double pVsPlacebo, double alpha) =>
        !(pVsVanilla < alpha) ? DemoCheck.Result.Inconclusive
        : !(gated > vanilla) ? DemoCheck.Result.Fail
        : pVsPlacebo < alpha && gated > placebo ? DemoCheck.Result.Pass
        : DemoCheck.Result.Inconclusive;

    /// <summary>Why an <see cref="Outcome"/> is INCONCLUSIVE, as the check's detail ends: nothing significant against vanilla,
    /// or a placebo that does as well; empty for PASS and FAIL.</summary>
    public static string InconclusiveReason(DemoCheck.Result outcome, double pVsVanilla, double alpha) =>
        outcome != DemoCheck.Result.Inconclusive ? ""
        : !(pVsVanilla < alpha) ? $"; not significant at {alpha}"
        : $"; the placebo map does as well (base gates against placebo not significantly better at {alpha})";
}
