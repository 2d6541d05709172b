using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TruthProbe.Model;

namespace TruthProbe.Lab;

/// <summary>
/// Row-major fp32 matrix products for training, span in / span out: C = A·B, C = A·Bᵀ, C = Aᵀ·B, each
/// optionally accumulating into C. One register-tiled micro-kernel (4 rows x 64 columns of C held in 16
/// Vector512 accumulators while k streams) serves all three: A is read through a row stride and a column
/// stride, so Aᵀ costs nothing; Bᵀ is transposed into a per-thread scratch buffer (B is always a weight
/// matrix there, small next to the product). Rows of C are split statically over the engine's worker threads.
/// </summary>
public static unsafe class Gemm
{
    private const int RowBlock = 4;
    private const int Lanes = 16;
    private const int ColBlock = 4 * Lanes;
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
        int padded = (n + Lanes - 1) / Lanes * Lanes;
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
        WorkerPool.Run(&Part, &job, (long)m * k * n < ParallelThreshold ? 1 : Math.Min(rowBlocks, WorkerPool.Count));
    }

    /// <summary>A static share of C's rows (whole 4-row blocks): each element is one tile's sum in k order, whoever runs it.</summary>
    private static void Part(void* args, int part, int parts)
    {
        ref Job j = ref *(Job*)args;
        int rowBlocks = (j.M + RowBlock - 1) / RowBlock;
        int first = (int)((long)rowBlocks * part / parts) * RowBlock;
        int last = Math.Min(j.M, (int)((long)rowBlocks * (part + 1) / parts) * RowBlock);
        for (int k0 = 0; k0 < j.K; k0 += DepthBlock)
            Rows(j.A + (long)k0 * j.ACol, j.ARow, j.ACol, j.B + (long)k0 * j.BRow, j.BRow, j.C, first, last, Math.Min(DepthBlock, j.K - k0), j.N, j.Accumulate || k0 > 0);
    }

    private static void Rows(float* a, int aRow, int aCol, float* b, int bRow, float* c, int first, int last, int k, int n, bool accumulate)
    {
        int j = 0;
        for (; j + ColBlock <= n; j += ColBlock)
        {
            int i = first;
            for (; i + RowBlock <= last; i += RowBlock) Tile4x64(a + (long)i * aRow, aRow, aCol, b + j, bRow, c + (long)i * n + j, k, n, accumulate);
            for (; i < last; i++) Tile1xN(a + (long)i * aRow, aCol, b + j, bRow, c + (long)i * n + j, k, ColBlock, accumulate);
        }
        bool paddedTail = bRow >= (n + Lanes - 1) / Lanes * Lanes;
        for (; j + Lanes <= n || (j < n && paddedTail); j += Lanes)
        {
            int width = Math.Min(Lanes, n - j), i = first;
            for (; i + RowBlock <= last; i += RowBlock) Tile4x16(a + (long)i * aRow, aRow, aCol, b + j, bRow, c + (long)i * n + j, k, n, width, accumulate);
            for (; i < last; i++) Tile1xN(a + (long)i * aRow, aCol, b + j, bRow, c + (long)i * n + j, k, width, accumulate);
        }
        if (j < n)
            for (int i = first; i < last; i++) Tile1xN(a + (long)i * aRow, aCol, b + j, bRow, c + (long)i * n + j, k, n - j, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x64(float* a, int aRow, int aCol, float* b, int bRow, float* c, int k, int n, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        float* a0 = a, a1 = a + aRow, a2 = a + 2 * aRow, a3 = a + 3 * aRow;
        for (int p = 0; p < k; p++)
        {
            float* bp = b + (long)p * bRow;
            var b0 = Vector512.Load(bp);
            var b1 = Vector512.Load(bp + Lanes);
            var b2 = Vector512.Load(bp + 2 * Lanes);
            var b3 = Vector512.Load(bp + 3 * Lanes);
            long ap = (long)p * aCol;
            var x = Vector512.Create(a0[ap]);
            c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            c02 = Vector512.FusedMultiplyAdd(x, b2, c02); c03 = Vector512.FusedMultiplyAdd(x, b3, c03);
            x = Vector512.Create(a1[ap]);
            c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            c12 = Vector512.FusedMultiplyAdd(x, b2, c12); c13 = Vector512.FusedMultiplyAdd(x, b3, c13);
            x = Vector512.Create(a2[ap]);
            c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            c22 = Vector512.FusedMultiplyAdd(x, b2, c22); c23 = Vector512.FusedMultiplyAdd(x, b3, c23);
            x = Vector512.Create(a3[ap]);
            c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            c32 = Vector512.FusedMultiplyAdd(x, b2, c32); c33 = Vector512.FusedMultiplyAdd(x, b3, c33);
        }
        Store(c, accumulate, c00, c01, c02, c03);
        Store(c + n, accumulate, c10, c11, c12, c13);
        Store(c + 2 * n, accumulate, c20, c21, c22, c23);
        Store(c + 3 * n, accumulate, c30, c31, c32, c33);
    }

    /// <summary>
    /// 4 rows x 16 columns: column remainders that are whole vectors (k/v projections, vocabularies), or the
    /// last <paramref name="width"/> &lt; 16 columns when B is padded (masked stores keep C's row ends intact).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x16(float* a, int aRow, int aCol, float* b, int bRow, float* c, int k, int n, int width, bool accumulate)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
        float* a0 = a, a1 = a + aRow, a2 = a + 2 * aRow, a3 = a + 3 * aRow;
        for (int p = 0; p < k; p++)
        {
            var bp = Vector512.Load(b + (long)p * bRow);
            long ap = (long)p * aCol;
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[ap]), bp, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[ap]), bp, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(a2[ap]), bp, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[ap]), bp, c3);
        }
        if (width == Lanes)
        {
            if (accumulate)
            {
                c0 += Vector512.Load(c); c1 += Vector512.Load(c + n); c2 += Vector512.Load(c + 2 * n); c3 += Vector512.Load(c + 3 * n);
            }
            c0.Store(c); c1.Store(c + n); c2.Store(c + 2 * n); c3.Store(c + 3 * n);
            return;
        }
        float* tile = stackalloc float[RowBlock * Lanes];
        c0.Store(tile); c1.Store(tile + Lanes); c2.Store(tile + 2 * Lanes); c3.Store(tile + 3 * Lanes);
        for (int r = 0; r < RowBlock; r++)
            for (int col = 0; col < width; col++) c[(long)r * n + col] = accumulate ? c[(long)r * n + col] + tile[r * Lanes + col] : tile[r * Lanes + col];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, bool accumulate, Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3)
    {
        if (accumulate)
        {
            v0 += Vector512.Load(c); v1 += Vector512.Load(c + Lanes);
            v2 += Vector512.Load(c + 2 * Lanes); v3 += Vector512.Load(c + 3 * Lanes);
        }
        v0.Store(c); v1.Store(c + Lanes); v2.Store(c + 2 * Lanes); v3.Store(c + 3 * Lanes);
    }

    /// <summary>One row of C, up to 64 columns: the edges the 4-row tiles do not cover.</summary>
    private static void Tile1xN(float* a, int aCol, float* b, int bRow, float* c, int k, int width, bool accumulate)
    {
        float* acc = stackalloc float[ColBlock];
        for (int j = 0; j < width; j++) acc[j] = 0;
        for (int p = 0; p < k; p++)
        {
            float x = a[(long)p * aCol];
            float* bp = b + (long)p * bRow;
            int j = 0;
            for (; j + Lanes <= width; j += Lanes)
                Vector512.FusedMultiplyAdd(Vector512.Create(x), Vector512.Load(bp + j), Vector512.Load(acc + j)).Store(acc + j);
            for (; j < width; j++) acc[j] = MathF.FusedMultiplyAdd(x, bp[j], acc[j]);
        }
        for (int j = 0; j < width; j++) c[j] = accumulate ? c[j] + acc[j] : acc[j];
    }
}
