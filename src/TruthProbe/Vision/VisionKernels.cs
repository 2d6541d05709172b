using System.Numerics.Tensors;

namespace TruthProbe.Vision;

/// <summary>The element-wise kernels a CLIP tower and the LLaVA projector add to the decoder's, span in / span out.</summary>
internal static class VisionKernels
{
    /// <summary>Values per stack chunk of the activation kernels: vector passes over a chunk that stays in L1.</summary>
    private const int Chunk = 256;

    /// <summary>y = (x - mean) / sqrt(var + eps) * weight + bias over one vector (biased variance, as torch); y may be x.</summary>
    public static void LayerNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, float eps, Span<float> y)
    {
        float mean = TensorPrimitives.Sum(x) / x.Length;
        // Two passes (mean, then squared deviations) rather than E[x^2] - mean^2, which cancels for rows far from 0.
        double squares = 0;
        for (int i = 0; i < x.Length; i++) { float c = x[i] - mean; squares += c * c; }
        float scale = (float)(1 / Math.Sqrt(squares / x.Length + eps));
        TensorPrimitives.Subtract(x, mean, y);
        TensorPrimitives.Multiply(y, scale, y);
        TensorPrimitives.MultiplyAdd(y, weight, bias, y);
    }

    /// <summary>In place x = x * sigmoid(1.702 x), CLIP's "quick_gelu".</summary>
    public static void QuickGelu(Span<float> x)
    {
        Span<float> s = stackalloc float[Chunk];
        for (int i = 0; i < x.Length; i += Chunk)
        {
            var v = x.Slice(i, Math.Min(Chunk, x.Length - i));
            var sv = s[..v.Length];
            TensorPrimitives.Multiply(v, 1.702f, sv);
            TensorPrimitives.Sigmoid(sv, sv);
            TensorPrimitives.Multiply(v, sv, v);
        }
    }

    /// <summary>
    /// In place x = x/2 (1 + erf(x / sqrt 2)), the exact GELU (torch's default "gelu"). erf is Abramowitz and Stegun
    /// 7.1.26 (absolute error below 1.5e-7, under float32's own rounding of the result), evaluated on vectors:
    /// .NET has no erf, and a scalar one would cost as much as the projector's GEMMs at 576 x 4096 values.
    /// </summary>
    public static void Gelu(Span<float> x)
    {
        const float P = 0.3275911f, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f, A4 = -1.453152027f, A5 = 1.061405429f;
        Span<float> buffer = stackalloc float[3 * Chunk];
        for (int i = 0; i < x.Length; i += Chunk)
        {
            var v = x.Slice(i, Math.Min(Chunk, x.Length - i));
            int n = v.Length;
            Span<float> z = buffer[..n], t = buffer.Slice(Chunk, n), e = buffer.Slice(2 * Chunk, n);
            TensorPrimitives.Multiply(v, 1 / MathF.Sqrt(2), z);
            TensorPrimitives.Abs(z, z);
            TensorPrimitives.Multiply(z, P, t);                    // t = 1 / (1 + p |z|)
            TensorPrimitives.Add(t, 1f, t);
            TensorPrimitives.Reciprocal(t, t);
            TensorPrimitives.Multiply(z, z, e);                    // e = exp(-z^2)
            TensorPrimitives.Negate(e, e);
            TensorPrimitives.Exp(e, e);
            TensorPrimitives.Multiply(t, A5, z);                   // Horner: z = t (a1 + t (a2 + t (a3 + t (a4 + t a5))))
            TensorPrimitives.Add(z, A4, z);
            TensorPrimitives.Multiply(z, t, z);
            TensorPrimitives.Add(z, A3, z);
            TensorPrimitives.Multiply(z, t, z);
            TensorPrimitives.Add(z, A2, z);
            TensorPrimitives.Multiply(z, t, z);
            TensorPrimitives.Add(z, A1, z);
            TensorPrimitives.Multiply(z, t, z);
            TensorPrimitives.Multiply(z, e, z);                    // z = 1 - erf(|x| / sqrt 2)
            // 1 + erf(x / sqrt 2) = 2 - z above 0 and z below, where z keeps its relative precision as it vanishes.
            for (int k = 0; k < n; k++) v[k] = 0.5f * v[k] * (v[k] < 0 ? z[k] : 2 - z[k]);
        }
    }
}
