using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TruthProbe.Model;

namespace TruthProbe.Lab;

/// <summary>
/// Row-major fp32 matrix products for training, span in / span out: C = A·B, C = A·Bᵀ, C = Aᵀ·B, each
/// optionally accumulating into C. One register-tiled micro-kernel (4 rows x 4 vectors of C held in 16
/// accumulators while k streams: 4 x 64 on Vector512, see <see cref="Lanes"/>) serves all three: A is read
/// through a row stride and a column stride, so Aᵀ costs nothing; Bᵀ is transposed into a per-thread scratch
/// buffer (B is always a weight matrix there, small next to the product). Rows of C are split statically over
/// the engine's worker threads. Every element of C is one fused multiply-add chain in k order, so the result
/// is the same bits at every vector width.
/// </summary>
public static unsafe class Gemm
{
    private const int RowBlock = 4;
    /// <summary>Bᵀ's scratch rows are padded to this many floats: a whole number of vectors at every width.</summary>
    private const int Pad = 16;
    private const int MaxColBlock = 4 * Pad;
    /// <summary>
    /// Depth of one pass over C. Weight gradients dW = dYᵀ·X run k over every position of the batch (thousands):
    /// in slices of this depth, the slice of X under a 64-column block (64 KB) stays in cache while every row
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
    /// padded to whole vectors, so odd widths (vocabularies) also run on the 4-row tiles.
    /// </summary>
    public static void MatMulTransB(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int k, int n, bool accumulate = false)
    {
        Check(a.Length >= (long)m * k, b.Length >= (long)n * k, c.Length >= (long)m * n);
        int padded = (n + Pad - 1) / Pad * Pad;
        if (_transposeScratch == null || _transposeScratch.Length < k * padded) _transposeScratch = new float[k * padded];
        var bt = _transposeScratch.AsSpan(0, k * padded);
        TransposePadded(b, bt, n, k, padded);
        fixed (float* pa = a, pb = bt, pc = c) Run(pa, k, 1, pb, padded, pc, m, k, n, accumulate);
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
        public float* A, B, C;
        public int ARow, ACol, BRow, M, K, N;
        public bool Accumulate;
    }

    /// <param name="bRow">B's row stride: n, or more when B is padded scratch (then the column tail runs on vectors too).</param>
    private static void Run(float* a, int aRow, int aCol, float* b, int bRow, float* c, int m, int k, int n, bool accumulate)
    {
        var job = new Job { A = a, ARow = aRow, ACol = aCol, B = b, BRow = bRow, C = c, M = m, K = k, N = n, Accumulate = accumulate };
        int rowBlocks = (m + RowBlock - 1) / RowBlock;
        WorkerPool.Run(Lanes.Pick(&Part<Vec<Vector512<float>>>, &Part<Vec<Vector256<float>>>, &Part<Vec<Vector128<float>>>), &job,
            (long)m * k * n < ParallelThreshold ? 1 : Math.Min(rowBlocks, WorkerPool.Count));
    }

    /// <summary>A static share of C's rows (whole 4-row blocks): each element is one tile's sum in k order, whoever runs it.</summary>
    private static void Part<TVec>(void* args, int part, int parts)
        where TVec : unmanaged, IVec<TVec>
    {
        ref Job j = ref *(Job*)args;
        int rowBlocks = (j.M + RowBlock - 1) / RowBlock;
        int first = (int)((long)rowBlocks * part / parts) * RowBlock;
        int last = Math.Min(j.M, (int)((long)rowBlocks * (part + 1) / parts) * RowBlock);
        for (int k0 = 0; k0 < j.K; k0 += DepthBlock)
            Rows<TVec>(j.A + (long)k0 * j.ACol, j.ARow, j.ACol, j.B + (long)k0 * j.BRow, j.BRow, j.C, first, last, Math.Min(DepthBlock, j.K - k0), j.N, j.Accumulate || k0 > 0);
    }

    private static void Rows<TVec>(float* a, int aRow, int aCol, float* b, int bRow, float* c, int first, int last, int k, int n, bool accumulate)
        where TVec : unmanaged, IVec<TVec>
    {
        int lanes = TVec.Count, colBlock = 4 * lanes, j = 0;
        for (; j + colBlock <= n; j += colBlock)
        {
            int i = first;
            for (; i + RowBlock <= last; i += RowBlock) Tile4x4<TVec>(a + (long)i * aRow, aRow, aCol, b + j, bRow, c + (long)i * n + j, k, n, accumulate);
            for (; i < last; i++) Tile1xN<TVec>(a + (long)i * aRow, aCol, b + j, bRow, c + (long)i * n + j, k, colBlock, accumulate);
        }
        bool paddedTail = bRow >= (n + lanes - 1) / lanes * lanes;
        for (; j + lanes <= n || (j < n && paddedTail); j += lanes)
        {
            int width = Math.Min(lanes, n - j), i = first;
            for (; i + RowBlock <= last; i += RowBlock) Tile4x1<TVec>(a + (long)i * aRow, aRow, aCol, b + j, bRow, c + (long)i * n + j, k, n, width, accumulate);
            for (; i < last; i++) Tile1xN<TVec>(a + (long)i * aRow, aCol, b + j, bRow, c + (long)i * n + j, k, width, accumulate);
        }
        if (j < n)
            for (int i = first; i < last; i++) Tile1xN<TVec>(a + (long)i * aRow, aCol, b + j, bRow, c + (long)i * n + j, k, n - j, accumulate);
    }

