using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TruthProbe.Numerics;

namespace TruthProbe.Model;

/// <summary>
/// The numeric kernels of the forward pass, span in / span out, each replaceable on its own. Matrices of
/// 16-bit (and Q8_0) weights are widened to float32 here, a row at a time, never stored widened. The two heavy kernels,
/// <see cref="MatMul"/> and <see cref="FlashAttention"/>, split their work over the cores with <see cref="TruthProbe.Numerics.WorkerPool"/>,
/// which allocates nothing per call.
/// </summary>
internal static unsafe class Kernels
{
    [ThreadStatic] private static float[]? _rowScratch;

    private static float[] RowScratch(int length)
    {
        var s = _rowScratch;
        if (s == null || s.Length < length) _rowScratch = s = new float[Math.Max(length, 1024)];
        return s;
    }

    /// <summary>Row r of W widened to float32.</summary>
    public static void WidenRow(WeightMatrix w, int r, Span<float> destination)
    {
        if ((uint)r >= (uint)w.Rows) throw new ArgumentOutOfRangeException(nameof(r));
        if (destination.Length < w.Cols) throw new ArgumentException("destination shorter than a row");
        Widen(w.DType, w.Row(r), destination[..w.Cols]);
    }

    /// <summary>Byte offset of value k within a row (k a multiple of the Q8_0 block for Q8_0).</summary>
    internal static long SegmentOffset(WeightDType dtype, int k) => dtype == WeightDType.Q8_0 ? k / WeightMatrix.Q8_0Block * 34L : WeightMatrix.RowBytesFor(dtype, k);

