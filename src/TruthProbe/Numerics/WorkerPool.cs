using System.Runtime.ExceptionServices;

namespace TruthProbe.Numerics;

/// <summary>
/// A fixed team of threads (one per core, the caller being one of them) for the kernels' work splits.
/// A job is a function pointer plus a pointer to its arguments on the caller's stack, so starting one allocates
/// nothing (Parallel.For allocates per call and costs microseconds, felt 170 times per decoded token).
/// Calls from inside a job, or while another thread's job runs, execute serially on the calling thread.
/// <para>Threads claim parts one at a time, so a helper that has not woken yet (its core busy with the other demo
/// lane or anyone else's work) leaves its parts to the caller instead of making it wait. A part's arithmetic does
/// not depend on the thread that runs it, so the results do not either. Nobody yields to the scheduler while
/// waiting: the static split made the caller spin through SpinWait's sched_yield calls until a descheduled helper
/// ran (24,154 of them in 40 steps of <c>lab pretrain --size wide</c>, 600 a step; the demo's 177 system CPU
/// seconds were mostly these). A helper spins a few microseconds for the next job, then sleeps on a monitor.</para>
/// </summary>
internal static unsafe class WorkerPool
{
    /// <summary>Threads a job is split over: the caller and <c>Count - 1</c> helpers.</summary>
    public static int Count { get; } = Math.Max(1, Environment.ProcessorCount);

    // Spins of Thread.SpinWait(SpinUnit) (pause instructions, no system call) a helper makes before sleeping: ~10-30 us,
    // longer than the gaps between a training step's GEMMs, shorter than anything worth a core.
    private const int HelperSpins = 32, CallerSpins = 128, SpinUnit = 20;
    // The low half of a ticket while its job's fields are being written: no part can be claimed.
    private const int Closed = int.MaxValue;

    private static readonly object Busy = new(), Gate = new();
    private static delegate*<void*, int, int, void> _job;
    private static void* _args;
    private static int _parts, _done, _sleepers;
    // The job's generation in the high half, the next unclaimed part in the low half: a claim is a compare-exchange
    // within one generation, so a helper that wakes after its job has ended can never claim a part of the next one.
    private static long _ticket;
    private static Exception? _failure;
    [ThreadStatic] private static bool _insideJob;

    static WorkerPool()
    {
        for (int i = 1; i < Count; i++)
            new Thread(Serve) { IsBackground = true, Name = $"truthprobe-kernel-{i}" }.Start();
    }

    /// <summary>Runs job(args, part, parts) for every part in [0, parts); returns when all are done.</summary>
    public static void Run(delegate*<void*, int, int, void> job, void* args, int parts)
    {
        if (parts <= 1 || Count == 1 || _insideJob || !Monitor.TryEnter(Busy))
        {
            for (int p = 0; p < parts; p++) job(args, p, parts);
            return;
        }
        try
        {
            long generation;
            lock (Gate)
            {
                // Close the ticket to claims before the job's fields change: a helper that read the last job's
                // exhausted ticket and then this job's larger part count would otherwise claim one of its parts
                // under the old generation, run it twice and count it in this job's _done.
                generation = (Volatile.Read(ref _ticket) >> 32) + 1;
                Interlocked.Exchange(ref _ticket, generation << 32 | Closed);
                _job = job; _args = args; _parts = parts; _failure = null;
                Volatile.Write(ref _done, 0);
                Volatile.Write(ref _ticket, generation << 32);
                if (_sleepers > 0) Monitor.PulseAll(Gate);
            }
            _insideJob = true;
            try { Work(generation); }
            finally
            {
                _insideJob = false;
                // Even when a part threw: every claimed part must end before the args on this stack go away. Only
                // parts a helper has claimed are left, so this is short unless that helper lost its core: then,
                // after ~50-100 us, yield it back.
                for (int k = 0; Volatile.Read(ref _done) < parts; k++)
                    if (k < CallerSpins) Thread.SpinWait(SpinUnit);
                    else Thread.Yield();
            }
            if (_failure != null) ExceptionDispatchInfo.Throw(_failure);
        }
        finally { Monitor.Exit(Busy); }
    }

    /// <summary>Claims and runs parts of job <paramref name="generation"/> until none is left.</summary>
    private static void Work(long generation)
    {
        while (true)
        {
            long ticket = Volatile.Read(ref _ticket);
            // The job's fields are read after the ticket that names its generation, and stay while a part is unclaimed.
            var job = _job;
            void* args = _args;
            int parts = _parts;
            int part = (int)ticket;
            if (ticket >> 32 != generation) return;
            if (part == Closed) { Thread.SpinWait(1); continue; }
            if (part >= parts) return;
            if (Interlocked.CompareExchange(ref _ticket, ticket + 1, ticket) != ticket) continue;
            try { job(args, part, parts); }
            catch (Exception e) { _failure = e; }
            finally { Interlocked.Increment(ref _done); }
        }
    }

    private static void Serve()
    {
        _insideJob = true;
        long seen = 0;
        while (true)
        {
            for (int k = 0; k < HelperSpins && Volatile.Read(ref _ticket) >> 32 == seen; k++) Thread.SpinWait(SpinUnit);
            if (Volatile.Read(ref _ticket) >> 32 == seen)
                lock (Gate)
                {
                    _sleepers++;
                    while (Volatile.Read(ref _ticket) >> 32 == seen) Monitor.Wait(Gate);
                    _sleepers--;
                }
            seen = Volatile.Read(ref _ticket) >> 32;
            Work(seen);
        }
    }
}
