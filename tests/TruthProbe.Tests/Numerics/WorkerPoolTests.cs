using TruthProbe.Numerics;

namespace TruthProbe.Tests.Numerics;

/// <summary>
/// The pool's contract with the kernels: every part of every job runs exactly once, the job has ended for every
/// part when Run returns, and a part's exception reaches the caller. Parts are claimed by whichever thread gets
/// there first, so these run hundreds of short jobs from two callers at once (one gets the team, the other runs
/// serially), where a part claimed twice or left out, or a helper running a finished job's part, would show.
/// </summary>
public class WorkerPoolTests
{
    private unsafe struct Job
    {
        public int* Runs;
        public int Parts;
        public long Sum; // written by parts, so a part still running after Run returns shows as a torn total
        public int Caller, HelperParts;
    }

    private static unsafe void Part(void* args, int part, int parts)
    {
        var job = (Job*)args;
        if (parts != job->Parts) throw new InvalidOperationException("parts differ from the job's");
        Interlocked.Increment(ref job->Runs[part]);
        if (Environment.CurrentManagedThreadId != job->Caller)
        {
            Interlocked.Increment(ref job->HelperParts);
            Thread.SpinWait(1500); // a helper's part outlasts the caller's remaining ones
        }
        else
        {
            // The caller waits (up to 2 ms) for a helper to hold a part, so that a helper's part is still running
            // while the caller runs out of parts: the moment a pool that returned early would be caught in.
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (Volatile.Read(ref job->HelperParts) == 0 && clock.Elapsed.TotalMilliseconds < 2) Thread.SpinWait(20);
        }
        Thread.SpinWait(100 + part % 3 * 200); // uneven parts of a few microseconds
        Interlocked.Add(ref job->Sum, part + 1);
    }

    private static unsafe void Throwing(void* args, int part, int parts)
    {
        if (part == parts - 1) throw new ArithmeticException("part failed");
    }

    private static unsafe int RunMany(int seed)
    {
        var rng = new Random(seed);
        int failures = 0;
        var runs = new int[64];
        fixed (int* r = runs)
            for (int k = 0; k < 100; k++)
            {
                int parts = 2 + rng.Next(20);
                Array.Clear(runs);
                var job = new Job { Runs = r, Parts = parts, Caller = Environment.CurrentManagedThreadId };
                WorkerPool.Run(&Part, &job, parts);
                long expected = (long)parts * (parts + 1) / 2;
                for (int p = 0; p < parts; p++) if (runs[p] != 1) failures++;
                if (Interlocked.Read(ref job.Sum) != expected) failures++;
            }
        return failures;
    }

    [Fact]
    public async Task EveryPartRunsOnce_AndHasEndedWhenRunReturns_FromTwoCallersAtOnce()
    {
        var callers = new[] { 1, 2 }.Select(s => Task.Factory.StartNew(() => RunMany(s), TaskCreationOptions.LongRunning));
        int[] failures = await Task.WhenAll(callers);
        Assert.Equal(new[] { 0, 0 }, failures);
    }

    [Fact]
    public unsafe void APartsException_ReachesTheCaller_AndThePoolStillWorks()
    {
        for (int k = 0; k < 50; k++)
            Assert.Throws<ArithmeticException>(() => WorkerPool.Run(&Throwing, null, WorkerPool.Count + 3));
        Assert.Equal(0, RunMany(3));
    }
}
