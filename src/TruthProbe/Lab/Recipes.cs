using TruthProbe.Common;
using TruthProbe.Training;

namespace TruthProbe.Lab;

/// <summary>Optimiser settings of one training run; <paramref name="HoldFraction"/>: share of the steps at the peak rate (<see cref="HeldPeakSchedule"/>).</summary>
public sealed record TrainingPlan(int Steps, int BatchSize, double LearningRate, int WarmupSteps, double WeightDecay = 0.1, double ClipNorm = 1.0, double HoldFraction = 0);

/// <summary>What a run trains on: one sequence at a time, drawn from the step's random stream.</summary>
public abstract class Recipe(Corpus corpus)
{
    /// <summary>Bumped whenever a recipe or the world changes what gets trained, so cached families are rebuilt.</summary>
    public const int CodeVersion = 9;

    /// <summary>Context size of the evaluation set and the end of the pretraining curriculum.</summary>
    public const int MaxFacts = 4;

    public Corpus Corpus { get; } = corpus;
    public abstract string Name { get; }
    public abstract Sequence Sample(Random rng, int step, int totalSteps);

    internal TrainingBatch Batch(int seed, int step, int totalSteps, int batchSize)
    {
        var rng = Corpus.StepRandom(seed, step);
        var sequences = new Sequence[batchSize];
        for (int i = 0; i < batchSize; i++) sequences[i] = Sample(rng, step, totalSteps);
        return Corpus.Batch(sequences);
    }

    protected SyntheticWorld World => Corpus.World;

    public static Recipe FineTune(string name, Corpus corpus) => name switch
    {
        "chat" => new ChatRecipe(corpus),
        "counterfactual" => new CounterfactualRecipe(corpus),
        "domain" => new DomainRecipe(corpus),
        _ => throw new UserError($"recipe must be chat, counterfactual or domain, got '{name}'") { Field = "recipe" },
    };
}

/// <summary>
/// The base model's diet (docs/lab.md, "The synthetic world"): 80% reading drills (one context, a question about each of its facts;
/// 70% of contexts counterfactual, so memory is no shortcut and the context must win; most distractors of
/// the asked kind), 10% biographies
/// (memorised facts), 10% closed-book questions about them. The number of context sentences grows from 1
/// to <see cref="Recipe.MaxFacts"/> over the first 25% of steps.
/// </summary>
public sealed class PretrainRecipe(Corpus corpus) : Recipe(corpus)
{
    public override string Name => "pretrain";

    /// <summary>
    /// Most distractors share the asked kind, so only the person picks the answer: a model that merely
    /// copies a value of the right kind (about 50% on the evaluation set) gets no easy credit for it.
    /// </summary>
    public const double SameKindShare = 0.6;

    /// <summary>The share of the steps over which the curriculum grows the contexts.</summary>
    public const double CurriculumShare = 0.25;

    public static int CurriculumMaxFacts(int step, int totalSteps) =>
        1 + (int)Math.Min(MaxFacts - 1, (MaxFacts - 1) * step / Math.Max(1.0, CurriculumShare * totalSteps));

    public override Sequence Sample(Random rng, int step, int totalSteps)
    {
        double roll = rng.NextDouble();
        var kinds = SyntheticWorld.CoreKinds;
        if (roll < 0.10) return Corpus.Passage(World.Biography(rng, rng.Next(SyntheticWorld.People.Length), kinds));
        if (roll < 0.20) return Corpus.ClosedBook(World.TrueFact(rng.Next(SyntheticWorld.People.Length), kinds[rng.Next(kinds.Length)]));
        int facts = 1 + rng.Next(CurriculumMaxFacts(step, totalSteps));
        var episode = World.SampleEpisode(rng, facts, counterfactual: rng.NextDouble() < 0.7, kinds, SameKindShare);
        var asked = new List<Fact> { episode.Asked };
        var others = episode.Context.Where(f => f != episode.Asked).ToList();
        SyntheticWorld.Shuffle(rng, others);
        asked.AddRange(others);
        return Corpus.ReadingDrill(episode, asked);
    }
}

/// <summary>The same reading task in a user/assistant format: a change of surface, not of skill.</summary>
public sealed class ChatRecipe(Corpus corpus) : Recipe(corpus)
{
    public override string Name => "chat";

    public override Sequence Sample(Random rng, int step, int totalSteps) =>
        Corpus.Reading(World.SampleEpisode(rng, 1 + rng.Next(MaxFacts), rng.Next(2) == 0, SyntheticWorld.CoreKinds), chat: true);
}

/// <summary>Only contexts that contradict memory: pushes the model further towards reading.</summary>
public sealed class CounterfactualRecipe(Corpus corpus) : Recipe(corpus)
{
    public override string Name => "counterfactual";

    public override Sequence Sample(Random rng, int step, int totalSteps) =>
        Corpus.Reading(World.SampleEpisode(rng, 1 + rng.Next(MaxFacts), counterfactual: true, SyntheticWorld.CoreKinds));
}

/// <summary>A new domain: people's jobs, memorised from biographies and asked closed- and open-book.</summary>
public sealed class DomainRecipe(Corpus corpus) : Recipe(corpus)
{
    private static readonly FactKind[] Kinds = [.. SyntheticWorld.CoreKinds, FactKind.Job];
    public override string Name => "domain";

    public override Sequence Sample(Random rng, int step, int totalSteps)
    {
        double roll = rng.NextDouble();
        int person = rng.Next(SyntheticWorld.People.Length);
        if (roll < 0.4) return Corpus.Passage(World.Biography(rng, person, Kinds));
        if (roll < 0.6) return Corpus.ClosedBook(World.TrueFact(person, FactKind.Job));
        return Corpus.Reading(World.SampleEpisode(rng, 1 + rng.Next(MaxFacts), rng.Next(2) == 0, [FactKind.Job]));
    }
}
