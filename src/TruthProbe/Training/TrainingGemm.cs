using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TruthProbe.Model;
using TruthProbe.Numerics;

namespace TruthProbe.Training;

/// <summary>
/// Row-major fp32 matrix products for training, span in / span out: C = A·B, C = A·Bᵀ, C = Aᵀ·B, each
/// optionally accumulating into C. One register-tiled micro-kernel (rows x 2 vectors of C held in accumulators while
/// k streams: 12 x 32 in 24 of AVX-512's 32 registers, 6 x 16 in 12 of AVX2's 16, see <see cref="Lanes"/>) serves all three: A is read
/// through a row stride and a column stride, so Aᵀ costs nothing; Bᵀ is transposed into a per-thread scratch
/// buffer (B is always a weight matrix there, small next to the product). Rows of C are split statically over
/// the engine's worker threads. Every element of C is one fused multiply-add chain in k order, so the result
/// is the same bits at every vector width.
/// </summary>
internal static unsafe class TrainingGemm
{
    private const int RowBlock = 6;
    /// <summary>Bᵀ's scratch rows are padded to this many floats: a whole tile (two vectors) at every width.</summary>
    private const int Pad = 32;
    /// <summary>
    /// Rows of C per pass over its column blocks: the chunk's rows of A (48 x K floats) stay in L1/L2 while every
    /// column block uses them, instead of streaming A from memory once per column block.
    /// </summary>
    private const int RowChunk = 48;
    /// <summary>
    /// Depth of one pass over C. Weight gradients dW = dYᵀ·X run k over every position of the batch (thousands):
    /// in slices of this depth, the slice of X under a column block (32 KB at 32 columns) stays in cache while every row
    /// block of C uses it, instead of streaming from memory once per row block.
    /// </summary>
    private const int DepthBlock = 256;
    /// <summary>Below this many multiply-adds a product runs on the calling thread: forking costs more.</summary>
    private const long ParallelThreshold = 1 << 16;

    [ThreadStatic] private static float[]? _transposeScratch;

    /// <summary>C[m,n] (+)= A[m,k] · B[k,n].</summary>
    public static void MatMul(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int k, int n, bool accumulate = false)
    {
        Check(a.Length >= (long)m * k, b.Length >= (long)k * n, c.Length >= (long)m * n);
        fixed (float* pa = a, pb = b, pc = c) Run(pa, k, 1, pb, n, pc, m, k, n, accumulate);
    }

    /// <summary>C[m,n] (+)= Aᵀ · B with A stored [k,m] and B [k,n]: the weight gradient dW = dYᵀ·X.</summary>
    public static void MatMulTransA(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int k, int n, bool accumulate = false)
    {
        Check(a.Length >= (long)k * m, b.Length >= (long)k * n, c.Length >= (long)m * n);
        fixed (float* pa = a, pb = b, pc = c) Run(pa, 1, m, pb, n, pc, m, k, n, accumulate);
    }

    /// <summary>
    /// C[m,n] (+)= A · Bᵀ with A stored [m,k] and B [n,k]: a linear layer y = x·Wᵀ. Bᵀ goes to scratch with rows
    /// padded to whole tiles, so odd widths (vocabularies) also run on the 6-row tiles. With an
    /// <paramref name="addend"/> [m,n] (a residual stream), C = A·Bᵀ + addend: each sum plus its addend, the bits
    /// of a separate add, without its pass over memory on one thread.
    /// </summary>
    public static void MatMulTransB(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int k, int n, bool accumulate = false, ReadOnlySpan<float> addend = default)
    {
        Check(a.Length >= (long)m * k, b.Length >= (long)n * k, c.Length >= (long)m * n);
        if (!addend.IsEmpty && (accumulate || addend.Length < (long)m * n)) throw new ArgumentException("an addend needs a full [m, n] span and no accumulation");
        int padded = (n + Pad - 1) / Pad * Pad;
        if (_transposeScratch == null || _transposeScratch.Length < k * padded) _transposeScratch = new float[k * padded];
        var bt = _transposeScratch.AsSpan(0, k * padded);
        TransposePadded(b, bt, n, k, padded);
        fixed (float* pa = a, pb = bt, pc = c, pd = addend) Run(pa, k, 1, pb, padded, pc, m, k, n, accumulate, pd);
    }

