using TruthProbe.Common;

namespace TruthProbe.Tests.Common;

public class StageProgressTests
{
    [Fact]
    public void Share_WeighsStagesByTheirWeight_AndLeavesStagesPassedOverOut()
    {
        var to = new StringWriter();
        using (var p = new StageProgress("demo", [("family", 6), ("scores", 3), ("report", 1)], quiet: false, to: to))
        {
            p.Begin("family", 4);
            p.Advance(2);
            Assert.Equal(0.3, p.Share, 12); // half of 6 of 10
            p.Begin("scores", 3);
            Assert.Equal(0.6, p.Share, 12);
            p.Advance();
            Assert.Equal(0.7, p.Share, 12);
            p.Begin("report", 1);
            Assert.Equal(0.9, p.Share, 12);
        }
        string first = to.ToString().Split('\n')[0];
        Assert.StartsWith("demo: stage 1/3 family 0% ETA --", first);
        Assert.Contains("demo: stage 3/3 report 100%", to.ToString());

        // A cached family: the run starts at the scores, and the ETA counts only what is left to do.
        using var cached = new StageProgress("demo", [("family", 6), ("scores", 3), ("report", 1)], quiet: true);
        cached.Begin("scores", 2);
        Assert.Equal(0.0, cached.Share);
        cached.Advance();
        Assert.Equal(0.375, cached.Share, 12); // 1.5 of the 4 left
    }

    [Fact]
    public void Counters_AdvanceByTheirIncrements_FromSeveralThreads()
    {
        using var p = new StageProgress("demo", [("family", 1)], quiet: true);
        p.Begin("family", 2000);
        Parallel.For(0, 2, _ =>
        {
            var counter = p.Counter();
            for (int step = 1; step <= 1000; step++) counter.Report(step);
        });
        Assert.Equal(1.0, p.Share, 12);
        Assert.Throws<ArgumentException>(() => p.Begin("family", 1)); // stages run forward only
    }
}
