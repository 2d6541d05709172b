using TruthProbe.Common;

namespace TruthProbe.Demo;

/// <summary>
/// The family stage's share of the demo's one progress line. Every job of the build (each pretraining, fine-tune and
/// the vlm) weighs its expected seconds on a training lane, counted in milliseconds as the stage's units, and reports
/// its own fraction done into them, so the ETA follows the work left rather than the steps left.
/// A pretraining under the stop rule does not know its length until the monitor reads: it is expected to take the
/// measured average (<see cref="ExpectedStopSteps"/>), and once it runs past that less its decay, at least its decay
/// more, never past the cap.
/// </summary>
public static class FamilyProgress
{
    /// <summary>Steps a wide pretraining took under the demo's stop rule: the mean of the eight cold runs of family version 6
    /// (Vector512 1,500, 1,150, 1,000, 1,000; AVX2 1,200, 1,000, 1,050, 1,200; docs/demo.md).</summary>
    public const int ExpectedStopSteps = 1140;

    // Seconds per step on one of two busy lanes, from the same cold runs (Vector512): a pretraining 6.1 steps/s, the full
    // fine-tunes 9.4-10.4, the LoRA one 12.3, lab vlm 149 s over its 1,600 tower and stage steps (alone, with the pool's helper).
    private static double PretrainStepSeconds(string size) => size == "wide" ? 0.165 : 0.04;
    private const double FineTuneShare = 0.6, VlmShare = 0.56;

    /// <summary>A pretraining's expected steps: its cap without the stop rule, else the measured average within the cap.</summary>
    public static int ExpectedPretrainSteps(DemoPlan plan, int cap) => plan.PretrainStop == null ? cap : Math.Min(cap, ExpectedStopSteps);

    /// <summary>The steps a pretraining with cap <paramref name="cap"/> is expected to run in all, seen at <paramref name="step"/>.</summary>
    public static int ExpectedTotal(DemoPlan plan, int cap, int step) =>
        plan.PretrainStop is { } stop ? Math.Min(cap, Math.Max(ExpectedPretrainSteps(plan, cap), step + stop.DecaySteps)) : cap;

    /// <summary>The expected lane milliseconds of each job, in the order <see cref="DemoFamily"/> runs them.</summary>
    public static long PretrainUnits(DemoPlan plan, int cap) => Units(ExpectedPretrainSteps(plan, cap), PretrainStepSeconds(plan.Size));
    public static long FineTuneUnits(DemoPlan plan, int steps) => Units(steps, FineTuneShare * PretrainStepSeconds(plan.Size));
    public static long VlmUnits(DemoPlan plan) => Units(VlmSteps(plan), VlmShare * PretrainStepSeconds(plan.Size));

    /// <summary>The steps lab vlm reports: its tower's, then each stage's.</summary>
    public static int VlmSteps(DemoPlan plan)
    {
        var o = plan.VlmPlan.Options("", "", "", 0);
        return o.TowerSteps + o.Stage1Steps + o.Stage2Steps + o.Stage3Steps;
    }

    /// <summary>All jobs' units: the family stage's size.</summary>
    public static long TotalUnits(DemoPlan plan, DemoFamily layout) =>
        layout.Members.Sum(m => m.Parent == null ? PretrainUnits(plan, m.Steps) : FineTuneUnits(plan, m.Steps)) + VlmUnits(plan);

    /// <summary>The family stage's expected wall seconds: its jobs spread over the lanes (the ETA's prior before anything ran).</summary>
    public static double ExpectedSeconds(DemoPlan plan) => TotalUnits(plan, DemoFamily.Layout("", plan, 0)) / 1000.0 / DemoLanes.Count;

    private static long Units(int steps, double seconds) => Math.Max(1, (long)Math.Round(steps * seconds * 1000));

    /// <summary>
    /// A job's step counter into <paramref name="stage"/>'s counter: step s of an expected <paramref name="total"/>(s)
    /// is s / total(s) of the job's <paramref name="units"/>. Never beyond them; <see cref="Done"/> fills the rest.
    /// </summary>
    public sealed class Job(IProgress<int>? stage, long units, Func<int, int> total) : IProgress<int>
    {
        public void Report(int step) => stage?.Report((int)Math.Min(units, (long)(units * (double)step / Math.Max(1, total(step)))));
        /// <summary>The job ended (a stop rule may end it early): all its units are done.</summary>
        public void Done() => stage?.Report((int)units);
    }
}
