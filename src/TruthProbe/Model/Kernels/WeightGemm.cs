using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using System.Runtime.Intrinsics;

using TruthProbe.Numerics;

namespace TruthProbe.Model;

/// <summary>
/// Y[M, N] = X[M, K] W[N, K]^T for several tokens (prefill, scoring), at the FMA limit: W is widened from its
/// dtype and packed, a [KC, NR] panel at a time, into per-thread scratch laid out so the micro-kernel reads
/// NR consecutive outputs per k; the panel then serves every token of an MC-row block. The micro-kernel holds
/// an MR x NR tile of Y in registers (8 x 32 on Vector512, 6 x 16 on Vector256, 4 x 2 vectors otherwise),
/// each step one broadcast of X per row against NR packed weights. The threads split the N panels statically.
/// </summary>
internal static unsafe class WeightGemm
{
    /// <summary>Depth of a packed panel: KC x NR floats (128 KB at NR = 32) stay in L2 while every token of the
    /// block uses them; deep enough that most matrices need one pass (Y written once). A multiple of the Q8_0 block.</summary>
    private const int KC = 1024;
    /// <summary>Tokens per block. Every block re-packs all panels, so blocks are large: 512 rather than 256 gained
    /// 8% at M = 512 (measured), although X's block (2 MB at KC = 1024) then streams from L3 rather than L2.</summary>
    private const int MC = 512;

    private static (int Rows, int Cols) Tile(SimdPath path) => path switch
    {
        SimdPath.Vector512 => (8, 32),
        SimdPath.Vector256 => (6, 16),
        _ => (4, 2 * Vector<float>.Count),
    };

    [ThreadStatic] private static float[]? _panel, _row, _tile;

    private struct Job
    {
        public byte* W; public long RowBytes; public WeightDType DType;
        public int M, N, K;
        public float* X, Y;
        public SimdPath Path;
    }

    /// <summary>y[t] = W x[t] for t in [0, tokens): x is [tokens, W.Cols], y is [tokens, W.Rows], row-major.</summary>
    public static void Multiply(WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        if (x.Length < (long)tokens * w.Cols || y.Length < (long)tokens * w.Rows)
            throw new ArgumentException($"gemm [{w.Rows}, {w.Cols}] with {tokens} tokens: x has {x.Length}, y has {y.Length} floats");
        fixed (float* px = x, py = y)
        {
            var job = new Job { W = w.Data, RowBytes = w.RowBytes, DType = w.DType, M = tokens, N = w.Rows, K = w.Cols, X = px, Y = py, Path = SimdWidth.Current };
            int panels = (job.N + Tile(job.Path).Cols - 1) / Tile(job.Path).Cols;
            bool worthSplitting = (long)tokens * w.Rows * w.Cols >= 1 << 16;
            WorkerPool.Run(&Part, &job, worthSplitting ? Math.Min(WorkerPool.Count, panels) : 1);
        }
        GC.KeepAlive(w); // the job holds only w.Data: w (and the memory its Owner keeps) must outlive it
    }

    private static void Part(void* args, int part, int parts)
    {
        ref Job j = ref *(Job*)args;
        var (mr, nr) = Tile(j.Path);
        int panels = (j.N + nr - 1) / nr;
        int first = (int)((long)panels * part / parts), end = (int)((long)panels * (part + 1) / parts);
        float[] panelArray = Scratch(ref _panel, KC * nr), rowArray = Scratch(ref _row, TransposeBlock * KC), tileArray = Scratch(ref _tile, mr * nr);
        fixed (float* panel = panelArray, row = rowArray, tile = tileArray)
            for (int m0 = 0; m0 < j.M; m0 += MC)
            {
                int m1 = Math.Min(j.M, m0 + MC);
                for (int k0 = 0; k0 < j.K; k0 += KC)
                {
                    int kc = Math.Min(KC, j.K - k0);
                    bool accumulate = k0 > 0;
                    for (int p = first; p < end; p++)
                    {
                        int n0 = p * nr, cols = Math.Min(nr, j.N - n0);
                        Pack(ref j, n0, cols, nr, k0, kc, panel, row);
                        for (int t = m0; t < m1; t += mr)
                        {
                            int rows = Math.Min(mr, m1 - t);
                            float* x = j.X + (long)t * j.K + k0;
                            float* y = j.Y + (long)t * j.N + n0;
                            if (rows == mr && cols == nr) MicroKernel(j.Path, x, j.K, rows, panel, kc, y, j.N, accumulate);
                            else
                            {
                                // An edge tile: compute the full tile into scratch, keep the part that exists.
                                MicroKernel(j.Path, x, j.K, rows, panel, kc, tile, nr, accumulate: false);
                                for (int r = 0; r < rows; r++)
                                    for (int c = 0; c < cols; c++)
                                        y[(long)r * j.N + c] = accumulate ? y[(long)r * j.N + c] + tile[r * nr + c] : tile[r * nr + c];
                            }
                        }
                    }
                }
            }
    }

