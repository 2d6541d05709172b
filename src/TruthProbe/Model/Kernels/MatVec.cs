using System.Runtime.Intrinsics;

namespace TruthProbe.Model;

/// <summary>
/// y = W x for one token (decoding). Memory-bound: every weight byte is read once, in row order, widened in
/// registers, four rows at a time against the same x loads; the threads take contiguous row ranges so each
/// streams its own part of the matrix.
/// </summary>
public static unsafe class MatVec
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
            var job = new Job { W = w.Data, RowBytes = w.RowBytes, DType = w.DType, Rows = w.Rows, Cols = w.Cols, X = px, Y = py, Path = Gemm.Resolve(Gemm.Forced) };
            bool worthSplitting = (long)w.Rows * w.Cols >= 1 << 15;
            WorkerPool.Run(&Part, &job, worthSplitting ? WorkerPool.Count : 1);
        }
        GC.KeepAlive(w); // the job holds only w.Data: w (and the memory its Owner keeps) must outlive it
    }

    private static void Part(void* args, int part, int parts)
    {
        ref Job j = ref *(Job*)args;
        // Ranges in multiples of 4 rows so only the last part has a ragged end.
        int groups = (j.Rows + 3) / 4;
        int r = (int)((long)groups * part / parts) * 4, end = Math.Min(j.Rows, (int)((long)groups * (part + 1) / parts) * 4);
        if (j.DType == WeightDType.BF16 && j.Path == SimdPath.Vector512)
            for (; r + 4 <= end; r += 4) Dot4BFloat16((ushort*)(j.W + r * j.RowBytes), j.RowBytes / 2, j.X, j.Cols, j.Y + r);
        for (; r < end; r++) j.Y[r] = Kernels.DotRow(j.W + r * j.RowBytes, j.DType, j.X, j.Cols);
    }

    /// <summary>Four consecutive bf16 rows dotted with x: each x vector is loaded once for four rows.</summary>
    private static void Dot4BFloat16(ushort* w, long stride, float* x, int n, float* y)
    {
        ushort* w0 = w, w1 = w + stride, w2 = w + 2 * stride, w3 = w + 3 * stride;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            var xlo = Vector512.Load(x + i);
            var xhi = Vector512.Load(x + i + 16);
            var (lo, hi) = Vector512.Widen(Vector512.Load(w0 + i));
            a0 = Vector512.FusedMultiplyAdd(Vector512.ShiftLeft(lo, 16).AsSingle(), xlo, a0);
            b0 = Vector512.FusedMultiplyAdd(Vector512.ShiftLeft(hi, 16).AsSingle(), xhi, b0);
            (lo, hi) = Vector512.Widen(Vector512.Load(w1 + i));
            a1 = Vector512.FusedMultiplyAdd(Vector512.ShiftLeft(lo, 16).AsSingle(), xlo, a1);
            b1 = Vector512.FusedMultiplyAdd(Vector512.ShiftLeft(hi, 16).AsSingle(), xhi, b1);
            (lo, hi) = Vector512.Widen(Vector512.Load(w2 + i));
            a2 = Vector512.FusedMultiplyAdd(Vector512.ShiftLeft(lo, 16).AsSingle(), xlo, a2);
            b2 = Vector512.FusedMultiplyAdd(Vector512.ShiftLeft(hi, 16).AsSingle(), xhi, b2);
            (lo, hi) = Vector512.Widen(Vector512.Load(w3 + i));
            a3 = Vector512.FusedMultiplyAdd(Vector512.ShiftLeft(lo, 16).AsSingle(), xlo, a3);
            b3 = Vector512.FusedMultiplyAdd(Vector512.ShiftLeft(hi, 16).AsSingle(), xhi, b3);
        }
        float s0 = Vector512.Sum(a0 + b0), s1 = Vector512.Sum(a1 + b1), s2 = Vector512.Sum(a2 + b2), s3 = Vector512.Sum(a3 + b3);
        for (; i < n; i++)
        {
            float v = x[i];
            s0 += BitConverter.Int32BitsToSingle(w0[i] << 16) * v; s1 += BitConverter.Int32BitsToSingle(w1[i] << 16) * v;
            s2 += BitConverter.Int32BitsToSingle(w2[i] << 16) * v; s3 += BitConverter.Int32BitsToSingle(w3[i] << 16) * v;
        }
        y[0] = s0; y[1] = s1; y[2] = s2; y[3] = s3;
    }
}
