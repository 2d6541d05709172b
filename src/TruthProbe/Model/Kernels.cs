using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace TruthProbe.Model;

/// <summary>
/// The numeric kernels of the forward pass, span in / span out, each replaceable on its own. Matrices of
/// 16-bit weights are widened to float32 here, a row at a time, never stored widened. The two heavy kernels
/// (<see cref="MatMul"/>, <see cref="Attention"/>) split their work over the thread pool.
/// </summary>
public static unsafe class Kernels
{
    /// <summary>Below this many multiply-adds a matmul runs on the calling thread: a fork costs more.</summary>
    private const long ParallelThreshold = 1 << 15;

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
    /// Work is split over output rows; each row is widened once and used for every token.
    /// </summary>
    public static void MatMul(WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        int rows = w.Rows, cols = w.Cols;
        if (x.Length < (long)tokens * cols || y.Length < (long)tokens * rows)
            throw new ArgumentException($"matmul [{rows}, {cols}] with {tokens} tokens: x has {x.Length}, y has {y.Length} floats");
        if (tokens == 1) MatVec.Multiply(w, x, y);
        else Gemm.Multiply(w, x, y, tokens);
    }

    private static void MatMulRowwise(WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        int rows = w.Rows, cols = w.Cols;
        fixed (float* px = x, py = y)
        {
            float* xs = px, ys = py;
            long work = (long)rows * cols * tokens;
            int blocks = work < ParallelThreshold ? 1 : Math.Min(rows, Environment.ProcessorCount * 8);
            if (blocks == 1) { MatMulRows(w, xs, ys, tokens, 0, rows); return; }
            Parallel.For(0, blocks, b =>
            {
                int start = (int)((long)rows * b / blocks), end = (int)((long)rows * (b + 1) / blocks);
                MatMulRows(w, xs, ys, tokens, start, end);
            });
        }
    }

    /// <summary>Output rows handled together in prefill: each widened row is reused by every token of a block.</summary>
    private const int RowGroup = 4;
    /// <summary>Tokens per block in prefill, so the block's inputs stay in L2 while the rows stream past.</summary>
    private const int TokenBlock = 64;

    private static void MatMulRows(WeightMatrix w, float* x, float* y, int tokens, int rowStart, int rowEnd)
    {
        int rows = w.Rows, cols = w.Cols;
        if (tokens == 1)
        {
            // Decode: memory-bound, so one fused pass over each row (bf16 widened in registers).
            for (int r = rowStart; r < rowEnd; r++) y[r] = DotRow(w, r, x);
            return;
        }
        float[] scratch = RowScratch(RowGroup * cols);
        fixed (float* widened = scratch)
        {
            float** group = stackalloc float*[RowGroup];
            for (int t0 = 0; t0 < tokens; t0 += TokenBlock)
            {
                int t1 = Math.Min(tokens, t0 + TokenBlock);
                for (int r0 = rowStart; r0 < rowEnd; r0 += RowGroup)
                {
                    int count = Math.Min(RowGroup, rowEnd - r0);
                    for (int g = 0; g < count; g++)
                    {
                        if (w.DType == WeightDType.F32) group[g] = (float*)w.Row(r0 + g);
                        else
                        {
                            group[g] = widened + g * cols;
                            Widen(w.DType, w.Row(r0 + g), new Span<float>(group[g], cols));
                        }
                    }
                    int t = t0;
                    if (count == RowGroup)
                        for (; t + 4 <= t1; t += 4)
                            Dot4x4(group, x + (long)t * cols, cols, y + (long)t * rows + r0, rows);
                    for (; t < t1; t++)
                        for (int g = 0; g < count; g++)
                            y[(long)t * rows + r0 + g] = TensorPrimitives.Dot(new ReadOnlySpan<float>(group[g], cols), new ReadOnlySpan<float>(x + (long)t * cols, cols));
                }
            }
        }
    }

    /// <summary>Row r of W dotted with x, widening 16-bit weights on the fly.</summary>
    private static float DotRow(WeightMatrix w, int r, float* x) => DotRow(w.Row(r), w.DType, x, w.Cols);

