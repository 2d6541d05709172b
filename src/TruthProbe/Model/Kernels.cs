using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
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

    private static void Widen(WeightDType dtype, byte* source, Span<float> destination)
    {
        int n = destination.Length;
        switch (dtype)
        {
            case WeightDType.F32: new ReadOnlySpan<float>(source, n).CopyTo(destination); break;
            case WeightDType.F16: TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(source, n), destination); break;
            case WeightDType.BF16: WidenBFloat16((ushort*)source, destination); break;
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

    private static void MatMulRows(WeightMatrix w, float* x, float* y, int tokens, int rowStart, int rowEnd)
    {
        int rows = w.Rows, cols = w.Cols;
        float[] scratch = RowScratch(cols);
        fixed (float* widened = scratch)
        {
            for (int r = rowStart; r < rowEnd; r++)
            {
                float* row;
                if (w.DType == WeightDType.F32) row = (float*)w.Row(r);
                else { Widen(w.DType, w.Row(r), new Span<float>(widened, cols)); row = widened; }
                int t = 0;
                for (; t + 4 <= tokens; t += 4)
                    Dot4(row, x + (long)t * cols, cols, y + (long)t * rows + r, rows);
                for (; t < tokens; t++)
                    y[(long)t * rows + r] = TensorPrimitives.Dot(new ReadOnlySpan<float>(row, cols), new ReadOnlySpan<float>(x + (long)t * cols, cols));
            }
        }
    }

    /// <summary>Four dot products of one row with four consecutive token vectors, sharing the row loads.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dot4(float* row, float* x, int n, float* y, int yStride)
    {
        float* x0 = x, x1 = x + n, x2 = x + 2 * n, x3 = x + 3 * n;
        int i = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 16 <= n; i += 16)
            {
                var r = Vector512.Load(row + i);
                a0 = Vector512.FusedMultiplyAdd(r, Vector512.Load(x0 + i), a0);
                a1 = Vector512.FusedMultiplyAdd(r, Vector512.Load(x1 + i), a1);
                a2 = Vector512.FusedMultiplyAdd(r, Vector512.Load(x2 + i), a2);
                a3 = Vector512.FusedMultiplyAdd(r, Vector512.Load(x3 + i), a3);
            }
            s0 = Vector512.Sum(a0); s1 = Vector512.Sum(a1); s2 = Vector512.Sum(a2); s3 = Vector512.Sum(a3);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 8 <= n; i += 8)
            {
                var r = Vector256.Load(row + i);
                a0 = Vector256.FusedMultiplyAdd(r, Vector256.Load(x0 + i), a0);
                a1 = Vector256.FusedMultiplyAdd(r, Vector256.Load(x1 + i), a1);
                a2 = Vector256.FusedMultiplyAdd(r, Vector256.Load(x2 + i), a2);
                a3 = Vector256.FusedMultiplyAdd(r, Vector256.Load(x3 + i), a3);
            }
            s0 = Vector256.Sum(a0); s1 = Vector256.Sum(a1); s2 = Vector256.Sum(a2); s3 = Vector256.Sum(a3);
        }
        for (; i < n; i++)
        {
            float r = row[i];
            s0 += r * x0[i]; s1 += r * x1[i]; s2 += r * x2[i]; s3 += r * x3[i];
        }
        y[0] = s0; y[yStride] = s1; y[2 * yStride] = s2; y[3 * yStride] = s3;
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