    /// <summary>4 rows x 4 vectors of C (4 x 64 on Vector512): each B vector loaded serves four rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x4<TVec>(float* a, int aRow, int aCol, float* b, int bRow, float* c, int k, int n, bool accumulate)
        where TVec : unmanaged, IVec<TVec>
    {
        int lanes = TVec.Count;
        TVec c00 = default, c01 = default, c02 = default, c03 = default;
        TVec c10 = default, c11 = default, c12 = default, c13 = default;
        TVec c20 = default, c21 = default, c22 = default, c23 = default;
        TVec c30 = default, c31 = default, c32 = default, c33 = default;
        float* a0 = a, a1 = a + aRow, a2 = a + 2 * aRow, a3 = a + 3 * aRow;
        for (int p = 0; p < k; p++)
        {
            float* bp = b + (long)p * bRow;
            var b0 = TVec.Load(bp);
            var b1 = TVec.Load(bp + lanes);
            var b2 = TVec.Load(bp + 2 * lanes);
            var b3 = TVec.Load(bp + 3 * lanes);
            long ap = (long)p * aCol;
            var x = TVec.Create(a0[ap]);
            c00 = TVec.Fma(x, b0, c00); c01 = TVec.Fma(x, b1, c01); c02 = TVec.Fma(x, b2, c02); c03 = TVec.Fma(x, b3, c03);
            x = TVec.Create(a1[ap]);
            c10 = TVec.Fma(x, b0, c10); c11 = TVec.Fma(x, b1, c11); c12 = TVec.Fma(x, b2, c12); c13 = TVec.Fma(x, b3, c13);
            x = TVec.Create(a2[ap]);
            c20 = TVec.Fma(x, b0, c20); c21 = TVec.Fma(x, b1, c21); c22 = TVec.Fma(x, b2, c22); c23 = TVec.Fma(x, b3, c23);
            x = TVec.Create(a3[ap]);
            c30 = TVec.Fma(x, b0, c30); c31 = TVec.Fma(x, b1, c31); c32 = TVec.Fma(x, b2, c32); c33 = TVec.Fma(x, b3, c33);
        }
        Store(c, accumulate, c00, c01, c02, c03);
        Store(c + n, accumulate, c10, c11, c12, c13);
        Store(c + 2 * n, accumulate, c20, c21, c22, c23);
        Store(c + 3 * n, accumulate, c30, c31, c32, c33);
    }

    /// <summary>
    /// 4 rows x 1 vector: column remainders that are whole vectors (k/v projections, vocabularies), or the last
    /// <paramref name="width"/> columns when B is padded (C's row ends beyond them stay intact).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x1<TVec>(float* a, int aRow, int aCol, float* b, int bRow, float* c, int k, int n, int width, bool accumulate)
        where TVec : unmanaged, IVec<TVec>
    {
        TVec c0 = default, c1 = default, c2 = default, c3 = default;
        float* a0 = a, a1 = a + aRow, a2 = a + 2 * aRow, a3 = a + 3 * aRow;
        for (int p = 0; p < k; p++)
        {
            var bp = TVec.Load(b + (long)p * bRow);
            long ap = (long)p * aCol;
            c0 = TVec.Fma(TVec.Create(a0[ap]), bp, c0);
            c1 = TVec.Fma(TVec.Create(a1[ap]), bp, c1);
            c2 = TVec.Fma(TVec.Create(a2[ap]), bp, c2);
            c3 = TVec.Fma(TVec.Create(a3[ap]), bp, c3);
        }
        Put(c0, c, width, accumulate);
        Put(c1, c + n, width, accumulate);
        Put(c2, c + 2 * n, width, accumulate);
        Put(c3, c + 3 * n, width, accumulate);
    }

    /// <summary>c[0..width) (+)= v's first <paramref name="width"/> lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put<TVec>(TVec v, float* c, int width, bool accumulate) where TVec : unmanaged, IVec<TVec>
    {
        if (accumulate) v += TVec.LoadPartial(c, width);
        TVec.StorePartial(v, c, width);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store<TVec>(float* c, bool accumulate, TVec v0, TVec v1, TVec v2, TVec v3) where TVec : unmanaged, IVec<TVec>
    {
        int lanes = TVec.Count;
        Put(v0, c, lanes, accumulate);
        Put(v1, c + lanes, lanes, accumulate);
        Put(v2, c + 2 * lanes, lanes, accumulate);
        Put(v3, c + 3 * lanes, lanes, accumulate);
    }

    /// <summary>One row of C, up to 4 vectors wide: the edges the 4-row tiles do not cover.</summary>
    private static void Tile1xN<TVec>(float* a, int aCol, float* b, int bRow, float* c, int k, int width, bool accumulate) where TVec : unmanaged, IVec<TVec>
    {
        int lanes = TVec.Count;
        float* acc = stackalloc float[MaxColBlock];
        for (int j = 0; j < width; j++) acc[j] = 0;
        for (int p = 0; p < k; p++)
        {
            float x = a[(long)p * aCol];
            float* bp = b + (long)p * bRow;
            int j = 0;
            for (; j + lanes <= width; j += lanes)
                TVec.Store(TVec.Fma(TVec.Create(x), TVec.Load(bp + j), TVec.Load(acc + j)), acc + j);
            for (; j < width; j++) acc[j] = MathF.FusedMultiplyAdd(x, bp[j], acc[j]);
        }
        for (int j = 0; j < width; j++) c[j] = accumulate ? c[j] + acc[j] : acc[j];
    }
}
