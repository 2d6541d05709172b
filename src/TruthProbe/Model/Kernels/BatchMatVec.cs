using System.Runtime.Intrinsics;
using TruthProbe.Numerics;
namespace TruthProbe.Model;

/// <summary>
/// y[b] = W x[b] for the B tokens of a batched decoding step (one token of each of B sequences): each thread
/// streams its contiguous range of W's rows from memory once and dots every row with all B inputs while the
/// row sits in L1. Each output is the same <see cref="Kernels.DotRow"/> as the one-token <see cref="MatVec"/>
/// computes, in the same order, so a sequence decoded in a batch gets the logits it gets alone, bit for bit
/// (a GEMM's single FMA chain per output sums in another order and can flip a greedy near-tie).
/// </summary>
internal static unsafe class BatchMatVec
{
    private struct Job
    {
        public byte* W; public long RowBytes; public WeightDType DType;
        public int Rows, Cols, Tokens;
        public float* X, Y;
        public SimdPath Path;
    }

    /// <summary>x is [tokens, W.Cols], y is [tokens, W.Rows], row-major.</summary>
    public static void Multiply(WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        if (x.Length < (long)tokens * w.Cols || y.Length < (long)tokens * w.Rows)
            throw new ArgumentException($"batched matvec [{w.Rows}, {w.Cols}] with {tokens} tokens: x has {x.Length}, y has {y.Length} floats");
        fixed (float* px = x, py = y)
        {
            var job = new Job { W = w.Data, RowBytes = w.RowBytes, DType = w.DType, Rows = w.Rows, Cols = w.Cols, Tokens = tokens, X = px, Y = py, Path = SimdWidth.Current };
            // The same threshold as one token's matvec, on the work of all tokens: waking the other core costs more below it.
            WorkerPool.Run(&Part, &job, w.ByteLength * tokens >= 1 << 20 ? WorkerPool.Count : 1);
        }
        GC.KeepAlive(w); // the job holds only w.Data: w (and the memory its Owner keeps) must outlive it
    }

    private static void Part(void* args, int part, int parts)
    {
        ref Job j = ref *(Job*)args;
        int r = (int)((long)j.Rows * part / parts), end = (int)((long)j.Rows * (part + 1) / parts);
        bool fused = j.DType == WeightDType.BF16 && j.Path != SimdPath.Generic;
        float* sums = stackalloc float[4];
        for (; r < end; r++)
        {
            byte* row = j.W + r * j.RowBytes;
            int b = 0;
            if (fused)
                for (; b + 4 <= j.Tokens; b += 4)
                {
                    float* x = j.X + (long)b * j.Cols;
                    DotBFloat16x4((ushort*)row, x, x + j.Cols, x + 2L * j.Cols, x + 3L * j.Cols, j.Cols, sums, j.Path);
                    for (int i = 0; i < 4; i++) j.Y[(long)(b + i) * j.Rows + r] = sums[i];
                }
            for (; b < j.Tokens; b++)
                j.Y[(long)b * j.Rows + r] = Kernels.DotRow(row, j.DType, j.X + (long)b * j.Cols, j.Cols, j.Path);
        }
    }

    /// <summary>
    /// A bf16 row dotted with four inputs, the row widened once for all four: per input the same two accumulators,
    /// horizontal sum and scalar tail as <see cref="Kernels.DotRow"/>'s bf16 kernel, so each sum is its bits. Re-widening
    /// the row for every input made a batch of 8 cost 1.65x less CPU per token than one at a time instead of several times less.
    /// </summary>
    private static void DotBFloat16x4(ushort* w, float* x0, float* x1, float* x2, float* x3, int n, float* sums, SimdPath path)
    {
        int i = 0;
        if (path == SimdPath.Vector512)
        {
            Vector512<float> a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default, a30 = default, a31 = default;
            for (; i + 32 <= n; i += 32)
            {
                Kernels.PrefetchAhead(w + i);
                var wl = Kernels.BFloat16x16(w + i);
                var wh = Kernels.BFloat16x16(w + i + 16);
                a00 = Vector512.FusedMultiplyAdd(wl, Vector512.Load(x0 + i), a00); a01 = Vector512.FusedMultiplyAdd(wh, Vector512.Load(x0 + i + 16), a01);
                a10 = Vector512.FusedMultiplyAdd(wl, Vector512.Load(x1 + i), a10); a11 = Vector512.FusedMultiplyAdd(wh, Vector512.Load(x1 + i + 16), a11);
                a20 = Vector512.FusedMultiplyAdd(wl, Vector512.Load(x2 + i), a20); a21 = Vector512.FusedMultiplyAdd(wh, Vector512.Load(x2 + i + 16), a21);
                a30 = Vector512.FusedMultiplyAdd(wl, Vector512.Load(x3 + i), a30); a31 = Vector512.FusedMultiplyAdd(wh, Vector512.Load(x3 + i + 16), a31);
            }
            sums[0] = Vector512.Sum(a00 + a01); sums[1] = Vector512.Sum(a10 + a11);
            sums[2] = Vector512.Sum(a20 + a21); sums[3] = Vector512.Sum(a30 + a31);
        }
        else
        {
            Vector256<float> a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default, a30 = default, a31 = default;
            for (; i + 16 <= n; i += 16)
            {
                Kernels.PrefetchAhead(w + i); // twice a cache line: a test per iteration would cost more than the repeated hint
                var wl = Kernels.BFloat16x8(w + i);
                var wh = Kernels.BFloat16x8(w + i + 8);
                a00 = Vector256.FusedMultiplyAdd(wl, Vector256.Load(x0 + i), a00); a01 = Vector256.FusedMultiplyAdd(wh, Vector256.Load(x0 + i + 8), a01);
                a10 = Vector256.FusedMultiplyAdd(wl, Vector256.Load(x1 + i), a10); a11 = Vector256.FusedMultiplyAdd(wh, Vector256.Load(x1 + i + 8), a11);
                a20 = Vector256.FusedMultiplyAdd(wl, Vector256.Load(x2 + i), a20); a21 = Vector256.FusedMultiplyAdd(wh, Vector256.Load(x2 + i + 8), a21);
                a30 = Vector256.FusedMultiplyAdd(wl, Vector256.Load(x3 + i), a30); a31 = Vector256.FusedMultiplyAdd(wh, Vector256.Load(x3 + i + 8), a31);
            }
            sums[0] = Vector256.Sum(a00 + a01); sums[1] = Vector256.Sum(a10 + a11);
            sums[2] = Vector256.Sum(a20 + a21); sums[3] = Vector256.Sum(a30 + a31);
        }
        for (int b = 0; b < 4; b++)
        {
            float* x = b == 0 ? x0 : b == 1 ? x1 : b == 2 ? x2 : x3;
            float sum = sums[b];
            for (int k = i; k < n; k++) sum += BitConverter.Int32BitsToSingle(w[k] << 16) * x[k];
            sums[b] = sum;
        }
    }
}