    /// <summary>dst[cols, padded] = src[rows, cols]ᵀ, columns rows..padded zero.</summary>
    private static void TransposePadded(ReadOnlySpan<float> src, Span<float> dst, int rows, int cols, int padded)
    {
        for (int j = 0; j < cols; j++) dst.Slice(j * padded + rows, padded - rows).Clear();
        for (int i = 0; i < rows; i++)
        {
            var row = src.Slice(i * cols, cols);
            for (int j = 0; j < cols; j++) dst[j * padded + i] = row[j];
        }
    }

    private static void Check(bool a, bool b, bool c)
    {
        if (!a || !b || !c) throw new ArgumentException("matrix span shorter than its stated shape");
    }

    /// <summary>One product, read by every worker of the <see cref="WorkerPool"/>.</summary>
    private struct Job
    {
        public float* A, B, C, Addend;
        public int ARow, ACol, BRow, M, K, N;
        public bool Accumulate;
    }

    /// <param name="bRow">B's row stride: n, or more when B is padded scratch (then the column tail runs on vectors too).</param>
    private static void Run(float* a, int aRow, int aCol, float* b, int bRow, float* c, int m, int k, int n, bool accumulate, float* addend = null)
    {
        var job = new Job { A = a, ARow = aRow, ACol = aCol, B = b, BRow = bRow, C = c, Addend = addend, M = m, K = k, N = n, Accumulate = accumulate };
        int rowBlocks = (m + RowBlock - 1) / RowBlock;
        WorkerPool.Run(Lanes.Pick(&Part<Vec<Vector512<float>>>, &Part<Vec<Vector256<float>>>, &Part<Vec<Vector128<float>>>), &job,
            (long)m * k * n < ParallelThreshold ? 1 : Math.Min(rowBlocks, WorkerPool.Count));
    }

    /// <summary>A static share of C's rows (whole 6-row blocks): each element is one tile's sum in k order, whoever runs it.</summary>
    private static void Part<TVec>(void* args, int part, int parts)
        where TVec : unmanaged, IVec<TVec>
    {
        ref Job j = ref *(Job*)args;
        int rowBlocks = (j.M + RowBlock - 1) / RowBlock;
        int first = (int)((long)rowBlocks * part / parts) * RowBlock;
        int last = Math.Min(j.M, (int)((long)rowBlocks * (part + 1) / parts) * RowBlock);
        float* edge = stackalloc float[TwelveRows.Count * 2 * TVec.Count];
        for (int k0 = 0; k0 < j.K; k0 += DepthBlock)
        {
            // A slice's sums are added to C after the first slice or when accumulating; the addend comes last, in the
            // last slice: (sums + C) + addend, the order of a separate add after the product.
            bool ontoC = j.Accumulate || k0 > 0, addend = j.Addend != null && k0 + DepthBlock >= j.K;
            long fromAddend = j.Addend - j.C;
            Rows<TVec>(j.A + (long)k0 * j.ACol, j.ARow, j.ACol, j.B + (long)k0 * j.BRow, j.BRow, j.C, first, last, Math.Min(DepthBlock, j.K - k0), j.N,
                new Sums(ontoC || addend, ontoC ? 0 : fromAddend, ontoC && addend, fromAddend), edge);
        }
    }