    private static float[] Scratch(ref float[]? slot, int length)
    {
        if (slot == null || slot.Length < length) slot = GC.AllocateUninitializedArray<float>(length, pinned: true);
        return slot;
    }

    /// <summary>Rows widened and transposed together on AVX-512.</summary>
    private const int TransposeBlock = 16;

    /// <summary>panel[k * nr + c] = W[n0 + c, k0 + k] in float32; columns past the matrix are zero. Each group of
    /// 16 rows is widened into scratch (SIMD), then transposed 16 x 16 in registers on the AVX-512 path
    /// (NR = 32); the other paths transpose one row at a time.</summary>
    private static void Pack(ref Job j, int n0, int cols, int nr, int k0, int kc, float* panel, float* rows)
    {
        bool inRegisters = j.Path == SimdPath.Vector512 && Avx512F.IsSupported;
        int block = inRegisters ? TransposeBlock : 1;
        for (int g = 0; g < nr; g += block)
        {
            for (int c = 0; c < block; c++)
            {
                var row = new Span<float>(rows + c * kc, kc);
                if (g + c < cols) Kernels.Widen(j.DType, j.W + (n0 + g + c) * j.RowBytes + Kernels.SegmentOffset(j.DType, k0), row);
                else row.Clear();
            }
            int k = 0;
            if (inRegisters)
                for (; k + TransposeBlock <= kc; k += TransposeBlock) Transpose16(rows + k, kc, panel + k * nr + g, nr);
            for (; k < kc; k++)
                for (int c = 0; c < block; c++) panel[k * nr + g + c] = rows[c * kc + k];
        }
    }

    /// <summary>Two-source permutes that swap bit b of the vector index with bit b of the lane index.</summary>
    private static readonly Vector512<int>[] SwapLow = new Vector512<int>[4], SwapHigh = new Vector512<int>[4];

    static WeightGemm()
    {
        for (int b = 0; b < 4; b++)
        {
            int step = 1 << b;
            var low = new int[16]; var high = new int[16];
            for (int lane = 0; lane < 16; lane++)
            {
                bool set = (lane & step) != 0;
                low[lane] = set ? 16 + lane - step : lane;   // output vector with bit b clear
                high[lane] = set ? 16 + lane : lane + step;  // output vector with bit b set
            }
            SwapLow[b] = Vector512.Create(low);
            SwapHigh[b] = Vector512.Create(high);
        }
    }

    /// <summary>dst[i * dstStride + r] = src[r * srcStride + i] for a 16 x 16 block: four rounds of bit swaps.</summary>
    private static void Transpose16(float* src, int srcStride, float* dst, int dstStride)
    {
        Vector512<float>* v = stackalloc Vector512<float>[16];
        for (int r = 0; r < 16; r++) v[r] = Vector512.Load(src + (long)r * srcStride);
        for (int b = 0; b < 4; b++)
        {
            int step = 1 << b;
            var low = SwapLow[b]; var high = SwapHigh[b];
            for (int r = 0; r < 16; r++)
            {
                if ((r & step) != 0) continue;
                var a = v[r]; var c = v[r + step];
                v[r] = Avx512F.PermuteVar16x32x2(a, low, c);
                v[r + step] = Avx512F.PermuteVar16x32x2(a, high, c);
            }
        }
        for (int r = 0; r < 16; r++) v[r].Store(dst + (long)r * dstStride);
    }

