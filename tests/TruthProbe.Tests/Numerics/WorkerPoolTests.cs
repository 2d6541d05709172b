using TruthProbe.Numerics;

namespace TruthProbe.Tests.Numerics;

/// <summary>
/// The pool's contract with the kernels: every part of every job runs exactly once, the job has ended for every
/// part when Run returns, and a part's exception reaches the caller. Parts are claimed by whichever thread gets
/// there first, so these run thousands of short jobs from two callers at once (one gets the team, the other runs
/// serially), where a part claimed twice or left out, or a helper running a finished job's part, would show.
/// </summary>
public unsafe class WorkerPoolTests
{
    private struct Job
    {
        public int* Runs;
        public int Parts;
        public long Sum; // written by parts, so a part still running after Run returns shows as a torn total
    }

    private static void Part(void* args, int part, int parts)
    {
        var job = (Job*)args;
        if (parts != job->Parts) throw new InvalidOperationException("parts differ from the job's");
        Interlocked.Increment(ref job->Runs[part]);
        Thread.SpinWait(part % 3 * 50); // uneven parts, so claims interleave
        Interlocked.Add(ref job->Sum, part + 1);
    }

    private static void Throwing(void* args, int part, int parts)
    {
        if (part == parts - 1) throw new ArithmeticException("part failed");
    }

    private static int RunMany(int seed)
    {
        var rng = new Random(seed);
        int failures = 0;
        var runs = new int[64];
        fixed (int* r = runs)
            for (int k = 0; k < 3000; k++)
            {
                int parts = 2 + rng.Next(20);
                Array.Clear(runs);
                var job = new Job { Runs = r, Parts = parts };
                WorkerPool.Run(&Part, &job, parts);
                long expected = (long)parts * (parts + 1) / 2;
                for (int p = 0; p < parts; p++) if (runs[p] != 1) failures++;
                if (Interlocked.Read(ref job.Sum) != expected) failures++;
            }
        return failures;
    }

    [Fact]
    public void EveryPartRunsOnce_AndHasEndedWhenRunReturns_FromTwoCallersAtOnce()
    {
        var callers = new[] { 1, 2 }.Select(s => Task.Factory.StartNew(() => RunMany(s), TaskCreationOptions.LongRunning)).ToArray();
        Task.WaitAll(callers);
        Assert.Equal([0, 0], callers.Select(c => c.Result));
    }

    [Fact]
    public void APartsException_ReachesTheCaller_AndThePoolStillWorks()
    {
        for (int k = 0; k < 50; k++)
            Assert.Throws<ArithmeticException>(() => WorkerPool.Run(&Throwing, null, WorkerPool.Count + 3));
        Assert.Equal(0, RunMany(3));
    }
}
