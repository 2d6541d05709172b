using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using System.Runtime.Intrinsics;

using TruthProbe.Numerics;

namespace TruthProbe.Model;

/// <summary>
/// Y[M, N] = X[M, K] W[N, K]^T for several tokens (prefill, scoring), at the FMA limit: W is widened from its
/// dtype and packed, a [span, NR] panel at a time (<see cref="PanelBytes"/>), into per-thread scratch
/// laid out so the micro-kernel reads NR consecutive outputs per k; the panel then serves every token of a block of up
/// to 768 tokens, whose [rows, span] slice of X the threads pack together, once, into MR-row tiles interleaved by k.
/// The micro-kernel holds an MR x NR tile of Y in registers (14 x 32 on Vector512, 6 x 16 on Vector256, 4 x 2 vectors
/// otherwise), each step one broadcast of X per row against NR packed weights, KC steps of k at a time, and finishes
/// the tile's span before the next tile. The threads claim groups of panels one at a time (<see cref="PartsPerThread"/>).
/// </summary>
internal static unsafe class WeightGemm
{
    /// <summary>KC, the k one micro-kernel run sums in registers before adding to Y (a multiple of the Q8_0 block; it
    /// sets the outputs' summation order, so a change changes bits). Measured when a panel was one KC step deep and Y
    /// was read and written K / KC times: on AVX2 512, a 32 KB panel slice at NR = 16. Single-threaded per CPU-second, AVX2, with the
    /// bf16 panel widened in registers (2026-12-07, load 40-50): 512 gave 0.85-0.87 of the FMA loop at M = 512 for
    /// both the 0.5B and the 7B shapes, 256 gave 0.81-0.85, 384 0.83-0.85. Before that widening the scratch rows of
    /// the panel's transpose shared L1 with the panel and 256 was best. On AVX-512, 256 (a 32 KB panel at NR = 32,
    /// all of L1) measured 93-95 against 99-101 GFLOP/s at 1024. On Sapphire Rapids, whose 48 KB L1 does hold a 32 KB
    /// panel, 1024 still won (14 x 32 tile, M = 512, K = 896, one thread per CPU-second, 2026-12-08): 0.76 of the FMA
    /// loop against 0.74 at 512 and 0.68 at 256; the micro-kernel alone reads its panel from L2 at 0.97, so depth is
    /// not keyed on the L1 size.</summary>
    internal static int Depth(SimdPath path) => path == SimdPath.Vector512 ? 1024 : 512;
    /// <summary>Most tokens per block. Every block re-packs all panels, so blocks are large and balanced: up to 768 rows
    /// are one block (CLIP-L's 577 positions and a LLaVA prompt's ~650 pack W once: 577 rows as one block rather than
    /// 512 + 65 measured 0.82 -> 0.86 of the FMA loop on AVX-512 and 0.77 -> 0.83 on AVX2 for fp16 weights), although
    /// X's block then streams from L3 rather than L2. 512 rather than 256 had gained 8% at M = 512.</summary>
    private const int MaxBlockRows = 768;

    private static (int Rows, int Cols) Tile(SimdPath path) => path switch
    {
        SimdPath.Vector512 => (14, 32),
        SimdPath.Vector256 => (6, 16),
        _ => (4, 2 * Vector<float>.Count),
    };

    /// <summary>Most bytes of W one packed panel holds, a span of k: on Vector512 512 KB (4096 k at NR = 32), which stays
    /// in the 2 MB L2 while X's tiles stream past it. A tile of Y is finished over the span's KC steps before the next
    /// tile starts, so it stays in L1 between them, where with one KC step per panel the whole of Y (22.5 MB at the 7B
    /// shape) was read and written K / KC times from memory. On AVX2 one KC step (a 32 KB panel, in L1 across the
    /// tiles) beat a 512 KB span at both shapes (`--quick gemm` wall ratios, four pairs at load 2, Sapphire Rapids,
    /// 2026-12-08, medians: 0.5B 0.83 against 0.80, 7B 0.86 against 0.80).</summary>
    private static int PanelBytes(SimdPath path) => path == SimdPath.Vector512 ? 512 << 10 : 0;

    private static int Span(SimdPath path, int k)
    {
        int depth = Depth(path);
        return Math.Min(k, Math.Max(depth, PanelBytes(path) / (Tile(path).Cols * sizeof(float)) / depth * depth));
    }

    /// <summary>Parts per thread the panels are split into, claimed one at a time: with one part a thread, a thread that
    /// lost its core for a while left the other spinning and yielding at the end (sched_yield was ~9% of the GEMM's CPU
    /// in a profile at load 20). A panel's outputs do not depend on the part or thread that computes it.</summary>
    private const int PartsPerThread = 8;

