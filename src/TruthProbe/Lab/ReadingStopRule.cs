using System.Text.Json.Nodes;
using TruthProbe.Common;

namespace TruthProbe.Lab;

/// <summary>
/// Pretraining's stop rule (<c>lab pretrain --hold-until-reading P --decay-steps D</c>): the peak rate is held until a
/// monitor's reading accuracy reaches <paramref name="Threshold"/> at one of its checks (every <paramref name="CheckEvery"/>
/// steps), then the cosine to 10% runs over <paramref name="DecaySteps"/>. The plan's step count is the cap on the total,
/// so the peak is held at most to step (steps - D). Leaving the "reading plateau" is a chance event per model instance
/// that happens only at a high rate, between steps ~550 and ~900 of the wide model (docs/lab.md, issue 18); a fixed hold
/// decays some instances before they leave it, so the rule waits for the skill instead of guessing its step.
/// </summary>
/// <remarks>
/// The monitor is its own fixed set drawn like training's reading drills (full contexts, 70% counterfactual, training's
/// share of same-kind distractors) from a stream no other set uses, not the held-out evaluation set, which stays unseen
/// by every decision. The decision depends only on the seeds and the model's bytes, so a run is as reproducible as before.
/// </remarks>
/// <param name="CurriculumSteps">steps over which the curriculum grows the contexts; 0: its share of the cap, as without the rule.</param>
public sealed record ReadingStopRule(double Threshold, int DecaySteps, int CheckEvery = ReadingStopRule.DefaultCheckEvery, int CurriculumSteps = 0)
{
    /// <summary>A check costs one forward of 128 episodes per 128 items, about a training step's forward; every 50 steps is ~1% of the run.</summary>
    public const int DefaultCheckEvery = 50;
    /// <summary>Two forwards of the lab's evaluation chunk: the accuracy to about +-0.01 (binomial, near 0.97) at two steps' cost.</summary>
    public const int MonitorItems = 256;
    public const double CounterfactualShare = 0.7;
    private const int MonitorStream = 0x3017;

    /// <summary>Throws <see cref="UserError"/> for a rule this plan cannot run.</summary>
    public void Validate(TrainingPlan plan)
    {
        if (!(Threshold > 0 && Threshold <= 1))
            throw new UserError($"the reading accuracy that ends the held peak must be in (0, 1], got {Threshold}; e.g. 0.95") { Field = "hold_until_reading" };
        if (DecaySteps < 1)
            throw new UserError($"the decay after the held peak needs at least 1 step, got {DecaySteps}; e.g. 200") { Field = "decay_steps" };
        if (CheckEvery < 1)
            throw new UserError($"the reading monitor's interval must be at least 1 step, got {CheckEvery}; e.g. {DefaultCheckEvery}") { Field = "check_every" };
        if (CurriculumSteps < 0)
            throw new UserError($"the curriculum's steps must be at least 0 (0: {PretrainRecipe.CurriculumShare:P0} of the steps), got {CurriculumSteps}") { Field = "curriculum_steps" };
        if (plan.HoldFraction != 0)
            throw new UserError($"a held-peak share ({plan.HoldFraction}) and a reading threshold both set where the decay starts; give one of them") { Field = "hold_peak" };
        if (LatestDecayStart(plan) < plan.WarmupSteps)
            throw new UserError($"{plan.Steps} steps (the cap) minus {DecaySteps} decay steps leave no held peak after the {plan.WarmupSteps}-step warm-up; raise the steps or lower the decay steps") { Field = "steps" };
    }

    /// <summary>Where the cosine starts when the monitor never reaches the threshold: the cap less the decay.</summary>
    public int LatestDecayStart(TrainingPlan plan) => plan.Steps - DecaySteps;

    /// <summary>The step count the recipe's curriculum share is taken of.</summary>
    public int CurriculumTotal(TrainingPlan plan) => CurriculumSteps > 0 ? (int)Math.Round(CurriculumSteps / PretrainRecipe.CurriculumShare) : plan.Steps;

    /// <summary>Whether the monitor is read after <paramref name="stepsDone"/> steps: at the peak (not during the warm-up,
    /// whose end the cosine could not start from), on the interval, no later than the latest decay start.</summary>
    public bool ChecksAfter(int stepsDone, TrainingPlan plan) =>
        stepsDone >= plan.WarmupSteps && stepsDone % CheckEvery == 0 && stepsDone <= LatestDecayStart(plan);

    /// <summary>The monitor's episodes, the same for every model of a world.</summary>
    public static IReadOnlyList<Episode> Monitor(SyntheticWorld world)
    {
        var rng = new SeededSystemRandom(unchecked(world.Seed * 31 + MonitorStream));
        var episodes = new Episode[MonitorItems];
        for (int i = 0; i < episodes.Length; i++)
            episodes[i] = world.SampleEpisode(rng, Recipe.MaxFacts, counterfactual: rng.NextDouble() < CounterfactualShare, SyntheticWorld.CoreKinds, PretrainRecipe.SameKindShare);
        return episodes;
    }
}

/// <summary>Where a stop rule's held peak ended, whether the monitor reached its threshold there (else the cap), and the monitor's curve.</summary>
public sealed record HoldOutcome(int DecayStart, bool ReachedThreshold, IReadOnlyList<(int Step, double Accuracy)> Monitor)
{
    public JsonObject ToJson(ReadingStopRule rule, int stepCap) => new()
    {
        ["threshold"] = rule.Threshold,
        ["decay_steps"] = rule.DecaySteps,
        ["check_every"] = rule.CheckEvery,
        ["step_cap"] = stepCap,
        ["curriculum_steps"] = rule.CurriculumSteps,
        ["monitor_items"] = ReadingStopRule.MonitorItems,
        ["decay_start"] = DecayStart,
        ["decay_reason"] = ReachedThreshold ? "threshold" : "cap",
        ["monitor"] = new JsonArray(Monitor.Select(p => (JsonNode?)new JsonObject { ["step"] = p.Step, ["accuracy"] = Math.Round(p.Accuracy, 5) }).ToArray()),
    };
}