    private static void MicroKernel(SimdPath path, float* x, int xStride, int rows, float* panel, int kc, float* y, int yStride, bool accumulate)
    {
        switch (path)
        {
            case SimdPath.Vector512: Kernel8x32(x, xStride, rows, panel, kc, y, yStride, accumulate); break;
            case SimdPath.Vector256: Kernel6x16(x, xStride, rows, panel, kc, y, yStride, accumulate); break;
            default: KernelGeneric(x, xStride, rows, panel, kc, y, yStride, accumulate); break;
        }
    }

    /// <summary>Row r of a tile with fewer than the kernel's rows repeats the last real row (its results are discarded).</summary>
    private static float* RowOf(float* x, int xStride, int rows, int r) => x + (long)Math.Min(r, rows - 1) * xStride;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel8x32(float* x, int xStride, int rows, float* b, int kc, float* y, int yStride, bool accumulate)
    {
        float* x0 = RowOf(x, xStride, rows, 0), x1 = RowOf(x, xStride, rows, 1), x2 = RowOf(x, xStride, rows, 2), x3 = RowOf(x, xStride, rows, 3);
        float* x4 = RowOf(x, xStride, rows, 4), x5 = RowOf(x, xStride, rows, 5), x6 = RowOf(x, xStride, rows, 6), x7 = RowOf(x, xStride, rows, 7);
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (int k = 0; k < kc; k++, b += 32)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var a = Vector512.Create(x0[k]); c00 = Vector512.FusedMultiplyAdd(a, b0, c00); c01 = Vector512.FusedMultiplyAdd(a, b1, c01);
            a = Vector512.Create(x1[k]); c10 = Vector512.FusedMultiplyAdd(a, b0, c10); c11 = Vector512.FusedMultiplyAdd(a, b1, c11);
            a = Vector512.Create(x2[k]); c20 = Vector512.FusedMultiplyAdd(a, b0, c20); c21 = Vector512.FusedMultiplyAdd(a, b1, c21);
            a = Vector512.Create(x3[k]); c30 = Vector512.FusedMultiplyAdd(a, b0, c30); c31 = Vector512.FusedMultiplyAdd(a, b1, c31);
            a = Vector512.Create(x4[k]); c40 = Vector512.FusedMultiplyAdd(a, b0, c40); c41 = Vector512.FusedMultiplyAdd(a, b1, c41);
            a = Vector512.Create(x5[k]); c50 = Vector512.FusedMultiplyAdd(a, b0, c50); c51 = Vector512.FusedMultiplyAdd(a, b1, c51);
            a = Vector512.Create(x6[k]); c60 = Vector512.FusedMultiplyAdd(a, b0, c60); c61 = Vector512.FusedMultiplyAdd(a, b1, c61);
            a = Vector512.Create(x7[k]); c70 = Vector512.FusedMultiplyAdd(a, b0, c70); c71 = Vector512.FusedMultiplyAdd(a, b1, c71);
        }
        Store512(y, c00, c01, accumulate); Store512(y + yStride, c10, c11, accumulate);
        Store512(y + 2L * yStride, c20, c21, accumulate); Store512(y + 3L * yStride, c30, c31, accumulate);
        Store512(y + 4L * yStride, c40, c41, accumulate); Store512(y + 5L * yStride, c50, c51, accumulate);
        Store512(y + 6L * yStride, c60, c61, accumulate); Store512(y + 7L * yStride, c70, c71, accumulate);
    }

    private static void Store512(float* y, Vector512<float> lo, Vector512<float> hi, bool accumulate)
    {
        if (accumulate) { lo += Vector512.Load(y); hi += Vector512.Load(y + 16); }
        lo.Store(y); hi.Store(y + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x16(float* x, int xStride, int rows, float* b, int kc, float* y, int yStride, bool accumulate)
    {
        float* x0 = RowOf(x, xStride, rows, 0), x1 = RowOf(x, xStride, rows, 1), x2 = RowOf(x, xStride, rows, 2);
        float* x3 = RowOf(x, xStride, rows, 3), x4 = RowOf(x, xStride, rows, 4), x5 = RowOf(x, xStride, rows, 5);
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int k = 0; k < kc; k++, b += 16)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var a = Vector256.Create(x0[k]); c00 = Vector256.FusedMultiplyAdd(a, b0, c00); c01 = Vector256.FusedMultiplyAdd(a, b1, c01);
            a = Vector256.Create(x1[k]); c10 = Vector256.FusedMultiplyAdd(a, b0, c10); c11 = Vector256.FusedMultiplyAdd(a, b1, c11);
            a = Vector256.Create(x2[k]); c20 = Vector256.FusedMultiplyAdd(a, b0, c20); c21 = Vector256.FusedMultiplyAdd(a, b1, c21);
            a = Vector256.Create(x3[k]); c30 = Vector256.FusedMultiplyAdd(a, b0, c30); c31 = Vector256.FusedMultiplyAdd(a, b1, c31);
            a = Vector256.Create(x4[k]); c40 = Vector256.FusedMultiplyAdd(a, b0, c40); c41 = Vector256.FusedMultiplyAdd(a, b1, c41);
            a = Vector256.Create(x5[k]); c50 = Vector256.FusedMultiplyAdd(a, b0, c50); c51 = Vector256.FusedMultiplyAdd(a, b1, c51);
        }
        Store256(y, c00, c01, accumulate); Store256(y + yStride, c10, c11, accumulate); Store256(y + 2L * yStride, c20, c21, accumulate);
        Store256(y + 3L * yStride, c30, c31, accumulate); Store256(y + 4L * yStride, c40, c41, accumulate); Store256(y + 5L * yStride, c50, c51, accumulate);
    }

    private static void Store256(float* y, Vector256<float> lo, Vector256<float> hi, bool accumulate)
    {
        if (accumulate) { lo += Vector256.Load(y); hi += Vector256.Load(y + 8); }
        lo.Store(y); hi.Store(y + 8);
    }

    /// <summary>Any vector width (<see cref="Vector{T}"/>): 4 rows x 2 vectors; multiply then add, as FMA is not guaranteed.</summary>
    private static void KernelGeneric(float* x, int xStride, int rows, float* b, int kc, float* y, int yStride, bool accumulate)
    {
        int width = Vector<float>.Count, nr = 2 * width;
        float* x0 = RowOf(x, xStride, rows, 0), x1 = RowOf(x, xStride, rows, 1), x2 = RowOf(x, xStride, rows, 2), x3 = RowOf(x, xStride, rows, 3);
        Vector<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        for (int k = 0; k < kc; k++, b += nr)
        {
            var b0 = Vector.Load(b);
            var b1 = Vector.Load(b + width);
            var a = new Vector<float>(x0[k]); c00 += a * b0; c01 += a * b1;
            a = new Vector<float>(x1[k]); c10 += a * b0; c11 += a * b1;
            a = new Vector<float>(x2[k]); c20 += a * b0; c21 += a * b1;
            a = new Vector<float>(x3[k]); c30 += a * b0; c31 += a * b1;
        }
        StoreGeneric(y, c00, c01, accumulate); StoreGeneric(y + yStride, c10, c11, accumulate);
        StoreGeneric(y + 2L * yStride, c20, c21, accumulate); StoreGeneric(y + 3L * yStride, c30, c31, accumulate);
    }

    private static void StoreGeneric(float* y, Vector<float> lo, Vector<float> hi, bool accumulate)
    {
        int width = Vector<float>.Count;
        if (accumulate) { lo += Vector.Load(y); hi += Vector.Load(y + width); }
        lo.Store(y); hi.Store(y + width);
    }
}