    [ThreadStatic] private static float[]? _panel, _row, _tile, _x;

    private struct Job
    {
        public byte* W; public long RowBytes; public WeightDType DType;
        public int M, N, K;
        public float* X, Y;
        public SimdPath Path;
        /// <summary>The current block of rows [M0, M1) and span of k [S0, S0 + SpanK), and X's packed block.</summary>
        public int M0, M1, S0, SpanK;
        public float* XBlock;
    }

    /// <summary>y[t] = W x[t] for t in [0, tokens): x is [tokens, W.Cols], y is [tokens, W.Rows], row-major.</summary>
    public static void Multiply(WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        if (x.Length < (long)tokens * w.Cols || y.Length < (long)tokens * w.Rows)
            throw new ArgumentException($"gemm [{w.Rows}, {w.Cols}] with {tokens} tokens: x has {x.Length}, y has {y.Length} floats");
        var path = SimdWidth.Current;
        var (mr, nr) = Tile(path);
        int blocks = (tokens + MaxBlockRows - 1) / MaxBlockRows;
        int blockRows = ((tokens + blocks - 1) / blocks + mr - 1) / mr * mr;
        int span = Span(path, w.Cols);
        // One packed block of X for all threads, packed by all of them before any uses it: each thread packing its own
        // copy doubled the packing and the L3 it takes.
        float[] xArray = Scratch(ref _x, blockRows * span);
        fixed (float* px = x, py = y, xBlock = xArray)
        {
            var job = new Job { W = w.Data, RowBytes = w.RowBytes, DType = w.DType, M = tokens, N = w.Rows, K = w.Cols, X = px, Y = py, Path = path, XBlock = xBlock };
            int panels = (job.N + nr - 1) / nr;
            bool worthSplitting = (long)tokens * w.Rows * w.Cols >= 1 << 16;
            for (job.M0 = 0; job.M0 < tokens; job.M0 += blockRows)
            {
                job.M1 = Math.Min(tokens, job.M0 + blockRows);
                int tiles = (job.M1 - job.M0 + mr - 1) / mr;
                for (job.S0 = 0; job.S0 < job.K; job.S0 += span)
                {
                    job.SpanK = Math.Min(span, job.K - job.S0);
                    WorkerPool.Run(&PackXPart, &job, worthSplitting ? Math.Min(WorkerPool.Count * PartsPerThread, tiles) : 1);
                    WorkerPool.Run(&Part, &job, worthSplitting ? Math.Min(WorkerPool.Count * PartsPerThread, panels) : 1);
                }
            }
        }
        GC.KeepAlive(w); // the job holds only w.Data: w (and the memory its Owner keeps) must outlive it
    }

    private static void PackXPart(void* args, int part, int parts)
    {
        ref Job j = ref *(Job*)args;
        int mr = Tile(j.Path).Rows, tiles = (j.M1 - j.M0 + mr - 1) / mr;
        int first = (int)((long)tiles * part / parts), end = (int)((long)tiles * (part + 1) / parts);
        PackX(ref j, first, end, mr);
    }

