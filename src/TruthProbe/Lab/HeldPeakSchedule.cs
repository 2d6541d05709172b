using TruthProbe.Common;
using TruthProbe.Training;

namespace TruthProbe.Lab;

/// <summary>
/// A plan's learning rate: linear warm-up, the peak held until <see cref="TrainingPlan.HoldFraction"/> of the steps,
/// then the cosine to 10% over the rest (warm-up-stable-decay). The lab's pretraining leaves its "reading plateau" only
/// while the rate is still at half the peak or more (docs/lab.md, issue 18), so a shorter run holds it longer instead.
/// Hold 0 is <see cref="LearningRateSchedule"/> itself, bit for bit: the decay phase is that schedule shifted in time.
/// </summary>
internal sealed class HeldPeakSchedule
{
    private readonly LearningRateSchedule _warmup, _decay;

    /// <summary>The first step of the cosine.</summary>
    public int DecayStart { get; }

    public HeldPeakSchedule(TrainingPlan plan) : this(plan.LearningRate, plan.WarmupSteps, HoldEnd(plan), plan.Steps) { }

    /// <summary>The peak held from the end of the warm-up to <paramref name="decayStart"/>, then the cosine until <paramref name="steps"/>
    /// (<see cref="ReadingStopRule"/> picks the decay start while training).</summary>
    public HeldPeakSchedule(double peak, int warmupSteps, int decayStart, int steps)
    {
        DecayStart = decayStart;
        _warmup = new LearningRateSchedule(peak, warmupSteps, steps);
        _decay = new LearningRateSchedule(peak, 0, steps - decayStart);
    }

    private static int HoldEnd(TrainingPlan plan)
    {
        if (!(plan.HoldFraction >= 0 && plan.HoldFraction < 1))
            throw new UserError($"the share of steps at the peak learning rate must be in [0, 1), got {plan.HoldFraction}; 0 starts the cosine right after the warm-up") { Field = "hold_peak" };
        return Math.Max(plan.WarmupSteps, (int)Math.Round(plan.HoldFraction * plan.Steps));
    }

    // At the end of the warm-up the cosine is at its start, the peak; it stays there until the decay begins.
    public double At(int step) => step < DecayStart ? _warmup.At(Math.Min(step, _warmup.WarmupSteps)) : _decay.At(step - DecayStart);
}
