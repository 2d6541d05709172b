using TruthProbe.Demo;

namespace TruthProbe.Tests.Demo;

public class FamilyProgressTests
{
    private sealed class Recorder : IProgress<int>
    {
        public List<int> Values { get; } = [];
        public void Report(int value) => Values.Add(value);
    }

    [Fact]
    public void APretrainingUnderTheStopRule_IsExpectedToTakeTheMeasuredAverage_ThenAtLeastItsDecayMore_NeverPastTheCap()
    {
        var plan = DemoPlan.Default; // cap 1,500, decay 200
        Assert.Equal(1140, FamilyProgress.ExpectedTotal(plan, 1500, 0));
        Assert.Equal(1140, FamilyProgress.ExpectedTotal(plan, 1500, 940));
        Assert.Equal(1141, FamilyProgress.ExpectedTotal(plan, 1500, 941));   // past the average less its decay: 200 more
        Assert.Equal(1500, FamilyProgress.ExpectedTotal(plan, 1500, 1400));  // the cap
        // Without the stop rule the cap is the length; a cap under the average is the length too.
        Assert.Equal(1500, FamilyProgress.ExpectedTotal(plan with { PretrainHoldUntilReading = null }, 1500, 10));
        Assert.Equal(800, FamilyProgress.ExpectedTotal(plan, 800, 10));
    }

    [Fact]
    public void AJobReportsItsShareOfItsUnits_NeverMoreThanThem_AndAllOfThemWhenDone()
    {
        var plan = DemoPlan.Default;
        var stage = new Recorder();
        var job = new FamilyProgress.Job(stage, 1140, step => FamilyProgress.ExpectedTotal(plan, 1500, step));
        job.Report(570);    // half of the expected 1,140 steps
        job.Report(1140);   // the average reached: 1,340 now expected
        job.Report(1500);
        job.Done();
        Assert.Equal([570, 969, 1140, 1140], stage.Values);
    }

    [Fact]
    public void TheFamilyStage_WeighsEveryJob_TheVlmIncluded()
    {
        var plan = DemoPlan.Default;
        // 4 pretrainings at 1,140 x 0.165 s; fine-tunes 400 + 150 + 150 steps at 0.6 of that; the vlm's 300 + 400 + 900 steps at 0.56.
        long expected = 4 * 188_100 + (long)Math.Round(400 * 0.099 * 1000) + 2 * (long)Math.Round(150 * 0.099 * 1000) + (long)Math.Round(1600 * 0.56 * 0.165 * 1000);
        Assert.Equal(1600, FamilyProgress.VlmSteps(plan));
        Assert.Equal(expected, FamilyProgress.TotalUnits(plan, DemoFamily.Layout("", plan, 1)));
    }
}
