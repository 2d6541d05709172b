using TruthProbe.Common;

namespace TruthProbe.Evaluation;

/// <summary>An item with the model's reply under one condition (vanilla or gated).</summary>
public sealed record HaluEvalJudged(HaluEvalItem Item, string Reply, HaluEvalParsed Parsed)
{
    public HaluEvalOutcome Outcome => new(Item.ShowsHallucinated, Parsed);
}

/// <summary>One seed's vanilla and gated scores and the paired test between them.</summary>
public sealed record HaluEvalSeedComparison(int Seed, HaluEvalScores Vanilla, HaluEvalScores Gated, McNemarTest.Result McNemar);

/// <summary>
/// Vanilla against gated on the same items. The per-seed McNemar tests are the clean ones (one reply per
/// row); the pooled test counts every (row, seed) pair, so a row shown with the same answer under several
/// seeds counts several times and its p-value is optimistic.
/// </summary>
public sealed record HaluEvalComparison(IReadOnlyList<HaluEvalSeedComparison> Seeds, McNemarTest.Result Pooled)
{
    public static HaluEvalComparison Of(IReadOnlyList<HaluEvalJudged> vanilla, IReadOnlyList<HaluEvalJudged> gated)
    {
        if (vanilla.Count != gated.Count || vanilla.Zip(gated).Any(p => p.First.Item != p.Second.Item))
            throw new ArgumentException("vanilla and gated replies must be for the same items in the same order");
        var seeds = vanilla.Select((v, i) => (v, g: gated[i])).GroupBy(p => p.v.Item.Seed).Select(group =>
        {
            var pairs = group.ToList();
            return new HaluEvalSeedComparison(group.Key,
                HaluEvalScores.From(pairs.Select(p => p.v.Outcome)),
                HaluEvalScores.From(pairs.Select(p => p.g.Outcome)),
                McNemarTest.Exact(pairs.Select(p => p.v.Outcome.Correct).ToList(), pairs.Select(p => p.g.Outcome.Correct).ToList()));
        }).ToList();
        var pooled = McNemarTest.Exact(vanilla.Select(v => v.Outcome.Correct).ToList(), gated.Select(g => g.Outcome.Correct).ToList());
        return new HaluEvalComparison(seeds, pooled);
    }

    public MeanStd Vanilla(string metric) => MeanStd.Of(Seeds.Select(s => Value(s.Vanilla, metric)).ToList());
    public MeanStd Gated(string metric) => MeanStd.Of(Seeds.Select(s => Value(s.Gated, metric)).ToList());

    private static double Value(HaluEvalScores scores, string metric) => scores.Metrics.First(m => m.Name == metric).Value;
}

public static class HaluEvalRunner
{
    /// <summary>
    /// Replies for every item under one condition. Greedy decoding is deterministic and a row can show only
    /// two prompts whatever the seed, so each distinct prompt is generated once and its reply reused.
    /// </summary>
    public static List<HaluEvalJudged> Judge(IReadOnlyList<HaluEvalItem> items, Func<string, string> generate, Progress? progress = null) =>
        Judge(items, prompts => prompts.Select(p => { string reply = generate(p); progress?.Advance(); return reply; }).ToList());

    /// <summary>
    /// As above, with every distinct prompt (in order of first use) handed to <paramref name="generateAll"/> at
    /// once, which returns their replies in the same order: the form batched decoding needs.
    /// </summary>
    public static List<HaluEvalJudged> Judge(IReadOnlyList<HaluEvalItem> items, Func<IReadOnlyList<string>, IReadOnlyList<string>> generateAll)
    {
        var prompts = items.Select(i => i.Prompt).Distinct(StringComparer.Ordinal).ToList();
        var replies = generateAll(prompts);
        if (replies.Count != prompts.Count) throw new ArgumentException($"{prompts.Count} prompts got {replies.Count} replies");
        var byPrompt = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < prompts.Count; i++) byPrompt[prompts[i]] = replies[i];
        return items.Select(item => new HaluEvalJudged(item, byPrompt[item.Prompt], HaluEvalAnswer.Parse(byPrompt[item.Prompt]))).ToList();
    }

    /// <summary>How many generations <see cref="Judge"/> will run for these items (its progress total).</summary>
    public static int DistinctPrompts(IEnumerable<HaluEvalItem> items) => items.Select(i => i.Prompt).Distinct(StringComparer.Ordinal).Count();
}
