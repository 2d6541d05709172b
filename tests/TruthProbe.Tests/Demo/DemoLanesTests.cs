using TruthProbe.Common;
using TruthProbe.Demo;

namespace TruthProbe.Tests.Demo;

public class DemoLanesTests
{
    [Fact]
    public void AStageThatRanAhead_CountsItsEarlyAdvances_WhenTheLineReachesIt_AndLiveOnesAfter()
    {
        using var progress = new StageProgress("t", [("first", 1), ("ahead", 1)], quiet: true);
        var ahead = new DemoLanes.AheadStage(progress, "ahead", 4);
        progress.Begin("first", 1);
        ahead.Advance();
        ahead.Advance();
        Assert.Equal(0, progress.Share);          // held: the line is still on its first stage
        progress.Advance();
        Assert.Equal(0.5, progress.Share);
        ahead.Begin();
        Assert.Equal(0.75, progress.Share);       // 2 of 4 units of the second half
        ahead.Advance();
        Assert.Equal(0.875, progress.Share);
    }

    [Fact]
    public void Run_TakesEveryJobOnce_AndJoin_RethrowsAFailureAsThrown_AfterTheOthersSettled()
    {
        var ran = new int[20];
        DemoLanes.Run(Enumerable.Range(0, ran.Length).Select(i => (Action)(() => Interlocked.Increment(ref ran[i]))).ToList());
        Assert.All(ran, n => Assert.Equal(1, n));

        var release = new ManualResetEventSlim();
        bool otherFinished = false;
        var other = DemoLanes.Aside(() => { release.Wait(); Thread.Sleep(50); otherFinished = true; return 0; });
        var failing = DemoLanes.Aside<int>(() => { release.Set(); throw new UserError("bad row") { Field = "x" }; });
        var e = Assert.Throws<UserError>(() => DemoLanes.Join(failing, other));
        Assert.Equal("bad row", e.Message);
        Assert.True(otherFinished);
    }

    [Fact]
    public void Run_TakesALaterJobThatCanStart_BeforeOneThatWaits_AndRunsTheWaitingOneOnceItsTaskCompleted()
    {
        // The first job waits for the second: a lane that took jobs in list order and waited inside them would wait
        // forever on a 1-core machine (one lane), and hold a lane idle on two.
        var order = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var released = new TaskCompletionSource();
        DemoLanes.Run([
            new DemoLanes.Job(() => order.Enqueue("waiting"), released.Task),
            new DemoLanes.Job(() => { order.Enqueue("independent"); released.SetResult(); }),
            new DemoLanes.Job(() => order.Enqueue("last")),
        ]);
        var ran = order.ToList();
        Assert.Equal(["independent", "last", "waiting"], ran.Order(StringComparer.Ordinal));
        Assert.True(ran.IndexOf("independent") < ran.IndexOf("waiting"));
    }
}
