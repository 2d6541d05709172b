using TruthProbe.Numerics;

namespace TruthProbe.Model;

/// <summary>
/// The row-wise steps between a prefill's GEMMs (norms, RoPE, SwiGLU, residual adds) split over the cores in
/// contiguous ranges of rows. On one thread they left the other core idle between the parallel GEMMs and attention.
/// Each row's arithmetic is that of the one-thread loop, so the outputs do not depend on the split.
/// </summary>
internal static unsafe class RowSplit
{
    /// <summary>Below this many values the calling thread does it alone: waking a helper costs microseconds, as much as
    /// a decode step's norm.</summary>
    private const long MinValues = 1 << 15;

    /// <summary>Ranges per thread: claimed one at a time, so a helper that lost its core leaves its share to the others.</summary>
    private const int RangesPerThread = 4;

    private struct Job
    {
        public delegate*<void*, int, int, void> Rows;
        public void* Args;
        public int Count;
    }

    /// <summary>rows(args, first, end) over [0, <paramref name="count"/>) rows of <paramref name="width"/> values each.</summary>
    public static void Run(delegate*<void*, int, int, void> rows, void* args, int count, int width)
    {
        int parts = Math.Min(count, WorkerPool.Count * RangesPerThread);
        if ((long)count * width < MinValues || parts <= 1) { rows(args, 0, count); return; }
        var job = new Job { Rows = rows, Args = args, Count = count };
        WorkerPool.Run(&Part, &job, parts);
    }

    private static void Part(void* args, int part, int parts)
    {
        ref Job j = ref *(Job*)args;
        j.Rows(j.Args, (int)((long)j.Count * part / parts), (int)((long)j.Count * (part + 1) / parts));
    }
}