    internal static void Widen(WeightDType dtype, byte* source, Span<float> destination)
    {
        int n = destination.Length;
        switch (dtype)
        {
            case WeightDType.F32: new ReadOnlySpan<float>(source, n).CopyTo(destination); break;
            case WeightDType.F16: TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(source, n), destination); break;
            case WeightDType.BF16: WidenBFloat16((ushort*)source, destination); break;
            case WeightDType.Q8_0: WidenQ8_0(source, destination); break;
            default: throw new NotSupportedException(dtype.ToString());
        }
    }

    /// <summary>bf16 is the upper half of an fp32: widening is a zero-extend and a 16-bit shift.</summary>
    public static void WidenBFloat16(ushort* source, Span<float> destination)
    {
        int n = destination.Length, i = 0;
        fixed (float* d = destination)
        {
            if (Vector512.IsHardwareAccelerated)
                for (; i + 32 <= n; i += 32)
                {
                    var (lo, hi) = Vector512.Widen(Vector512.Load(source + i));
                    Vector512.ShiftLeft(lo, 16).AsSingle().Store(d + i);
                    Vector512.ShiftLeft(hi, 16).AsSingle().Store(d + i + 16);
                }
            else if (Vector256.IsHardwareAccelerated)
                for (; i + 16 <= n; i += 16)
                {
                    var (lo, hi) = Vector256.Widen(Vector256.Load(source + i));
                    Vector256.ShiftLeft(lo, 16).AsSingle().Store(d + i);
                    Vector256.ShiftLeft(hi, 16).AsSingle().Store(d + i + 8);
                }
            for (; i < n; i++) d[i] = BitConverter.Int32BitsToSingle(source[i] << 16);
        }
    }

    /// <summary>
    /// y[t] = W x[t] for t in [0, tokens): x is [tokens, W.Cols], y is [tokens, W.Rows], both row-major.
    /// One token (decode) streams W once (<see cref="MatVec"/>); several run the packed, register-tiled <see cref="Gemm"/>.
    /// </summary>
    public static void MatMul(WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        int rows = w.Rows, cols = w.Cols;
        if (x.Length < (long)tokens * cols || y.Length < (long)tokens * rows)
            throw new ArgumentException($"matmul [{rows}, {cols}] with {tokens} tokens: x has {x.Length}, y has {y.Length} floats");
        if (tokens == 1) MatVec.Multiply(w, x, y);
        else WeightGemm.Multiply(w, x, y, tokens);
    }

    /// <summary>A row of n values in <paramref name="dtype"/> dotted with x, widening on the fly; bf16 rows (what decode
    /// spends its time in) on the vector width <paramref name="path"/> names, so every width runs, and is tested, on one machine.</summary>
    internal static float DotRow(byte* row, WeightDType dtype, float* x, int n, SimdPath path)
    {
        switch (dtype)
        {
            case WeightDType.F32:
                return TensorPrimitives.Dot(new ReadOnlySpan<float>(row, n), new ReadOnlySpan<float>(x, n));
            case WeightDType.BF16:
                return DotBFloat16((ushort*)row, x, n, path);
            case WeightDType.Q8_0:
                return DotQ8_0(row, x, n);
            case WeightDType.F16:
                float[] widened = RowScratch(n);
                WidenFloat16Prefetching((Half*)row, widened.AsSpan(0, n));
                return TensorPrimitives.Dot(widened.AsSpan(0, n), new ReadOnlySpan<float>(x, n));
            default:
                throw new NotSupportedException(dtype.ToString());
        }
    }

    /// <summary>8 bf16 values at <paramref name="p"/> as float32 with one zero-extending load (vpmovzxwd) and a shift:
    /// <c>Vector256.Widen</c> of 16 values also extracts the upper half, and that extra shuffle per 32 bytes measured
    /// 3-7% more CPU per byte in the decode dot product on AVX2 (same bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> BFloat16x8(ushort* p) => Avx2.IsSupported
        ? Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(p), 16).AsSingle()
        : Vector256.ShiftLeft(Vector256.WidenLower(Vector128.Load(p).ToVector256()), 16).AsSingle();

    /// <summary>16 bf16 values at <paramref name="p"/> as float32 with one zero-extending load (vpmovzxwd zmm, m256) and a
    /// shift: <c>Vector512.Widen</c> of 32 values extracts the upper half and zero-extends both halves from registers, and on
    /// Zen 4 that cost ~10% more CPU per byte in the decode dot product than this (same bits; "Decode on both widths" in
    /// docs/performance.md).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> BFloat16x16(ushort* p) => Avx512F.IsSupported
        ? Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(Vector256.Load(p)), 16).AsSingle()
        : Vector512.ShiftLeft(Vector512.WidenLower(Vector256.Load(p).ToVector512()), 16).AsSingle();

    /// <summary>8 fp16 values at <paramref name="p"/> as float32, the bits of <c>(float)Half</c> for every number and
    /// infinity (a NaN stays a NaN, its quiet bit not set): exponent rebiased by 112, or by 224 for infinities and
    /// NaNs; subnormals and zeros as (2^-14 + m 2^-24) - 2^-14, which is exact.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Float16x8(ushort* p)
    {
        var h = Avx2.IsSupported ? Avx2.ConvertToVector256Int32(p).AsUInt32() : Vector256.WidenLower(Vector128.Load(p).ToVector256());
        var magnitude = Vector256.ShiftLeft(h & Vector256.Create(0x7FFFu), 13) + Vector256.Create(0x3800_0000u);
        var exponent = h & Vector256.Create(0x7C00u);
        magnitude += Vector256.Equals(exponent, Vector256.Create(0x7C00u)) & Vector256.Create(0x3800_0000u);
        var subnormal = (magnitude + Vector256.Create(0x0080_0000u)).AsSingle() - Vector256.Create(0x3880_0000u).AsSingle();
        var value = Vector256.ConditionalSelect(Vector256.Equals(exponent, Vector256<uint>.Zero).AsSingle(), subnormal, magnitude.AsSingle());
        return value | Vector256.ShiftLeft(h & Vector256.Create(0x8000u), 16).AsSingle();
    }

    /// <summary>16 fp16 values at <paramref name="p"/> as float32 in one zmm register, the same bits as
    /// <see cref="Float16x8"/>: exponent and mantissa moved into place and scaled by 2^112, exact for every finite value
    /// (a subnormal becomes a float32 subnormal first, then a normal number), with the all-ones exponent (infinities,
    /// NaNs) set directly. The GEMM's panel packing had widened fp16 as two 8-wide halves joined.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Float16x16(ushort* p)
    {
        var h = Avx512F.IsSupported ? Avx512F.ConvertToVector512Int32(Vector256.Load(p)).AsUInt32() : Vector512.WidenLower(Vector256.Load(p).ToVector512());
        var bits = Vector512.ShiftLeft(h & Vector512.Create(0x7FFFu), 13);
        var finite = bits.AsSingle() * Vector512.Create(0x7780_0000u).AsSingle();
        var special = Vector512.Equals(h & Vector512.Create(0x7C00u), Vector512.Create(0x7C00u)).AsSingle();
        var value = Vector512.ConditionalSelect(special, (bits | Vector512.Create(0x7F80_0000u)).AsSingle(), finite);
        return value | Vector512.ShiftLeft(h & Vector512.Create(0x8000u), 16).AsSingle();
    }

    /// <summary>How far ahead of its loads a weight-streaming kernel asks for the row's bytes: a 4 KB page. Intel's L2
    /// streamer stops at each page's end and keeps few lines in flight per core, so a plain sequential read of the weights
    /// gets ~2/3 of the bandwidth once widening and FMAs sit between the loads (Sapphire Rapids; "Decode on Intel: prefetch"
    /// in docs/performance.md). Into L2 (prefetcht1), not L1: the line is read once, a few hundred cycles later.</summary>
    private const int PrefetchBytes = 4096;

    /// <summary>A hint to start reading the cache line <see cref="PrefetchBytes"/> after <paramref name="p"/>; it never
    /// faults, so a row's last lines may name memory past the matrix.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void PrefetchAhead(void* p)
    {
        if (Sse.IsSupported) Sse.Prefetch1((byte*)p + PrefetchBytes);
    }

    private static float DotBFloat16(ushort* w, float* x, int n, SimdPath path)
    {
        int i = 0;
        float sum = 0;
        if (path == SimdPath.Vector512)
        {
            Vector512<float> a0 = default, a1 = default;
            for (; i + 32 <= n; i += 32)
            {
                PrefetchAhead(w + i);
                a0 = Vector512.FusedMultiplyAdd(BFloat16x16(w + i), Vector512.Load(x + i), a0);
                a1 = Vector512.FusedMultiplyAdd(BFloat16x16(w + i + 16), Vector512.Load(x + i + 16), a1);
            }
            sum = Vector512.Sum(a0 + a1);
        }
        else if (path == SimdPath.Vector256)
        {
            Vector256<float> a0 = default, a1 = default;
            // A cache line an iteration, so one prefetch each; the accumulators take the same values in the same order
            // as in the 16-value loop below, so the sum's bits do not depend on where the unrolled part ends.
            for (; i + 32 <= n; i += 32)
            {
                PrefetchAhead(w + i);
                a0 = Vector256.FusedMultiplyAdd(BFloat16x8(w + i), Vector256.Load(x + i), a0);
                a1 = Vector256.FusedMultiplyAdd(BFloat16x8(w + i + 8), Vector256.Load(x + i + 8), a1);
                a0 = Vector256.FusedMultiplyAdd(BFloat16x8(w + i + 16), Vector256.Load(x + i + 16), a0);
                a1 = Vector256.FusedMultiplyAdd(BFloat16x8(w + i + 24), Vector256.Load(x + i + 24), a1);
            }
            for (; i + 16 <= n; i += 16)
            {
                a0 = Vector256.FusedMultiplyAdd(BFloat16x8(w + i), Vector256.Load(x + i), a0);
                a1 = Vector256.FusedMultiplyAdd(BFloat16x8(w + i + 8), Vector256.Load(x + i + 8), a1);
            }
            sum = Vector256.Sum(a0 + a1);
        }
        for (; i < n; i++) sum += BitConverter.Int32BitsToSingle(w[i] << 16) * x[i];
        return sum;
    }

    /// <summary>An fp16 row widened as <see cref="Widen"/> does, a kilobyte at a time after asking for the lines a page
    /// ahead of it (<see cref="PrefetchAhead"/>): the same values, so the dot product over them keeps its bits.</summary>
    private static void WidenFloat16Prefetching(Half* source, Span<float> destination)
    {
        const int ChunkValues = 512, LineValues = 32;
        for (int i = 0; i < destination.Length; i += ChunkValues)
        {
            int n = Math.Min(ChunkValues, destination.Length - i);
            for (int line = 0; line < n; line += LineValues) PrefetchAhead(source + i + line);
            TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(source + i, n), destination.Slice(i, n));
        }
    }

    /// <summary>Q8_0 blocks (fp16 scale, 32 int8) to float32: value = scale * q.</summary>
    public static void WidenQ8_0(byte* source, Span<float> destination)
    {
        const int B = WeightMatrix.Q8_0Block;
        fixed (float* d = destination)
            for (int b = 0; b < destination.Length / B; b++)
            {
                byte* block = source + b * 34;
                float scale = (float)*(Half*)block;
                sbyte* q = (sbyte*)(block + 2);
                float* o = d + b * B;
                if (Vector256.IsHardwareAccelerated)
                {
                    var (q0, q1, q2, q3) = Q8Block(q);
                    (q0 * scale).Store(o); (q1 * scale).Store(o + 8); (q2 * scale).Store(o + 16); (q3 * scale).Store(o + 24);
                }
                else
                    for (int i = 0; i < B; i++) o[i] = scale * q[i];
            }
    }

    /// <summary>The 32 int8 of a Q8_0 block as four vectors of 8 floats, in order.</summary>
    private static (Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>) Q8Block(sbyte* q)
    {
        var (a, b) = Vector256.Widen(Vector256.Load(q));
        var (a0, a1) = Vector256.Widen(a);
        var (b0, b1) = Vector256.Widen(b);
        return (Vector256.ConvertToSingle(a0), Vector256.ConvertToSingle(a1), Vector256.ConvertToSingle(b0), Vector256.ConvertToSingle(b1));
    }

    /// <summary>Dot product of a Q8_0 row with x: per block, (q . x) * scale.</summary>
    private static float DotQ8_0(byte* row, float* x, int n)
    {
        const int B = WeightMatrix.Q8_0Block;
        float sum = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> acc = default;
            for (int b = 0; b < n / B; b++, x += B)
            {
                byte* block = row + b * 34;
                PrefetchAhead(block); // ~twice a cache line: a test per block would cost more than the repeated hint
                var (q0, q1, q2, q3) = Q8Block((sbyte*)(block + 2));
                var partial = q0 * Vector256.Load(x) + q1 * Vector256.Load(x + 8) + q2 * Vector256.Load(x + 16) + q3 * Vector256.Load(x + 24);
                acc = Vector256.FusedMultiplyAdd(partial, Vector256.Create((float)*(Half*)block), acc);
            }
            return Vector256.Sum(acc);
        }
        for (int b = 0; b < n / B; b++)
        {
            byte* block = row + b * 34;
            sbyte* q = (sbyte*)(block + 2);
            float s = 0;
            for (int i = 0; i < B; i++) s += q[i] * x[b * B + i];
            sum += s * (float)*(Half*)block;
        }
        return sum;
    }

    /// <summary>y = x / sqrt(mean(x^2) + eps) * weight, for one vector.</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        float scale = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(x) / x.Length + eps);
        TensorPrimitives.Multiply(x, scale, y);
        TensorPrimitives.Multiply(y, weight, y);
    }

    private struct RowArgs
    {
        public float* A, B, C, D;
        public int Width, OtherWidth, HeadDim;
        public float Eps;
        public delegate*<Span<float>, ReadOnlySpan<float>, void> Op;
    }

    /// <summary><see cref="RmsNorm"/> of each of <paramref name="rows"/> rows of x (as wide as the weight) into y, the rows split over the cores.</summary>
    public static void RmsNormRows(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y, int rows)
    {
        int d = weight.Length;
        if (x.Length < (long)rows * d || y.Length < (long)rows * d) throw new ArgumentException($"{rows} rows of {d}: x has {x.Length}, y has {y.Length} floats");
        fixed (float* px = x, pw = weight, py = y)
        {
            var args = new RowArgs { A = px, B = pw, C = py, Width = d, Eps = eps };
            RowSplit.Run(&NormRows, &args, rows, d);
        }
    }

    private static void NormRows(void* args, int first, int end)
    {
        ref RowArgs a = ref *(RowArgs*)args;
        for (long t = first; t < end; t++)
            RmsNorm(new ReadOnlySpan<float>(a.A + t * a.Width, a.Width), new ReadOnlySpan<float>(a.B, a.Width), a.Eps, new Span<float>(a.C + t * a.Width, a.Width));
    }

    /// <summary><see cref="Rope"/> on row t of q (<paramref name="qDim"/> wide) and of k (<paramref name="kvDim"/> wide) by row t of
    /// cos and sin (head_dim / 2 wide), for <paramref name="rows"/> rows split over the cores.</summary>
    public static void RopeRows(Span<float> q, int qDim, Span<float> k, int kvDim, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int rows)
    {
        int half = headDim / 2;
        if (q.Length < (long)rows * qDim || k.Length < (long)rows * kvDim || cos.Length < (long)rows * half || sin.Length < (long)rows * half)
            throw new ArgumentException($"RoPE on {rows} rows: q, k, cos or sin too short");
        fixed (float* pq = q, pk = k, pc = cos, ps = sin)
        {
            var args = new RowArgs { A = pq, B = pk, C = pc, D = ps, Width = qDim, OtherWidth = kvDim, HeadDim = headDim };
            RowSplit.Run(&RopeRows, &args, rows, qDim + kvDim);
        }
    }

    private static void RopeRows(void* args, int first, int end)
    {
        ref RowArgs a = ref *(RowArgs*)args;
        int half = a.HeadDim / 2;
        for (long t = first; t < end; t++)
        {
            var cos = new ReadOnlySpan<float>(a.C + t * half, half);
            var sin = new ReadOnlySpan<float>(a.D + t * half, half);
            Rope(new Span<float>(a.A + t * a.Width, a.Width), a.HeadDim, cos, sin);
            Rope(new Span<float>(a.B + t * a.OtherWidth, a.OtherWidth), a.HeadDim, cos, sin);
        }
    }

    /// <summary>x += y over <paramref name="rows"/> rows of <paramref name="width"/>, split over the cores (the residual adds).</summary>
    public static void AddRows(Span<float> x, ReadOnlySpan<float> y, int rows, int width) => InPlaceRows(&Add, x, y, rows, width);

    /// <summary><see cref="SwiGlu"/> on <paramref name="rows"/> rows of <paramref name="width"/>, split over the cores.</summary>
    public static void SwiGluRows(Span<float> gate, ReadOnlySpan<float> up, int rows, int width) => InPlaceRows(&SwiGlu, gate, up, rows, width);

    private static void Add(Span<float> x, ReadOnlySpan<float> y) => TensorPrimitives.Add(x, y, x);

    /// <summary>op(x, y) on x in place over rows of <paramref name="width"/>, a range of rows at a time.</summary>
    private static void InPlaceRows(delegate*<Span<float>, ReadOnlySpan<float>, void> op, Span<float> x, ReadOnlySpan<float> y, int rows, int width)
    {
        if (x.Length < (long)rows * width || y.Length < (long)rows * width) throw new ArgumentException($"{rows} rows of {width}: the spans have {x.Length} and {y.Length} floats");
        fixed (float* px = x, py = y)
        {
            var args = new RowArgs { A = px, B = py, Width = width, Op = op };
            RowSplit.Run(&InPlaceRange, &args, rows, width);
        }
    }

    private static void InPlaceRange(void* args, int first, int end)
    {
        ref RowArgs a = ref *(RowArgs*)args;
        int n = (end - first) * a.Width;
        a.Op(new Span<float>(a.A + (long)first * a.Width, n), new ReadOnlySpan<float>(a.B + (long)first * a.Width, n));
    }

    /// <summary>In place, numerically safe (the maximum is subtracted first).</summary>
    public static void Softmax(Span<float> x)
    {
        float max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, x);
        TensorPrimitives.Exp(x, x);
        TensorPrimitives.Divide(x, TensorPrimitives.Sum(x), x);
    }

    /// <summary>
    /// Rotary position embedding in the half-split layout (Hugging Face): within each head, x[i] and
    /// x[i + d/2] rotate by the angle whose cosine and sine are cos[i], sin[i].
    /// </summary>
    public static void Rope(Span<float> heads, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int half = headDim / 2;
        for (int start = 0; start < heads.Length; start += headDim)
        {
            var a = heads.Slice(start, half);
            var b = heads.Slice(start + half, half);
            for (int i = 0; i < half; i++)
            {
                float x0 = a[i], x1 = b[i];
                a[i] = x0 * cos[i] - x1 * sin[i];
                b[i] = x1 * cos[i] + x0 * sin[i];
            }
        }
    }

    /// <summary>gate = silu(gate) * up = gate * sigmoid(gate) * up, the SwiGLU activation. Vectorised in chunks:
    /// a scalar exp per element was ~10% of a 512-token prefill (2.5M values per layer at Qwen2.5-0.5B shapes).</summary>
    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        Span<float> sigmoid = stackalloc float[256];
        for (int i = 0; i < gate.Length; i += sigmoid.Length)
        {
            int n = Math.Min(sigmoid.Length, gate.Length - i);
            var g = gate.Slice(i, n);
            TensorPrimitives.Sigmoid(g, sigmoid[..n]);
            TensorPrimitives.Multiply(g, sigmoid[..n], g);
            TensorPrimitives.Multiply(g, up.Slice(i, n), g);
        }
    }
}
