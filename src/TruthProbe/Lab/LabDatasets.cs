using System.Text.Json.Nodes;
using System.Text;
using TruthProbe.Common;

namespace TruthProbe.Lab;

/// <summary>
/// The world's held-out sets, drawn from streams the training batches never use: the evaluation episodes
/// (full-size contexts, half counterfactual), a probing set in the reference layout (context, question,
/// answer, label) and an evaluation set in the HaluEval-QA layout (knowledge, question, right_answer,
/// hallucinated_answer). Gold and hallucinated answers are both one value of the asked kind, so they share
/// form and length.
/// </summary>
public static class LabDatasets
{
    private const int EvaluationStream = 0x7e57, ProbingStream = 0x9b0e, HaluEvalStream = 0x4a1e;

    public static IReadOnlyList<Episode> Evaluation(SyntheticWorld world, int count, FactKind[]? kinds = null) =>
        Episodes(world, EvaluationStream, count, kinds ?? SyntheticWorld.CoreKinds).Select(x => x.Episode).ToList();

    private static IEnumerable<(Episode Episode, Random Rng)> Episodes(SyntheticWorld world, int stream, int count, FactKind[] kinds,
        int facts = Recipe.MaxFacts, double sameKindShare = 1.0 / 3)
    {
        var rng = new SeededSystemRandom(unchecked(world.Seed * 31 + stream));
        for (int i = 0; i < count; i++) yield return (world.SampleEpisode(rng, facts, counterfactual: i % 2 == 1, kinds, sameKindShare), rng);
    }

    /// <summary>Two rows per episode, gold then hallucinated.</summary>
    public static void WriteProbing(string path, SyntheticWorld world, int episodes)
    {
        var sb = new StringBuilder();
        foreach (var (e, rng) in Episodes(world, ProbingStream, episodes, SyntheticWorld.CoreKinds))
        {
            string context = SyntheticWorld.ContextText(e), question = SyntheticWorld.Question(e.Asked.Person, e.Asked.Kind);
            var wrong = world.Hallucinated(rng, e);
            sb.Append(Row(context, question, SyntheticWorld.Answer(e.Asked), "gold", e.Counterfactual));
            sb.Append(Row(context, question, SyntheticWorld.Answer(wrong), "hallucinated", e.Counterfactual));
        }
        AtomicFile.WriteAllText(path, sb.ToString());

        static string Row(string context, string question, string answer, string label, bool counterfactual) => new JsonObject
        {
            ["context"] = context, ["question"] = question, ["answer"] = answer, ["label"] = label, ["counterfactual"] = counterfactual,
        }.ToJsonString() + "\n";
    }

    /// <param name="facts">context sentences per item; more than training's <see cref="Recipe.MaxFacts"/> (with a larger
    /// <paramref name="sameKindShare"/> of same-kind distractors) makes items the models still get wrong.</param>
    public static void WriteHaluEval(string path, SyntheticWorld world, int items, int facts = Recipe.MaxFacts, double sameKindShare = 1.0 / 3)
    {
        var sb = new StringBuilder();
        foreach (var (e, rng) in Episodes(world, HaluEvalStream, items, SyntheticWorld.CoreKinds, facts, sameKindShare))
            sb.Append(new JsonObject
            {
                ["knowledge"] = SyntheticWorld.ContextText(e),
                ["question"] = SyntheticWorld.Question(e.Asked.Person, e.Asked.Kind),
                ["right_answer"] = SyntheticWorld.Answer(e.Asked),
                ["hallucinated_answer"] = SyntheticWorld.Answer(world.Hallucinated(rng, e)),
                ["counterfactual"] = e.Counterfactual,
            }.ToJsonString()).Append('\n');
        AtomicFile.WriteAllText(path, sb.ToString());
    }
}
