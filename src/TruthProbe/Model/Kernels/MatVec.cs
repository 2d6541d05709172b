using TruthProbe.Numerics;
namespace TruthProbe.Model;

/// <summary>
/// y = W x for one token (decoding). Memory-bound: every weight byte is read once, in row order, widened in
/// registers by <see cref="Kernels.DotRow"/>, which prefetches a page ahead of its loads; the threads take contiguous
/// row ranges so each streams its own part of the matrix. (A four-row kernel sharing the x loads measured 2.5x more
/// CPU per byte on Zen 4 than one row at a time, and with the prefetch 11% more on Sapphire Rapids, so rows go one by one.)
/// </summary>
internal static unsafe class MatVec
{
    private struct Job
    {
        public byte* W; public long RowBytes; public WeightDType DType;
        public int Rows, Cols;
        public float* X, Y;
        public SimdPath Path;
    }

    public static void Multiply(WeightMatrix w, ReadOnlySpan<float> x, Span<float> y)
    {
        if (x.Length < w.Cols || y.Length < w.Rows)
            throw new ArgumentException($"matvec [{w.Rows}, {w.Cols}]: x has {x.Length}, y has {y.Length} floats");
        fixed (float* px = x, py = y)
        {
            var job = new Job { W = w.Data, RowBytes = w.RowBytes, DType = w.DType, Rows = w.Rows, Cols = w.Cols, X = px, Y = py, Path = SimdWidth.Current };
            // Below ~1 MB one core streams the matrix in tens of microseconds: less than waking the other.
            WorkerPool.Run(&Part, &job, w.ByteLength >= 1 << 20 ? WorkerPool.Count : 1);
        }
        GC.KeepAlive(w); // the job holds only w.Data: w (and the memory its Owner keeps) must outlive it
    }

    private static void Part(void* args, int part, int parts)
    {
        ref Job j = ref *(Job*)args;
        int r = (int)((long)j.Rows * part / parts), end = (int)((long)j.Rows * (part + 1) / parts);
        for (; r < end; r++) j.Y[r] = Kernels.DotRow(j.W + r * j.RowBytes, j.DType, j.X, j.Cols, j.Path);
    }
}
