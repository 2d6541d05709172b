using System.Runtime.ExceptionServices;
using TruthProbe.Common;

namespace TruthProbe.Demo;

/// <summary>
/// How the demo keeps the 2-core machines busy: jobs taken in list order by two lanes (the family's trainings, the
/// models' scores), and pieces of the analysis that run beside the progress line's current stage and are counted into
/// their own stage when the line reaches it. Every job's arithmetic is its own (the kernel pool runs a busy GEMM's same
/// parts on the caller), so results do not depend on which lane ran what or when.
/// </summary>
public static class DemoLanes
{
    /// <summary>Two lanes on the 2-core machines, one on one core.</summary>
    public static int Count => Math.Clamp(Environment.ProcessorCount, 1, 2);

    /// <summary>A lane's job: <paramref name="Work"/>, which may start only once <paramref name="After"/> (when given) has completed.</summary>
    public sealed record Job(Action Work, Task? After = null);

    /// <summary>Runs <paramref name="jobs"/> on <see cref="Count"/> lanes, each lane taking the next job when free; rethrows the first failure as thrown.</summary>
    public static void Run(IReadOnlyList<Action> jobs) => Run(jobs.Select(work => new Job(work)).ToList());

    /// <summary>
    /// Runs <paramref name="jobs"/> on <see cref="Count"/> lanes: a free lane takes the first job of the list that can start
    /// (its <see cref="Job.After"/> completed), and waits only when none can; rethrows the first failure as thrown. A job
    /// that waits for another no longer holds a lane that a later, independent job could use.
    /// </summary>
    public static void Run(IReadOnlyList<Job> jobs)
    {
        var taken = new bool[jobs.Count];
        Job? Next()
        {
            while (true)
            {
                Task[] blocking;
                lock (taken)
                {
                    for (int j = 0; j < jobs.Count; j++)
                        if (!taken[j] && (jobs[j].After?.IsCompleted ?? true))
                        {
                            taken[j] = true;
                            return jobs[j];
                        }
                    blocking = jobs.Where((job, j) => !taken[j]).Select(job => job.After!).ToArray();
                }
                if (blocking.Length == 0) return null;
                Task.WaitAny(blocking);
            }
        }
        var lanes = Enumerable.Range(0, Count).Select(_ => Task.Factory.StartNew(() =>
        {
            for (Job? job; (job = Next()) != null;) job.Work();
        }, TaskCreationOptions.LongRunning)).ToArray();
        Wait(lanes);
    }

    /// <summary>Waits for every task, then rethrows the first failure as it was thrown (a UserError stays one).</summary>
    public static void Wait(params Task[] tasks)
    {
        try { Task.WaitAll(tasks); }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
    }

    /// <summary>Starts <paramref name="work"/> on its own thread, beside the caller's.</summary>
    public static Task<T> Aside<T>(Func<T> work) => Task.Factory.StartNew(work, TaskCreationOptions.LongRunning);
    public static Task Aside(Action work) => Task.Factory.StartNew(work, TaskCreationOptions.LongRunning);

    /// <summary>
    /// Waits for <paramref name="task"/>; when it failed, also for <paramref name="others"/> (they write into the same
    /// output folder, so nothing may still be writing when the failure surfaces), then rethrows its failure.
    /// </summary>
    public static void Join(Task task, params Task[] others)
    {
        Settle(task);
        if (!task.IsFaulted) return;
        Settle(others);
        Wait(task);
    }

    /// <summary>Waits for the tasks whether they fail or not.</summary>
    public static void Settle(params Task[] tasks) => Task.WaitAny(Task.WhenAll(tasks));

    /// <summary>
    /// A stage of <paramref name="progress"/> whose work runs ahead of the line: its advances are held until
    /// <see cref="Begin"/> makes it the line's current stage, then counted at once.
    /// </summary>
    public sealed class AheadStage(StageProgress progress, string name, long units)
    {
        private readonly object _gate = new();
        private long _early;
        private bool _begun;

        public void Advance()
        {
            lock (_gate)
                if (_begun) progress.Advance();
                else _early++;
        }

        public void Begin()
        {
            lock (_gate)
            {
                progress.Begin(name, units);
                if (_early > 0) progress.Advance(_early);
                _begun = true;
            }
        }
    }
}