    /// <summary>The threads' share of the panels for the current block and span: each panel is packed once for the
    /// span, then every tile of the block runs the span's KC steps in order, so each output adds the same block sums in
    /// the same order as one KC step at a time over all of Y did (the same bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Part(void* args, int part, int parts)
    {
        ref Job j = ref *(Job*)args;
        var (mr, nr) = Tile(j.Path);
        int depth = Depth(j.Path), span = j.SpanK, m0 = j.M0, m1 = j.M1;
        int panels = (j.N + nr - 1) / nr;
        int first = (int)((long)panels * part / parts), end = (int)((long)panels * (part + 1) / parts);
        float[] panelArray = Scratch(ref _panel, span * nr + 16), rowArray = Scratch(ref _row, TransposeBlock * span);
        float[] tileArray = Scratch(ref _tile, mr * nr);
        fixed (float* panelArrayStart = panelArray, row = rowArray, tile = tileArray)
        {
            // From the first cache line boundary (a GC array is only 8-byte aligned): a 512-bit load across two lines
            // costs two, and the 8 x 32 kernel timed alone ran at 0.90 of the FMA loop rather than 0.975 on such a panel.
            float* panel = (float*)(((nint)panelArrayStart + 63) & ~(nint)63);
            for (int p = first; p < end; p++)
            {
                int n0 = p * nr, cols = Math.Min(nr, j.N - n0);
                Pack(ref j, n0, cols, nr, j.S0, span, panel, row);
                var next = p + 1 < panels ? new NextPanel(ref j, n0 + nr, nr, j.S0, span, (m1 - m0 + mr - 1) / mr) : default;
                for (int t = m0; t < m1; t += mr)
                {
                    next.Fetch((t - m0) / mr);
                    int rows = Math.Min(mr, m1 - t);
                    float* x = j.XBlock + (long)(t - m0) * span;
                    float* y = j.Y + (long)t * j.N + n0;
                    for (int k = 0; k < span; k += depth)
                    {
                        int kc = Math.Min(depth, span - k);
                        bool accumulate = j.S0 + k > 0;
                        if (rows == mr && cols == nr) MicroKernel(j.Path, x + k * mr, panel + k * nr, kc, y, j.N, accumulate);
                        else
                        {
                            // An edge tile: compute the full tile into scratch, keep the part that exists.
                            MicroKernel(j.Path, x + k * mr, panel + k * nr, kc, tile, nr, accumulate: false);
                            for (int r = 0; r < rows; r++)
                                for (int c = 0; c < cols; c++)
                                    y[(long)r * j.N + c] = accumulate ? y[(long)r * j.N + c] + tile[r * nr + c] : tile[r * nr + c];
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// The cache lines of the next panel's weights, fetched into L2 a share at a time while the current panel
    /// computes (one share per tile of X): its rows are K apart in memory, so the hardware prefetcher starts over
    /// on each, and widening them stalled on memory (6% of a GEMM's time on AVX2).
    /// </summary>
    private readonly struct NextPanel
    {
        private readonly byte* _start;
        private readonly long _rowBytes;
        private readonly int _rowLines, _lines, _shares;

        public NextPanel(ref Job j, int n0, int nr, int k0, int kc, int shares)
        {
            _start = j.W + n0 * j.RowBytes + Kernels.SegmentOffset(j.DType, k0);
            _rowBytes = j.RowBytes;
            _rowLines = (int)((Kernels.SegmentOffset(j.DType, kc) + 63) / 64);
            _lines = Math.Min(nr, j.N - n0) * _rowLines;
            _shares = shares;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Fetch(int share)
        {
            if (!Sse.IsSupported || _lines == 0) return;
            int line = (int)((long)_lines * share / _shares), last = (int)((long)_lines * (share + 1) / _shares);
            int r = line / _rowLines, c = line - r * _rowLines;
            for (; line < last; line++)
            {
                Sse.Prefetch1(_start + r * _rowBytes + c * 64L);
                if (++c == _rowLines) { c = 0; r++; }
            }
        }
    }

    /// <summary>
    /// Tiles [first, end) of the current block of X (rows from M0 in tiles of mr), columns of the current span, each
    /// interleaved by k: XBlock[(tile * SpanK + k) * mr + r] = X[M0 + tile * mr + r, S0 + k]. The micro-kernel's
    /// broadcasts then read one contiguous stream instead of mr rows K floats apart (a power-of-two K put those in one
    /// cache set). Rows past M1 repeat the last row; their results are discarded.
    /// </summary>
    private static void PackX(ref Job j, int first, int end, int mr)
    {
        int kc = j.SpanK;
        bool transpose = Avx.IsSupported && mr >= 6;
        // A short group's 8-float stores run past its k into the next k's first rows, so the groups go last to first,
        // and the last k (at least one) are copied one at a time: the stores stay inside the tile, which another
        // thread's tiles border.
        int kv = transpose ? (kc - 1) & ~7 : 0;
        float** rows = stackalloc float*[16];
        for (int i = first; i < end; i++)
        {
            int t = j.M0 + i * mr;
            float* tile = j.XBlock + (long)i * mr * kc;
            for (int r = 0; r < mr; r++) rows[r] = j.X + (long)Math.Min(t + r, j.M1 - 1) * j.K + j.S0;
            if (transpose)
                for (int k = 0; k < kv; k += 8)
                    for (int g = (mr - 1) & ~7; g >= 0; g -= 8)
                        Transpose8(XRow(rows, g, mr, k), XRow(rows, g + 1, mr, k), XRow(rows, g + 2, mr, k), XRow(rows, g + 3, mr, k),
                            XRow(rows, g + 4, mr, k), XRow(rows, g + 5, mr, k), XRow(rows, g + 6, mr, k), XRow(rows, g + 7, mr, k), tile + k * mr + g, mr);
            for (int r = 0; r < mr; r++)
                for (int k = kv; k < kc; k++) tile[k * mr + r] = rows[r][k];
        }
    }

    /// <summary>8 floats of X's row <paramref name="r"/> of a tile from <paramref name="k"/>, or zeros past its mr rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> XRow(float** rows, int r, int mr, int k) => r < mr ? Avx.LoadVector256(rows[r] + k) : Vector256<float>.Zero;

    private static float[] Scratch(ref float[]? slot, int length)
    {
        if (slot == null || slot.Length < length) slot = GC.AllocateUninitializedArray<float>(length, pinned: true);
        return slot;
    }

    /// <summary>Rows widened and transposed together: 16 on AVX-512, 8 on AVX2.</summary>
    private const int TransposeBlock = 16;

    /// <summary>panel[k * nr + c] = W[n0 + c, k0 + k] in float32; columns past the matrix are zero. Each group of
    /// 16 (AVX-512) or 8 (AVX2) rows is widened into scratch (SIMD), then transposed in registers (bf16 and fp16 are
    /// widened in registers instead: <see cref="Pack16Bit{T}"/>); other paths transpose one row at a time. Widening
    /// plus a scalar transpose of a 16-column panel took 7% of the time of the micro-kernels that use it at KC = 256
    /// on AVX2 (timed alone); the 8 x 8 transpose is inlined into the GEMM loop and not timed apart.</summary>
    private static void Pack(ref Job j, int n0, int cols, int nr, int k0, int kc, float* panel, float* rows)
    {
        int block = j.Path == SimdPath.Vector512 && Avx512F.IsSupported ? 16 : j.Path == SimdPath.Vector256 && Avx.IsSupported ? 8 : 1;
        if (block > 1 && Avx2.IsSupported && j.DType == WeightDType.BF16) { Pack16Bit<BFloat16>(ref j, block, n0, cols, nr, k0, kc, panel); return; }
        if (block > 1 && Avx2.IsSupported && j.DType == WeightDType.F16) { Pack16Bit<Float16>(ref j, block, n0, cols, nr, k0, kc, panel); return; }
        if (block > 1 && Avx2.IsSupported && j.DType == WeightDType.Q8_0) { PackQ8_0(ref j, block, n0, cols, nr, k0, kc, panel); return; }
        for (int g = 0; g < nr; g += block)
        {
            for (int c = 0; c < block; c++)
            {
                var row = new Span<float>(rows + c * kc, kc);
                if (g + c < cols) Kernels.Widen(j.DType, j.W + (n0 + g + c) * j.RowBytes + Kernels.SegmentOffset(j.DType, k0), row);
                else row.Clear();
            }
            int k = 0;
            if (block == 16)
                for (; k + 16 <= kc; k += 16) Transpose16(rows + k, kc, panel + k * nr + g, nr);
            else if (block == 8)
                for (; k + 8 <= kc; k += 8) Transpose8(rows + k, kc, panel + k * nr + g, nr);
            for (; k < kc; k++)
                for (int c = 0; c < block; c++) panel[k * nr + g + c] = rows[c * kc + k];
        }
    }

    /// <summary>A 16-bit float format widened 8 or 16 values at a time in registers, and one value at a time.</summary>
    private interface IWiden16
    {
        static abstract Vector256<float> Eight(ushort* p);
        static abstract Vector512<float> Sixteen(ushort* p);
        static abstract float One(ushort bits);
    }

    private struct BFloat16 : IWiden16
    {
        public static Vector256<float> Eight(ushort* p) => Kernels.BFloat16x8(p);
        public static Vector512<float> Sixteen(ushort* p) => Kernels.BFloat16x16(p);
        public static float One(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);
    }

    private struct Float16 : IWiden16
    {
        public static Vector256<float> Eight(ushort* p) => Kernels.Float16x8(p);
        public static Vector512<float> Sixteen(ushort* p) => Kernels.Float16x16(p);
        public static float One(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);
    }

    /// <summary><see cref="Pack"/> for bf16 and fp16, widened in registers straight into the 8 x 8 (AVX2) or 16 x 16
    /// (AVX-512) transpose: the scratch rows of the general path shared L1 with the panel. For bf16 on AVX2, with
    /// KC = 512, took the GEMM from 0.81-0.85 to 0.85-0.87 of the FMA loop per CPU-second (single thread, 2026-12-07).</summary>
    private static void Pack16Bit<T>(ref Job j, int block, int n0, int cols, int nr, int k0, int kc, float* panel) where T : struct, IWiden16
    {
        ushort* w = (ushort*)(j.W + n0 * j.RowBytes + Kernels.SegmentOffset(j.DType, k0));
        long s = j.RowBytes / 2;
        int kv = kc / block * block;
        Vector512<float>* v = stackalloc Vector512<float>[16];
        for (int g = 0; g < nr; g += block)
        {
            ushort* b = w + g * s;
            int k = 0;
            if (g + block <= cols && block == 8)
                for (; k < kv; k += 8)
                {
                    ushort* c = b + k;
                    Transpose8(T.Eight(c), T.Eight(c + s), T.Eight(c + 2 * s), T.Eight(c + 3 * s),
                        T.Eight(c + 4 * s), T.Eight(c + 5 * s), T.Eight(c + 6 * s), T.Eight(c + 7 * s), panel + k * nr + g, nr);
                }
            else if (g + block <= cols)
                for (; k < kv; k += 16)
                {
                    for (int r = 0; r < 16; r++) v[r] = T.Sixteen(b + r * s + k);
                    Transpose16(v, panel + k * nr + g, nr);
                }
            for (; k < kc; k++)
                for (int c = 0; c < block; c++) panel[k * nr + g + c] = g + c < cols ? T.One(b[c * s + k]) : 0;
        }
    }

    /// <summary><see cref="Pack"/> for Q8_0, widened in registers straight into the transposes as bf16 and fp16 are:
    /// per 32-value block and row, the int8 sign-extended (vpmovsxbd), converted and multiplied by the block's
    /// scale, d * q in float32 as <see cref="Kernels.WidenQ8_0"/> computes it (same bits). kc is a multiple of the
    /// block (<see cref="Depth"/> and a Q8_0 row's length are).</summary>
    private static void PackQ8_0(ref Job j, int block, int n0, int cols, int nr, int k0, int kc, float* panel)
    {
        const int B = WeightMatrix.Q8_0Block, BlockBytes = 34;
        byte* w = j.W + n0 * j.RowBytes + Kernels.SegmentOffset(j.DType, k0);
        long s = j.RowBytes;
        float* d = stackalloc float[16];
        Vector512<float>* v = stackalloc Vector512<float>[16];
        for (int g = 0; g < nr; g += block)
        {
            int rows = Math.Clamp(cols - g, 0, block);
            for (int k = 0; k < kc; k += B)
            {
                byte* b = w + g * s + k / B * BlockBytes;
                for (int c = 0; c < rows; c++) d[c] = (float)*(Half*)(b + c * s);
                sbyte* q = (sbyte*)(b + 2);
                float* o = panel + k * nr + g;
                if (rows == 8 && block == 8)
                    for (int i = 0; i < B; i += 8)
                        Transpose8(Q8x8(q + i, d[0]), Q8x8(q + s + i, d[1]), Q8x8(q + 2 * s + i, d[2]), Q8x8(q + 3 * s + i, d[3]),
                            Q8x8(q + 4 * s + i, d[4]), Q8x8(q + 5 * s + i, d[5]), Q8x8(q + 6 * s + i, d[6]), Q8x8(q + 7 * s + i, d[7]), o + i * nr, nr);
                else if (rows == 16)
                    for (int i = 0; i < B; i += 16)
                    {
                        for (int r = 0; r < 16; r++)
                            v[r] = Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(q + r * s + i))) * d[r];
                        Transpose16(v, o + i * nr, nr);
                    }
                else
                    for (int i = 0; i < B; i++)
                        for (int c = 0; c < block; c++) o[i * nr + c] = c < rows ? d[c] * q[c * s + i] : 0;
            }
        }
    }

    /// <summary>8 int8 at <paramref name="q"/> times <paramref name="scale"/> in float32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Q8x8(sbyte* q, float scale) => Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q)) * scale;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8(float* src, int srcStride, float* dst, int dstStride) =>
        Transpose8(Avx.LoadVector256(src), Avx.LoadVector256(src + srcStride), Avx.LoadVector256(src + 2L * srcStride), Avx.LoadVector256(src + 3L * srcStride),
            Avx.LoadVector256(src + 4L * srcStride), Avx.LoadVector256(src + 5L * srcStride), Avx.LoadVector256(src + 6L * srcStride), Avx.LoadVector256(src + 7L * srcStride), dst, dstStride);

    /// <summary>dst[i * dstStride + r] = src[r * srcStride + i] for an 8 x 8 block: pairs, then quads, then halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2, Vector256<float> r3,
        Vector256<float> r4, Vector256<float> r5, Vector256<float> r6, Vector256<float> r7, float* dst, int dstStride)
    {
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1); var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5); var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var q0 = Avx.Shuffle(t0, t2, 0x44); var q1 = Avx.Shuffle(t0, t2, 0xEE); var q2 = Avx.Shuffle(t1, t3, 0x44); var q3 = Avx.Shuffle(t1, t3, 0xEE);
        var q4 = Avx.Shuffle(t4, t6, 0x44); var q5 = Avx.Shuffle(t4, t6, 0xEE); var q6 = Avx.Shuffle(t5, t7, 0x44); var q7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(q0, q4, 0x20)); Avx.Store(dst + dstStride, Avx.Permute2x128(q1, q5, 0x20));
        Avx.Store(dst + 2L * dstStride, Avx.Permute2x128(q2, q6, 0x20)); Avx.Store(dst + 3L * dstStride, Avx.Permute2x128(q3, q7, 0x20));
        Avx.Store(dst + 4L * dstStride, Avx.Permute2x128(q0, q4, 0x31)); Avx.Store(dst + 5L * dstStride, Avx.Permute2x128(q1, q5, 0x31));
        Avx.Store(dst + 6L * dstStride, Avx.Permute2x128(q2, q6, 0x31)); Avx.Store(dst + 7L * dstStride, Avx.Permute2x128(q3, q7, 0x31));
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
        Transpose16(v, dst, dstStride);
    }

    /// <summary>dst[i * dstStride + r] = v[r][i], in registers: the rounds' pairs had read and written v on the stack,
    /// 128 loads and stores per block on top of the 64 permutes.</summary>
    private static void Transpose16(Vector512<float>* v, float* dst, int dstStride)
    {
        var r0 = v[0]; var r1 = v[1]; var r2 = v[2]; var r3 = v[3];
        var r4 = v[4]; var r5 = v[5]; var r6 = v[6]; var r7 = v[7];
        var r8 = v[8]; var r9 = v[9]; var r10 = v[10]; var r11 = v[11];
        var r12 = v[12]; var r13 = v[13]; var r14 = v[14]; var r15 = v[15];
        SwapBit(ref r0, ref r1, 0); SwapBit(ref r2, ref r3, 0); SwapBit(ref r4, ref r5, 0); SwapBit(ref r6, ref r7, 0);
        SwapBit(ref r8, ref r9, 0); SwapBit(ref r10, ref r11, 0); SwapBit(ref r12, ref r13, 0); SwapBit(ref r14, ref r15, 0);
        SwapBit(ref r0, ref r2, 1); SwapBit(ref r1, ref r3, 1); SwapBit(ref r4, ref r6, 1); SwapBit(ref r5, ref r7, 1);
        SwapBit(ref r8, ref r10, 1); SwapBit(ref r9, ref r11, 1); SwapBit(ref r12, ref r14, 1); SwapBit(ref r13, ref r15, 1);
        SwapBit(ref r0, ref r4, 2); SwapBit(ref r1, ref r5, 2); SwapBit(ref r2, ref r6, 2); SwapBit(ref r3, ref r7, 2);
        SwapBit(ref r8, ref r12, 2); SwapBit(ref r9, ref r13, 2); SwapBit(ref r10, ref r14, 2); SwapBit(ref r11, ref r15, 2);
        SwapBit(ref r0, ref r8, 3); SwapBit(ref r1, ref r9, 3); SwapBit(ref r2, ref r10, 3); SwapBit(ref r3, ref r11, 3);
        SwapBit(ref r4, ref r12, 3); SwapBit(ref r5, ref r13, 3); SwapBit(ref r6, ref r14, 3); SwapBit(ref r7, ref r15, 3);
        r0.Store(dst); r1.Store(dst + 1L * dstStride); r2.Store(dst + 2L * dstStride); r3.Store(dst + 3L * dstStride);
        r4.Store(dst + 4L * dstStride); r5.Store(dst + 5L * dstStride); r6.Store(dst + 6L * dstStride); r7.Store(dst + 7L * dstStride);
        r8.Store(dst + 8L * dstStride); r9.Store(dst + 9L * dstStride); r10.Store(dst + 10L * dstStride); r11.Store(dst + 11L * dstStride);
        r12.Store(dst + 12L * dstStride); r13.Store(dst + 13L * dstStride); r14.Store(dst + 14L * dstStride); r15.Store(dst + 15L * dstStride);
    }

    /// <summary>Swaps bit <paramref name="bit"/> of the lane index of a and c, whose vector indices differ in that bit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SwapBit(ref Vector512<float> a, ref Vector512<float> c, int bit)
    {
        var low = Avx512F.PermuteVar16x32x2(a, SwapLow[bit], c);
        c = Avx512F.PermuteVar16x32x2(a, SwapHigh[bit], c);
        a = low;
    }

    /// <summary>Asks for the tile of Y now: its rows are N floats apart, which no hardware prefetcher follows, and
    /// the loads (or the stores' line fills) at the end would otherwise each wait for memory.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchTile(float* y, int yStride, int rows, int cols)
    {
        if (!Sse.IsSupported) return;
        for (int r = 0; r < rows; r++)
        {
            Sse.Prefetch0(y + (long)r * yStride);
            Sse.Prefetch0(y + (long)r * yStride + cols - 1);
        }
    }

    /// <summary>How far ahead in X's packed stream the micro-kernels ask for it, one prefetch a k (~42 lines, a few
    /// hundred cycles): the stream comes from L3 (the packed block is 1.8-12 MB), and the L2 streamer alone left the
    /// 14 x 32 kernel short (--quick gemm, Vector512, alternating processes, per CPU-second, medians of 5-8:
    /// 0.815 -> 0.84 at the 0.5B shape, 0.83 -> 0.86 at 7B, 0.78 -> 0.82 for CLIP fp16).</summary>
    private const int XAheadBytes = 2688;

    /// <summary>x is a packed tile of X (<see cref="PackX"/>), b a packed panel of W; kc steps of one broadcast per row.</summary>
    private static void MicroKernel(SimdPath path, float* x, float* panel, int kc, float* y, int yStride, bool accumulate)
    {
        switch (path)
        {
            case SimdPath.Vector512: Kernel14x32(x, panel, kc, y, yStride, accumulate); break;
            case SimdPath.Vector256: Kernel6x16(x, panel, kc, y, yStride, accumulate); break;
            default: KernelGeneric(x, panel, kc, y, yStride, accumulate); break;
        }
    }

    /// <summary>28 accumulators, two weight vectors and a broadcast: 31 of the 32 zmm registers (the JIT keeps them all
    /// there, no spills). Per k, 2 weight loads feed 28 FMAs where 8 x 32 fed 16, which on a CPU with two 512-bit FMA
    /// units (Sapphire Rapids) took the GEMM from 0.72-0.75 to 0.75-0.78 of the FMA loop per CPU-second (docs/performance.md).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel14x32(float* x, float* b, int kc, float* y, int yStride, bool accumulate)
    {
        PrefetchTile(y, yStride, 14, 32);
        Vector512<float> c0Lo = default, c0Hi = default, c1Lo = default, c1Hi = default, c2Lo = default, c2Hi = default, c3Lo = default, c3Hi = default;
        Vector512<float> c4Lo = default, c4Hi = default, c5Lo = default, c5Hi = default, c6Lo = default, c6Hi = default, c7Lo = default, c7Hi = default;
        Vector512<float> c8Lo = default, c8Hi = default, c9Lo = default, c9Hi = default, c10Lo = default, c10Hi = default;
        Vector512<float> c11Lo = default, c11Hi = default, c12Lo = default, c12Hi = default, c13Lo = default, c13Hi = default;
        for (int k = 0; k < kc; k++, b += 32, x += 14)
        {
            if (Sse.IsSupported) Sse.Prefetch0(x + XAheadBytes / sizeof(float));
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var a = Vector512.Create(x[0]); c0Lo = Vector512.FusedMultiplyAdd(a, b0, c0Lo); c0Hi = Vector512.FusedMultiplyAdd(a, b1, c0Hi);
            a = Vector512.Create(x[1]); c1Lo = Vector512.FusedMultiplyAdd(a, b0, c1Lo); c1Hi = Vector512.FusedMultiplyAdd(a, b1, c1Hi);
            a = Vector512.Create(x[2]); c2Lo = Vector512.FusedMultiplyAdd(a, b0, c2Lo); c2Hi = Vector512.FusedMultiplyAdd(a, b1, c2Hi);
            a = Vector512.Create(x[3]); c3Lo = Vector512.FusedMultiplyAdd(a, b0, c3Lo); c3Hi = Vector512.FusedMultiplyAdd(a, b1, c3Hi);
            a = Vector512.Create(x[4]); c4Lo = Vector512.FusedMultiplyAdd(a, b0, c4Lo); c4Hi = Vector512.FusedMultiplyAdd(a, b1, c4Hi);
            a = Vector512.Create(x[5]); c5Lo = Vector512.FusedMultiplyAdd(a, b0, c5Lo); c5Hi = Vector512.FusedMultiplyAdd(a, b1, c5Hi);
            a = Vector512.Create(x[6]); c6Lo = Vector512.FusedMultiplyAdd(a, b0, c6Lo); c6Hi = Vector512.FusedMultiplyAdd(a, b1, c6Hi);
            a = Vector512.Create(x[7]); c7Lo = Vector512.FusedMultiplyAdd(a, b0, c7Lo); c7Hi = Vector512.FusedMultiplyAdd(a, b1, c7Hi);
            a = Vector512.Create(x[8]); c8Lo = Vector512.FusedMultiplyAdd(a, b0, c8Lo); c8Hi = Vector512.FusedMultiplyAdd(a, b1, c8Hi);
            a = Vector512.Create(x[9]); c9Lo = Vector512.FusedMultiplyAdd(a, b0, c9Lo); c9Hi = Vector512.FusedMultiplyAdd(a, b1, c9Hi);
            a = Vector512.Create(x[10]); c10Lo = Vector512.FusedMultiplyAdd(a, b0, c10Lo); c10Hi = Vector512.FusedMultiplyAdd(a, b1, c10Hi);
            a = Vector512.Create(x[11]); c11Lo = Vector512.FusedMultiplyAdd(a, b0, c11Lo); c11Hi = Vector512.FusedMultiplyAdd(a, b1, c11Hi);
            a = Vector512.Create(x[12]); c12Lo = Vector512.FusedMultiplyAdd(a, b0, c12Lo); c12Hi = Vector512.FusedMultiplyAdd(a, b1, c12Hi);
            a = Vector512.Create(x[13]); c13Lo = Vector512.FusedMultiplyAdd(a, b0, c13Lo); c13Hi = Vector512.FusedMultiplyAdd(a, b1, c13Hi);
        }
        Store512(y, c0Lo, c0Hi, accumulate); Store512(y + 1L * yStride, c1Lo, c1Hi, accumulate);
        Store512(y + 2L * yStride, c2Lo, c2Hi, accumulate); Store512(y + 3L * yStride, c3Lo, c3Hi, accumulate);
        Store512(y + 4L * yStride, c4Lo, c4Hi, accumulate); Store512(y + 5L * yStride, c5Lo, c5Hi, accumulate);
        Store512(y + 6L * yStride, c6Lo, c6Hi, accumulate); Store512(y + 7L * yStride, c7Lo, c7Hi, accumulate);
        Store512(y + 8L * yStride, c8Lo, c8Hi, accumulate); Store512(y + 9L * yStride, c9Lo, c9Hi, accumulate);
        Store512(y + 10L * yStride, c10Lo, c10Hi, accumulate); Store512(y + 11L * yStride, c11Lo, c11Hi, accumulate);
        Store512(y + 12L * yStride, c12Lo, c12Hi, accumulate); Store512(y + 13L * yStride, c13Lo, c13Hi, accumulate);
    }

    private static void Store512(float* y, Vector512<float> lo, Vector512<float> hi, bool accumulate)
    {
        if (accumulate) { lo += Vector512.Load(y); hi += Vector512.Load(y + 16); }
        lo.Store(y); hi.Store(y + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x16(float* x, float* b, int kc, float* y, int yStride, bool accumulate)
    {
        PrefetchTile(y, yStride, 6, 16);
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int k = 0; k < kc; k++, b += 16, x += 6)
        {
            if (Sse.IsSupported) Sse.Prefetch0(x + XAheadBytes / sizeof(float));
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var a = Vector256.Create(x[0]); c00 = Vector256.FusedMultiplyAdd(a, b0, c00); c01 = Vector256.FusedMultiplyAdd(a, b1, c01);
            a = Vector256.Create(x[1]); c10 = Vector256.FusedMultiplyAdd(a, b0, c10); c11 = Vector256.FusedMultiplyAdd(a, b1, c11);
            a = Vector256.Create(x[2]); c20 = Vector256.FusedMultiplyAdd(a, b0, c20); c21 = Vector256.FusedMultiplyAdd(a, b1, c21);
            a = Vector256.Create(x[3]); c30 = Vector256.FusedMultiplyAdd(a, b0, c30); c31 = Vector256.FusedMultiplyAdd(a, b1, c31);
            a = Vector256.Create(x[4]); c40 = Vector256.FusedMultiplyAdd(a, b0, c40); c41 = Vector256.FusedMultiplyAdd(a, b1, c41);
            a = Vector256.Create(x[5]); c50 = Vector256.FusedMultiplyAdd(a, b0, c50); c51 = Vector256.FusedMultiplyAdd(a, b1, c51);
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
    private static void KernelGeneric(float* x, float* b, int kc, float* y, int yStride, bool accumulate)
    {
        int width = Vector<float>.Count, nr = 2 * width;
        Vector<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        for (int k = 0; k < kc; k++, b += nr, x += 4)
        {
            var b0 = Vector.Load(b);
            var b1 = Vector.Load(b + width);
            var a = new Vector<float>(x[0]); c00 += a * b0; c01 += a * b1;
            a = new Vector<float>(x[1]); c10 += a * b0; c11 += a * b1;
            a = new Vector<float>(x[2]); c20 += a * b0; c21 += a * b1;
            a = new Vector<float>(x[3]); c30 += a * b0; c31 += a * b1;
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