    /// <summary>Rows [first, last) of C, a tile of 6 or 12 at a time (the last block may have fewer: see <see cref="Tile{TVec, TRows}"/>).</summary>
    private static void Rows<TVec>(float* a, int aRow, int aCol, float* b, int bRow, float* c, int first, int last, int k, int n, Sums sums, float* edge)
        where TVec : unmanaged, IVec<TVec>
    {
        int lanes = TVec.Count, colBlock = 2 * lanes, j = 0;
        // Padded B (zero columns up to a whole tile) runs its last columns on a full tile with a partial store.
        int wholeTiles = bRow >= (n + colBlock - 1) / colBlock * colBlock ? n : n - n % colBlock;
        for (int i0 = first; i0 < last; i0 += RowChunk)
        {
            int chunkEnd = Math.Min(last, i0 + RowChunk);
            for (int jj = 0; jj < wholeTiles; jj += colBlock)
                for (int i = i0; i < chunkEnd;)
                {
                    int rows = chunkEnd - i, width = Math.Min(colBlock, n - jj);
                    float* ai = a + (long)i * aRow, ci = c + (long)i * n + jj;
                    // 12-row tiles where AVX-512 has the registers for them; a last block of up to 6 rows on the 6-row tile.
                    if (TVec.Count == 16 && rows > RowBlock)
                    {
                        Tile<TVec, TwelveRows>(ai, aRow, aCol, b + jj, bRow, ci, k, n, Math.Min(TwelveRows.Count, rows), width, true, sums, edge);
                        i += TwelveRows.Count;
                    }
                    else
                    {
                        Tile<TVec, SixRows>(ai, aRow, aCol, b + jj, bRow, ci, k, n, Math.Min(RowBlock, rows), width, true, sums, edge);
                        i += RowBlock;
                    }
                }
        }
        j = wholeTiles;
        bool paddedTail = bRow >= (n + lanes - 1) / lanes * lanes;
        for (; j + lanes <= n || (j < n && paddedTail); j += lanes)
            for (int i = first; i < last; i += RowBlock)
                Tile<TVec, SixRows>(a + (long)i * aRow, aRow, aCol, b + j, bRow, c + (long)i * n + j, k, n, Math.Min(RowBlock, last - i), Math.Min(lanes, n - j), false, sums, edge);
        if (j < n)
            for (int i = first; i < last; i++) Tail(a + (long)i * aRow, aCol, b + j, bRow, c + (long)i * n + j, k, n - j, sums);
    }

    /// <summary>Rows of a register tile: 6 where there are 16 vector registers (AVX2 and narrower), 12 with AVX-512's 32.</summary>
    private interface ITileRows { static abstract int Count { get; } }
    private struct SixRows : ITileRows { public static int Count => RowBlock; }
    private struct TwelveRows : ITileRows { public static int Count => 2 * RowBlock; }