    /// <summary>A row of n values in <paramref name="dtype"/> dotted with x, widening on the fly.</summary>
    internal static float DotRow(byte* row, WeightDType dtype, float* x, int n)
    {
        switch (dtype)
        {
            case WeightDType.F32:
                return TensorPrimitives.Dot(new ReadOnlySpan<float>(row, n), new ReadOnlySpan<float>(x, n));
            case WeightDType.BF16:
                return DotBFloat16((ushort*)row, x, n);
            case WeightDType.Q8_0:
                return DotQ8_0(row, x, n);
            default:
                float[] scratch = RowScratch(n);
                Widen(dtype, row, scratch.AsSpan(0, n));
                return TensorPrimitives.Dot(scratch.AsSpan(0, n), new ReadOnlySpan<float>(x, n));
        }
    }

    private static float DotBFloat16(ushort* w, float* x, int n)
    {
        int i = 0;
        float sum = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> a0 = default, a1 = default;
            for (; i + 32 <= n; i += 32)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Load(w + i));
                a0 = Vector512.FusedMultiplyAdd(Vector512.ShiftLeft(lo, 16).AsSingle(), Vector512.Load(x + i), a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.ShiftLeft(hi, 16).AsSingle(), Vector512.Load(x + i + 16), a1);
            }
            sum = Vector512.Sum(a0 + a1);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> a0 = default, a1 = default;
            for (; i + 16 <= n; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(w + i));
                a0 = Vector256.FusedMultiplyAdd(Vector256.ShiftLeft(lo, 16).AsSingle(), Vector256.Load(x + i), a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.ShiftLeft(hi, 16).AsSingle(), Vector256.Load(x + i + 8), a1);
            }
            sum = Vector256.Sum(a0 + a1);
        }
        for (; i < n; i++) sum += BitConverter.Int32BitsToSingle(w[i] << 16) * x[i];
        return sum;
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

    /// <summary>
    /// A 4 x 4 tile: four rows against four consecutive token vectors, 16 accumulators, so each loaded
    /// vector feeds four multiply-adds. Writes y[t * yStride + g] for t, g in [0, 4).
    /// </summary>
    private static void Dot4x4(float** rows, float* x, int n, float* y, int yStride)
    {
        float* r0 = rows[0], r1 = rows[1], r2 = rows[2], r3 = rows[3];
        float* x0 = x, x1 = x + n, x2 = x + 2 * n, x3 = x + 3 * n;
        float* s = stackalloc float[16];
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
            Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
            Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
            Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
            for (; i + 16 <= n; i += 16)
            {
                var v0 = Vector512.Load(x0 + i); var v1 = Vector512.Load(x1 + i);
                var v2 = Vector512.Load(x2 + i); var v3 = Vector512.Load(x3 + i);
                var w = Vector512.Load(r0 + i);
                a00 = Vector512.FusedMultiplyAdd(w, v0, a00); a01 = Vector512.FusedMultiplyAdd(w, v1, a01);
                a02 = Vector512.FusedMultiplyAdd(w, v2, a02); a03 = Vector512.FusedMultiplyAdd(w, v3, a03);
                w = Vector512.Load(r1 + i);
                a10 = Vector512.FusedMultiplyAdd(w, v0, a10); a11 = Vector512.FusedMultiplyAdd(w, v1, a11);
                a12 = Vector512.FusedMultiplyAdd(w, v2, a12); a13 = Vector512.FusedMultiplyAdd(w, v3, a13);
                w = Vector512.Load(r2 + i);
                a20 = Vector512.FusedMultiplyAdd(w, v0, a20); a21 = Vector512.FusedMultiplyAdd(w, v1, a21);
                a22 = Vector512.FusedMultiplyAdd(w, v2, a22); a23 = Vector512.FusedMultiplyAdd(w, v3, a23);
                w = Vector512.Load(r3 + i);
                a30 = Vector512.FusedMultiplyAdd(w, v0, a30); a31 = Vector512.FusedMultiplyAdd(w, v1, a31);
                a32 = Vector512.FusedMultiplyAdd(w, v2, a32); a33 = Vector512.FusedMultiplyAdd(w, v3, a33);
            }
            s[0] = Vector512.Sum(a00); s[1] = Vector512.Sum(a01); s[2] = Vector512.Sum(a02); s[3] = Vector512.Sum(a03);
            s[4] = Vector512.Sum(a10); s[5] = Vector512.Sum(a11); s[6] = Vector512.Sum(a12); s[7] = Vector512.Sum(a13);
            s[8] = Vector512.Sum(a20); s[9] = Vector512.Sum(a21); s[10] = Vector512.Sum(a22); s[11] = Vector512.Sum(a23);
            s[12] = Vector512.Sum(a30); s[13] = Vector512.Sum(a31); s[14] = Vector512.Sum(a32); s[15] = Vector512.Sum(a33);
        }
        else
            for (int k = 0; k < 16; k++) s[k] = 0;
        // The tail, and the whole product where 512-bit vectors are missing: plain loops.
        for (; i < n; i++)
        {
            float v0 = x0[i], v1 = x1[i], v2 = x2[i], v3 = x3[i];
            for (int g = 0; g < 4; g++)
            {
                float w = rows[g][i];
                s[g * 4] += w * v0; s[g * 4 + 1] += w * v1; s[g * 4 + 2] += w * v2; s[g * 4 + 3] += w * v3;
            }
        }
        for (int t = 0; t < 4; t++)
            for (int g = 0; g < 4; g++) y[t * yStride + g] = s[g * 4 + t];
    }

    /// <summary>y = x / sqrt(mean(x^2) + eps) * weight, for one vector.</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        float scale = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(x) / x.Length + eps);
        TensorPrimitives.Multiply(x, scale, y);
        TensorPrimitives.Multiply(y, weight, y);
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

    /// <summary>gate = silu(gate) * up, the SwiGLU activation.</summary>
    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        for (int i = 0; i < gate.Length; i++)
        {
            float g = gate[i];
            gate[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }

    /// <summary>
    /// Causal multi-head attention of <paramref name="tokens"/> queries at absolute positions
    /// <paramref name="firstPosition"/>.. against the key/value cache ([positions, kvHeads * headDim]).
    /// Query head h reads kv head h / (heads / kvHeads). With a sliding window a query sees only the last
    /// <c>window</c> keys (itself included). z is [tokens, heads * headDim]. When <paramref name="pattern"/>
    /// is not empty it receives the softmax weights as [heads, tokens, firstPosition + tokens] (0 where masked).
    /// <paramref name="scores"/> is scratch of at least workers * (firstPosition + tokens) floats.
    /// </summary>
    public static void Attention(ReadOnlySpan<float> q, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, Span<float> z,
        int tokens, int firstPosition, int heads, int kvHeads, int headDim, int? window, Span<float> pattern, Span<float> scores, int workers)
    {
        if (pattern.IsEmpty)
        {
            FlashAttention.Run(q, keys, values, z, tokens, firstPosition, heads, kvHeads, headDim, window);
            return;
        }
        int total = firstPosition + tokens, kvDim = kvHeads * headDim, qDim = heads * headDim, group = heads / kvHeads;
        float scale = 1f / MathF.Sqrt(headDim);
        int items = tokens * heads;
        workers = Math.Max(1, Math.Min(workers, items));
        if (scores.Length < (long)workers * total) throw new ArgumentException("attention scratch too small");
        bool keepPattern = !pattern.IsEmpty;
        fixed (float* pq = q, pk = keys, pv = values, pz = z, pp = pattern, ps = scores)
        {
            float* qs = pq, ks = pk, vs = pv, zs = pz, pats = pp, scr = ps;
            void Work(int worker)
            {
                float* att = scr + (long)worker * total;
                for (int item = (int)((long)items * worker / workers); item < (long)items * (worker + 1) / workers; item++)
                {
                    int t = item / heads, h = item % heads, kvh = h / group;
                    int position = firstPosition + t;
                    int first = window is int w ? Math.Max(0, position - w + 1) : 0;
                    var query = new ReadOnlySpan<float>(qs + (long)t * qDim + h * headDim, headDim);
                    int count = position - first + 1;
                    for (int j = first; j <= position; j++)
                        att[j - first] = TensorPrimitives.Dot(query, new ReadOnlySpan<float>(ks + (long)j * kvDim + kvh * headDim, headDim)) * scale;
                    var weights = new Span<float>(att, count);
                    Softmax(weights);
                    var output = new Span<float>(zs + (long)t * qDim + h * headDim, headDim);
                    output.Clear();
                    for (int j = first; j <= position; j++)
                        TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(vs + (long)j * kvDim + kvh * headDim, headDim), weights[j - first], output, output);
                    if (keepPattern)
                    {
                        var row = new Span<float>(pats + ((long)h * tokens + t) * total, total);
                        row.Clear();
                        weights.CopyTo(row[first..]);
                    }
                }
            }
            if (workers == 1 || (long)items * total * headDim < ParallelThreshold) { for (int wk = 0; wk < workers; wk++) Work(wk); }
            else Parallel.For(0, workers, Work);
        }
    }
}
