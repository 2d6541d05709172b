using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TruthProbe.Model;
using TruthProbe.Numerics;

namespace TruthProbe.Bench;

/// <summary>
/// The memory-bandwidth floor of a decoding step, measured on the weights themselves: every matrix's bytes read once,
/// from the same mapped pages, split over the same threads in the same contiguous row ranges as <see cref="MatVec"/>,
/// with loads and nothing else, prefetching a page ahead as the mat-vec does. A parallel float32 sum over a fresh array
/// (the earlier probe) read 20-40% slower per CPU-second than this on Zen 4 and slower than decode itself (its pages and
/// its adds differ from weight streaming), so it was no ceiling; 256-bit loads read ~7% faster per CPU-second than 512-bit
/// ones there ("Decode on both widths" in docs/performance.md). Without the prefetch the read was 10-20% slower on
/// Sapphire Rapids than with it, and slower than the prefetching mat-vec ("Decode on Intel: prefetch").
/// </summary>
internal static unsafe class WeightReadFloor
{
    private struct Job
    {
        public byte* W;
        public long RowBytes;
        public int Rows;
        public ulong Sink;
    }

    /// <summary>Seconds one pass over all of <paramref name="matrices"/> takes.</summary>
    public static double PassSeconds(IReadOnlyList<WeightMatrix> matrices)
    {
        var sw = Stopwatch.StartNew();
        foreach (var m in matrices)
        {
            var job = new Job { W = m.Data, RowBytes = m.RowBytes, Rows = m.Rows };
            // The threshold of MatVec: a matrix under 1 MB is read by one thread there, so here too.
            WorkerPool.Run(&Part, &job, m.ByteLength >= 1 << 20 ? WorkerPool.Count : 1);
            GC.KeepAlive(m);
        }
        return sw.Elapsed.TotalSeconds;
    }

    private static void Part(void* args, int part, int parts)
    {
        ref Job j = ref *(Job*)args;
        long start = j.Rows * (long)part / parts * j.RowBytes, end = j.Rows * (long)(part + 1) / parts * j.RowBytes;
        // Stored so that the loads cannot be dropped as dead code.
        Interlocked.Or(ref j.Sink, Read(j.W + start, end - start));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ulong Read(byte* p, long bytes)
    {
        Vector256<ulong> a0 = default, a1 = default;
        long i = 0;
        for (; i + 64 <= bytes; i += 64)
        {
            Kernels.PrefetchAhead(p + i);
            a0 |= Vector256.Load((ulong*)(p + i));
            a1 |= Vector256.Load((ulong*)(p + i + 32));
        }
        ulong tail = 0;
        for (; i < bytes; i++) tail |= p[i];
        return (a0 | a1).GetElement(0) | tail;
    }
}