    /// <summary>
    /// <typeparamref name="TRows"/> rows x 2 vectors of C (6 x 16 on Vector256: 12 accumulators, two B vectors and a
    /// broadcast fit the 16 registers of AVX2; 12 x 32 on Vector512: 24 accumulators in AVX-512's 32, so each B vector
    /// loaded serves twelve rows and a k step loads half the bytes of B per FMA). With fewer
    /// <paramref name="rows"/>, the missing ones repeat the last row of A and are not stored. Only the first
    /// <paramref name="width"/> columns are stored (the last tile of padded B reads its zero columns). Without
    /// <paramref name="twoVectors"/> (a one-vector column remainder of unpadded B) the second vector of B is taken
    /// as zero and not read. The rows past 6 are code only in the 12-row instantiation (the JIT folds TRows.Count).
    /// Out of line and fully optimized from its first call (no tier-0 phase, no profile): with three call sites the JIT
    /// does not inline it, and a call is small next to a tile's 32 or more k steps.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TVec, TRows>(float* a, int aRow, int aCol, float* b, int bRow, float* c, int k, int n, int rows, int width, bool twoVectors, Sums sums, float* edge)
        where TVec : unmanaged, IVec<TVec>
        where TRows : struct, ITileRows
    {
        bool twelve = TRows.Count > RowBlock;
        TVec c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        TVec c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        TVec c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default;
        TVec c90 = default, c91 = default, cA0 = default, cA1 = default, cB0 = default, cB1 = default;
        int l = rows - 1; // rows past the last repeat it
        float* a0 = a, a1 = a + Math.Min(1, l) * aRow, a2 = a + Math.Min(2, l) * aRow, a3 = a + Math.Min(3, l) * aRow, a4 = a + Math.Min(4, l) * aRow, a5 = a + Math.Min(5, l) * aRow;
        float* a6 = a + Math.Min(6, l) * aRow, a7 = a + Math.Min(7, l) * aRow, a8 = a + Math.Min(8, l) * aRow, a9 = a + Math.Min(9, l) * aRow, aA = a + Math.Min(10, l) * aRow, aB = a + Math.Min(11, l) * aRow;
        float* bp = b;
        for (long p = 0, end = (long)k * aCol; p != end; p += aCol, bp += bRow)
        {
            var b0 = TVec.Load(bp);
            var b1 = twoVectors ? TVec.Load(bp + TVec.Count) : default;
            var x = TVec.Create(a0[p]);
            c00 = TVec.Fma(b0, x, c00); c01 = TVec.Fma(b1, x, c01);
            x = TVec.Create(a1[p]);
            c10 = TVec.Fma(b0, x, c10); c11 = TVec.Fma(b1, x, c11);
            x = TVec.Create(a2[p]);
            c20 = TVec.Fma(b0, x, c20); c21 = TVec.Fma(b1, x, c21);
            x = TVec.Create(a3[p]);
            c30 = TVec.Fma(b0, x, c30); c31 = TVec.Fma(b1, x, c31);
            x = TVec.Create(a4[p]);
            c40 = TVec.Fma(b0, x, c40); c41 = TVec.Fma(b1, x, c41);
            x = TVec.Create(a5[p]);
            c50 = TVec.Fma(b0, x, c50); c51 = TVec.Fma(b1, x, c51);
            if (!twelve) continue;
            x = TVec.Create(a6[p]);
            c60 = TVec.Fma(b0, x, c60); c61 = TVec.Fma(b1, x, c61);
            x = TVec.Create(a7[p]);
            c70 = TVec.Fma(b0, x, c70); c71 = TVec.Fma(b1, x, c71);
            x = TVec.Create(a8[p]);
            c80 = TVec.Fma(b0, x, c80); c81 = TVec.Fma(b1, x, c81);
            x = TVec.Create(a9[p]);
            c90 = TVec.Fma(b0, x, c90); c91 = TVec.Fma(b1, x, c91);
            x = TVec.Create(aA[p]);
            cA0 = TVec.Fma(b0, x, cA0); cA1 = TVec.Fma(b1, x, cA1);
            x = TVec.Create(aB[p]);
            cB0 = TVec.Fma(b0, x, cB0); cB1 = TVec.Fma(b1, x, cB1);
        }
        if (width == 2 * TVec.Count)
        {
            Put(c, sums, c00, c01);
            if (rows > 1) Put(c + n, sums, c10, c11);
            if (rows > 2) Put(c + 2 * n, sums, c20, c21);
            if (rows > 3) Put(c + 3 * n, sums, c30, c31);
            if (rows > 4) Put(c + 4 * n, sums, c40, c41);
            if (rows > 5) Put(c + 5 * n, sums, c50, c51);
            if (rows > 6) Put(c + 6 * n, sums, c60, c61);
            if (rows > 7) Put(c + 7 * n, sums, c70, c71);
            if (rows > 8) Put(c + 8 * n, sums, c80, c81);
            if (rows > 9) Put(c + 9 * n, sums, c90, c91);
            if (rows > 10) Put(c + 10 * n, sums, cA0, cA1);
            if (rows > 11) Put(c + 11 * n, sums, cB0, cB1);
            return;
        }
        // A partial tile goes through the edge buffer: a call with the accumulators live would make the JIT keep
        // them in memory through the whole k loop (every store in the loop, measured 4-5x slower).
        int w = TVec.Count;
        TVec.Store(c00, edge); TVec.Store(c01, edge + w); TVec.Store(c10, edge + 2 * w); TVec.Store(c11, edge + 3 * w);
        TVec.Store(c20, edge + 4 * w); TVec.Store(c21, edge + 5 * w); TVec.Store(c30, edge + 6 * w); TVec.Store(c31, edge + 7 * w);
        TVec.Store(c40, edge + 8 * w); TVec.Store(c41, edge + 9 * w); TVec.Store(c50, edge + 10 * w); TVec.Store(c51, edge + 11 * w);
        if (twelve)
        {
            TVec.Store(c60, edge + 12 * w); TVec.Store(c61, edge + 13 * w); TVec.Store(c70, edge + 14 * w); TVec.Store(c71, edge + 15 * w);
            TVec.Store(c80, edge + 16 * w); TVec.Store(c81, edge + 17 * w); TVec.Store(c90, edge + 18 * w); TVec.Store(c91, edge + 19 * w);
            TVec.Store(cA0, edge + 20 * w); TVec.Store(cA1, edge + 21 * w); TVec.Store(cB0, edge + 22 * w); TVec.Store(cB1, edge + 23 * w);
        }
        PutEdge(edge, 2 * w, c, n, rows, width, sums);
    }

