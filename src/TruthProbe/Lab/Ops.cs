using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TruthProbe.Lab;

/// <summary>
/// The layers of the Llama-style decoder, forward and backward, on row-major spans ([rows, width]).
/// Convention: a forward writes its output; a backward ADDS into the gradients of its inputs and weights
/// (residual branches and shared weights then need no extra code), so callers zero gradients once.
/// </summary>
public static class Ops
{
    // ---- embedding ----

    public static void EmbeddingForward(ReadOnlySpan<float> table, ReadOnlySpan<int> tokens, Span<float> x, int dim)
    {
        for (int t = 0; t < tokens.Length; t++) table.Slice(tokens[t] * dim, dim).CopyTo(x.Slice(t * dim, dim));
    }

    public static void EmbeddingBackward(ReadOnlySpan<float> dx, ReadOnlySpan<int> tokens, Span<float> dTable, int dim)
    {
        for (int t = 0; t < tokens.Length; t++)
        {
            var row = dTable.Slice(tokens[t] * dim, dim);
            TensorPrimitives.Add(row, dx.Slice(t * dim, dim), row);
        }
    }

    // ---- RMSNorm: y = x / sqrt(mean(x^2) + eps) * w ----

    public static void RmsNormForward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, Span<float> invRms, int dim, float eps)
    {
        int rows = invRms.Length;
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * dim, dim);
            float inv = 1f / MathF.Sqrt(TensorPrimitives.Dot(xr, xr) / dim + eps);
            invRms[r] = inv;
            var yr = y.Slice(r * dim, dim);
            TensorPrimitives.Multiply(xr, inv, yr);
            TensorPrimitives.Multiply(yr, w, yr);
        }
    }

    /// <summary>With xhat = x·inv and g = dy⊙w: dx = inv·(g − xhat·mean(g⊙xhat)), dw = Σ dy⊙xhat.</summary>
    public static void RmsNormBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> invRms,
        Span<float> dx, Span<float> dw, int dim)
    {
        Span<float> g = stackalloc float[dim];
        Span<float> xhat = stackalloc float[dim];
        for (int r = 0; r < invRms.Length; r++)
        {
            var dyr = dy.Slice(r * dim, dim);
            float inv = invRms[r];
            TensorPrimitives.Multiply(x.Slice(r * dim, dim), inv, xhat);
            TensorPrimitives.Multiply(dyr, w, g);
            TensorPrimitives.MultiplyAdd(dyr, xhat, dw, dw);
            float mean = TensorPrimitives.Dot(g, xhat) / dim;
            var dxr = dx.Slice(r * dim, dim);
            for (int i = 0; i < dim; i++) dxr[i] += inv * (g[i] - xhat[i] * mean);
        }
    }

    // ---- RoPE, Hugging Face half-split convention: pairs (i, i + headDim/2) ----

    /// <summary>cos/sin tables [maxPositions, headDim/2] for angle = pos · theta^(−2i/headDim).</summary>
    public static (float[] Cos, float[] Sin) RopeTables(int maxPositions, int headDim, double theta)
    {
        int half = headDim / 2;
        var cos = new float[maxPositions * half];
        var sin = new float[maxPositions * half];
        for (int p = 0; p < maxPositions; p++)
            for (int i = 0; i < half; i++)
            {
                double angle = p * Math.Pow(theta, -2.0 * i / headDim);
                cos[p * half + i] = (float)Math.Cos(angle);
                sin[p * half + i] = (float)Math.Sin(angle);
            }
        return (cos, sin);
    }

    /// <summary>
    /// Rotates every head of x [rows, heads·headDim] in place; row r sits at position r mod seqLen. The
    /// backward of a rotation is the rotation by the opposite angle, so <paramref name="inverse"/> serves it.
    /// </summary>
    public static void Rope(Span<float> x, int seqLen, int heads, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, bool inverse = false)
    {
        int half = headDim / 2, width = heads * headDim, rows = x.Length / width;
        float sign = inverse ? -1f : 1f;
        for (int r = 0; r < rows; r++)
        {
            int pos = r % seqLen;
            var c = cos.Slice(pos * half, half);
            var s = sin.Slice(pos * half, half);
            for (int h = 0; h < heads; h++)
            {
                var v = x.Slice(r * width + h * headDim, headDim);
                for (int i = 0; i < half; i++)
                {
                    float a = v[i], b = v[i + half], si = sign * s[i];
                    v[i] = a * c[i] - b * si;
                    v[i + half] = b * c[i] + a * si;
                }
            }
        }
    }

    // ---- causal grouped-query attention ----

    /// <summary>
    /// q [B·T, H·hd], k and v [B·T, Hkv·hd] → z [B·T, H·hd]; query head h reads kv head h / (H/Hkv).
    /// probs [B, H, T, T] keeps the softmax weights for the backward (entries above the diagonal are 0).
    /// </summary>
    public static void AttentionForward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> z, Span<float> probs,
        int batch, int seqLen, int heads, int kvHeads, int headDim)
    {
        for (int b = 0; b < batch; b++) AttentionForwardOne(q, k, v, z, probs, b, seqLen, heads, kvHeads, headDim);
    }

    internal static void AttentionForwardOne(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> z, Span<float> probs,
        int b, int seqLen, int heads, int kvHeads, int headDim)
    {
        int qWidth = heads * headDim, kvWidth = kvHeads * headDim, group = heads / kvHeads;
        float scale = 1f / MathF.Sqrt(headDim);
        for (int h = 0; h < heads; h++)
        {
            int kvOffset = (h / group) * headDim;
            for (int t = 0; t < seqLen; t++)
            {
                var qt = q.Slice((b * seqLen + t) * qWidth + h * headDim, headDim);
                var p = probs.Slice(((b * heads + h) * seqLen + t) * seqLen, seqLen);
                for (int s = 0; s <= t; s++) p[s] = scale * HeadDot(qt, k.Slice((b * seqLen + s) * kvWidth + kvOffset, headDim));
                TensorPrimitives.SoftMax(p[..(t + 1)], p[..(t + 1)]);
                p[(t + 1)..].Clear();
                var zt = z.Slice((b * seqLen + t) * qWidth + h * headDim, headDim);
                zt.Clear();
                for (int s = 0; s <= t; s++) HeadAxpy(v.Slice((b * seqLen + s) * kvWidth + kvOffset, headDim), p[s], zt);
            }
        }
    }

    /// <summary>dP = dz·vᵀ, dv += Pᵀ·dz, dS = P⊙(dP − rowsum(dP⊙P)), dq += scale·dS·k, dk += scale·dSᵀ·q.</summary>
    public static void AttentionBackward(ReadOnlySpan<float> dz, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> probs,
        Span<float> dq, Span<float> dk, Span<float> dv, int batch, int seqLen, int heads, int kvHeads, int headDim)
    {
        var dS = new float[seqLen];
        for (int b = 0; b < batch; b++) AttentionBackwardOne(dz, q, k, v, probs, dq, dk, dv, dS, b, seqLen, heads, kvHeads, headDim);
    }

    internal static void AttentionBackwardOne(ReadOnlySpan<float> dz, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> probs,
        Span<float> dq, Span<float> dk, Span<float> dv, Span<float> dS, int b, int seqLen, int heads, int kvHeads, int headDim)
    {
        int qWidth = heads * headDim, kvWidth = kvHeads * headDim, group = heads / kvHeads;
        float scale = 1f / MathF.Sqrt(headDim);
        for (int h = 0; h < heads; h++)
        {
            int kvOffset = (h / group) * headDim;
            for (int t = 0; t < seqLen; t++)
            {
                int qRow = (b * seqLen + t) * qWidth + h * headDim;
                var dzt = dz.Slice(qRow, headDim);
                var p = probs.Slice(((b * heads + h) * seqLen + t) * seqLen, t + 1);
                var ds = dS[..(t + 1)];
                for (int s = 0; s <= t; s++)
                {
                    int kvRow = (b * seqLen + s) * kvWidth + kvOffset;
                    ds[s] = HeadDot(dzt, v.Slice(kvRow, headDim));
                    var dvs = dv.Slice(kvRow, headDim);
                    HeadAxpy(dzt, p[s], dvs);
                }
                float rowDot = TensorPrimitives.Dot(ds, p);
                for (int s = 0; s <= t; s++) ds[s] = scale * p[s] * (ds[s] - rowDot);
                var qt = q.Slice(qRow, headDim);
                var dqt = dq.Slice(qRow, headDim);
                for (int s = 0; s <= t; s++)
                {
                    int kvRow = (b * seqLen + s) * kvWidth + kvOffset;
                    HeadAxpy(k.Slice(kvRow, headDim), ds[s], dqt);
                    var dks = dk.Slice(kvRow, headDim);
                    HeadAxpy(qt, ds[s], dks);
                }
            }
        }
    }

    /// <summary>
    /// Dot product of two head vectors. Heads are short (16-64 floats) and these calls sit in the innermost
    /// attention loops, so whole Vector512 chunks are done inline; other lengths fall back to TensorPrimitives.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float HeadDot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (!Vector512.IsHardwareAccelerated || a.Length % 16 != 0 || b.Length != a.Length) return TensorPrimitives.Dot(a, b);
        ref float ra = ref MemoryMarshal.GetReference(a), rb = ref MemoryMarshal.GetReference(b);
        var acc = Vector512.LoadUnsafe(ref ra) * Vector512.LoadUnsafe(ref rb);
        for (nuint i = 16; i < (nuint)a.Length; i += 16) acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref ra, i), Vector512.LoadUnsafe(ref rb, i), acc);
        return Vector512.Sum(acc);
    }

    /// <summary>y += alpha·x for head vectors (see <see cref="HeadDot"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void HeadAxpy(ReadOnlySpan<float> x, float alpha, Span<float> y)
    {
        if (!Vector512.IsHardwareAccelerated || x.Length % 16 != 0 || y.Length != x.Length) { TensorPrimitives.MultiplyAdd(x, alpha, y, y); return; }
        ref float rx = ref MemoryMarshal.GetReference(x), ry = ref MemoryMarshal.GetReference(y);
        var a = Vector512.Create(alpha);
        for (nuint i = 0; i < (nuint)x.Length; i += 16)
            Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rx, i), a, Vector512.LoadUnsafe(ref ry, i)).StoreUnsafe(ref ry, i);
    }

    // ---- SwiGLU: h = silu(gate) ⊙ up ----

    public static void SwiGluForward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> h)
    {
        gate = gate[..h.Length];
        TensorPrimitives.Sigmoid(gate, h);
        TensorPrimitives.Multiply(h, gate, h);
        TensorPrimitives.Multiply(h, up[..h.Length], h);
    }

    /// <summary>
    /// silu'(g) = σ(g)·(1 + g·(1 − σ(g))) = σ + silu(g)·(1 − σ). Works in chunks so the sigmoid is
    /// vectorised with stack buffers only.
    /// </summary>
    public static void SwiGluBackward(ReadOnlySpan<float> dh, ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> dGate, Span<float> dUp)
    {
        const int chunk = 256;
        Span<float> sigBuffer = stackalloc float[chunk], siluBuffer = stackalloc float[chunk], tmpBuffer = stackalloc float[chunk];
        for (int start = 0; start < dh.Length; start += chunk)
        {
            int len = Math.Min(chunk, dh.Length - start);
            ReadOnlySpan<float> d = dh.Slice(start, len), g = gate.Slice(start, len), u = up.Slice(start, len);
            Span<float> dg = dGate.Slice(start, len), du = dUp.Slice(start, len);
            Span<float> sig = sigBuffer[..len], silu = siluBuffer[..len], tmp = tmpBuffer[..len];
            TensorPrimitives.Sigmoid(g, sig);
            TensorPrimitives.Multiply(g, sig, silu);
            TensorPrimitives.MultiplyAdd(d, silu, du, du);
            TensorPrimitives.Subtract(1f, sig, tmp);
            TensorPrimitives.FusedMultiplyAdd(silu, tmp, sig, silu); // silu'(g)
            TensorPrimitives.Multiply(d, u, tmp);
            TensorPrimitives.MultiplyAdd(tmp, silu, dg, dg);
        }
    }

    // ---- cross-entropy with per-row weights ----

    /// <summary>
    /// Mean over weighted rows of −log softmax(logits)[target]; rows of weight 0 (prompt tokens, padding)
    /// neither count nor get a gradient. Writes dLogits (not accumulated: it starts the backward).
    /// Returns the loss; <paramref name="correct"/> counts weighted rows whose argmax is the target.
    /// </summary>
    public static double CrossEntropy(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> weights, Span<float> dLogits, int vocab, out int correct)
    {
        double weightSum = 0;
        foreach (float w in weights) weightSum += w;
        correct = 0;
        dLogits.Clear();
        if (weightSum == 0) return 0;
        double loss = 0;
        for (int r = 0; r < weights.Length; r++)
        {
            if (weights[r] == 0) continue;
            var lr = logits.Slice(r * vocab, vocab);
            var dr = dLogits.Slice(r * vocab, vocab);
            TensorPrimitives.SoftMax(lr, dr);
            int target = targets[r];
            loss -= weights[r] * Math.Log(Math.Max(dr[target], 1e-30f));
            if (TensorPrimitives.IndexOfMax(lr) == target) correct++;
            dr[target] -= 1f;
            TensorPrimitives.Multiply(dr, (float)(weights[r] / weightSum), dr);
        }
        return loss / weightSum;
    }
}
