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
    }

    /// <summary>x is [tokens, W.Cols], y is [tokens, W.Rows], row-major.</summary>
    public static void Multiply(WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        if (x.Length < (long)tokens * w.Cols || y.Length < (long)tokens * w.Rows)
            throw new ArgumentException($"batched matvec [{w.Rows}, {w.Cols}] with {tokens} tokens: x has {x.Length}, y has {y.Length} floats");
        fixed (float* px = x, py = y)
        {
            var job = new Job { W = w.Data, RowBytes = w.RowBytes, DType = w.DType, Rows = w.Rows, Cols = w.Cols, Tokens = tokens, X = px, Y = py };
            // The same threshold as one token's matvec, on the work of all tokens: waking the other core costs more below it.
            WorkerPool.Run(&Part, &job, w.ByteLength * tokens >= 1 << 20 ? WorkerPool.Count : 1);
        }
        GC.KeepAlive(w); // the job holds only w.Data: w (and the memory its Owner keeps) must outlive it
    }

    private static void Part(void* args, int part, int parts)
    {
        ref Job j = ref *(Job*)args;
        int r = (int)((long)j.Rows * part / parts), end = (int)((long)j.Rows * (part + 1) / parts);
        for (; r < end; r++)
        {
            byte* row = j.W + r * j.RowBytes;
            for (int b = 0; b < j.Tokens; b++)
                j.Y[(long)b * j.Rows + r] = Kernels.DotRow(row, j.DType, j.X + (long)b * j.Cols, j.Cols);
        }
    }
}
