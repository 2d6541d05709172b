using System.Runtime.ExceptionServices;

namespace TruthProbe.Numerics;

/// <summary>
/// A fixed team of threads (one per core, the caller being one of them) for the kernels' static work splits.
/// A job is a function pointer plus a pointer to its arguments on the caller's stack, so starting one allocates
/// nothing (Parallel.For allocates per call and costs microseconds, felt 170 times per decoded token).
/// Calls from inside a job, or while another thread's job runs, execute serially on the calling thread.
/// </summary>
internal static unsafe class WorkerPool
{
    /// <summary>Threads a job is split over: the caller and <c>Count - 1</c> helpers.</summary>
    public static int Count { get; } = Math.Max(1, Environment.ProcessorCount);

    private static readonly object Busy = new();
    private static readonly SemaphoreSlim[] Wake = new SemaphoreSlim[Count - 1];
    private static delegate*<void*, int, int, void> _job;
    private static void* _args;
    private static int _parts, _pending;
    private static Exception? _failure;
    [ThreadStatic] private static bool _insideJob;

    static WorkerPool()
    {
        for (int i = 0; i < Wake.Length; i++)
        {
            Wake[i] = new SemaphoreSlim(0);
            int member = i + 1;
            new Thread(() => Serve(member)) { IsBackground = true, Name = $"truthprobe-kernel-{member}" }.Start();
        }
    }

    /// <summary>Runs job(args, part, parts) for every part in [0, parts); returns when all are done.
    /// Member m of the team runs parts m, m + Count, ...</summary>
    public static void Run(delegate*<void*, int, int, void> job, void* args, int parts)
    {
        if (parts <= 1 || Count == 1 || _insideJob || !Monitor.TryEnter(Busy))
        {
            for (int p = 0; p < parts; p++) job(args, p, parts);
            return;
        }
        try
        {
            int helpers = Math.Min(parts, Count) - 1;
            _job = job; _args = args; _parts = parts; _failure = null;
            Volatile.Write(ref _pending, helpers);
            for (int i = 0; i < helpers; i++) Wake[i].Release();
            _insideJob = true;
            try { for (int p = 0; p < parts; p += Count) job(args, p, parts); }
            finally
            {
                _insideJob = false;
                // Even when the caller's part threw: the helpers read args on the caller's stack until done.
                // Spin, never sleep: on a balanced split they finish within microseconds of the caller.
                var spin = new SpinWait();
                while (Volatile.Read(ref _pending) != 0) spin.SpinOnce(sleep1Threshold: -1);
            }
            if (_failure != null) ExceptionDispatchInfo.Throw(_failure);
        }
        finally { Monitor.Exit(Busy); }
    }

    private static void Serve(int member)
    {
        _insideJob = true;
        while (true)
        {
            Wake[member - 1].Wait();
            try { for (int p = member; p < _parts; p += Count) _job(_args, p, _parts); }
            catch (Exception e) { _failure = e; }
            Interlocked.Decrement(ref _pending);
        }
    }
}