    /// <summary>
    /// What a tile's sums are added to before they are stored, as offsets from C (same layout): <c>Add</c>: the
    /// matrix at <c>From</c> (C itself: 0, or the addend); <c>Then</c>: also the addend at <c>ThenFrom</c>, second.
    /// </summary>
    private readonly record struct Sums(bool Add, long From, bool Then, long ThenFrom);

    /// <summary>c[0..2 vectors) = the pair v0, v1 plus what <paramref name="sums"/> names.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put<TVec>(float* c, Sums sums, TVec v0, TVec v1) where TVec : unmanaged, IVec<TVec>
    {
        if (sums.Add)
        {
            v0 += TVec.Load(c + sums.From);
            v1 += TVec.Load(c + sums.From + TVec.Count);
        }
        if (sums.Then)
        {
            v0 += TVec.Load(c + sums.ThenFrom);
            v1 += TVec.Load(c + sums.ThenFrom + TVec.Count);
        }
        TVec.Store(v0, c);
        TVec.Store(v1, c + TVec.Count);
    }

    /// <summary>The first <paramref name="width"/> columns of <paramref name="rows"/> rows of the edge buffer (rows <paramref name="edgeRow"/> apart) into C, as <see cref="Put{TVec}"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void PutEdge(float* edge, int edgeRow, float* c, int n, int rows, int width, Sums sums)
    {
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < width; j++) Finish(c + (long)r * n + j, edge[r * edgeRow + j], sums);
    }

    /// <summary>*c = v plus what <paramref name="sums"/> names, in its order.</summary>
    private static void Finish(float* c, float v, Sums sums)
    {
        if (sums.Add) v += c[sums.From];
        if (sums.Then) v += c[sums.ThenFrom];
        *c = v;
    }

    /// <summary>The last columns of a row of C, fewer than a vector, when B is not padded: one scalar FMA chain each.</summary>
    private static void Tail(float* a, int aCol, float* b, int bRow, float* c, int k, int width, Sums sums)
    {
        for (int j = 0; j < width; j++)
        {
            float sum = 0;
            for (int p = 0; p < k; p++) sum = MathF.FusedMultiplyAdd(a[(long)p * aCol], b[(long)p * bRow + j], sum);
            Finish(c + j, sum, sums);
        }
    }
}
