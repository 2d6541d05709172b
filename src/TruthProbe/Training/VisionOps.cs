using System.Numerics.Tensors;

namespace TruthProbe.Training;

/// <summary>
/// The layers a CLIP-style tower and the LLaVA projector add to the decoder's <see cref="Ops"/>, forward and
/// backward on row-major spans, with the same convention: a backward ADDS into the gradients of its inputs and
/// weights, except attention, whose input gradients have no other source (it writes them). The lab's towers are
/// small (17 positions, width 64), so these run on one thread with <see cref="TensorPrimitives"/> inside a row:
/// next to the decoder's GEMMs they cost a few per cent of a step.
/// </summary>
internal static class VisionOps
{
    // ---- LayerNorm: y = (x - mean) / sqrt(var + eps) * w + b, biased variance as torch ----

    /// <summary>Writes y and, per row, the mean and 1/sqrt(var + eps) the backward needs; y may not be x.</summary>
    public static void LayerNormForward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, Span<float> mean, Span<float> rstd, int dim, float eps)
    {
        for (int r = 0; r < mean.Length; r++)
        {
            var xr = x.Slice(r * dim, dim);
            var yr = y.Slice(r * dim, dim);
            float m = TensorPrimitives.Sum(xr) / dim;
            // Two passes (mean, then squared deviations), as the engine's LayerNorm: no cancellation far from 0.
            double squares = 0;
            for (int i = 0; i < dim; i++) { float c = xr[i] - m; squares += c * c; }
            float s = (float)(1 / Math.Sqrt(squares / dim + eps));
            mean[r] = m;
            rstd[r] = s;
            TensorPrimitives.Subtract(xr, m, yr);
            TensorPrimitives.Multiply(yr, s, yr);
            TensorPrimitives.MultiplyAdd(yr, w, b, yr);
        }
    }

    /// <summary>With xhat = (x - mean)·rstd and g = dy⊙w: dx += rstd·(g − mean(g) − xhat·mean(g⊙xhat)), dw += Σ dy⊙xhat, db += Σ dy.</summary>
    public static void LayerNormBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        Span<float> dx, Span<float> dw, Span<float> db, int dim)
    {
        Span<float> xhat = stackalloc float[dim], g = stackalloc float[dim];
        for (int r = 0; r < mean.Length; r++)
        {
            var dyr = dy.Slice(r * dim, dim);
            TensorPrimitives.Subtract(x.Slice(r * dim, dim), mean[r], xhat);
            TensorPrimitives.Multiply(xhat, rstd[r], xhat);
            TensorPrimitives.MultiplyAdd(dyr, xhat, dw, dw);
            TensorPrimitives.Add(db, dyr, db);
            TensorPrimitives.Multiply(dyr, w, g);
            float meanG = TensorPrimitives.Sum(g) / dim, meanGx = TensorPrimitives.Dot(g, xhat) / dim;
            var dxr = dx.Slice(r * dim, dim);
            for (int i = 0; i < dim; i++) dxr[i] += rstd[r] * (g[i] - meanG - xhat[i] * meanGx);
        }
    }

    // ---- activations ----

    /// <summary>y = x·Φ(x), the exact (erf) GELU of the projector and of torch's "gelu".</summary>
    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = (float)(x[i] * NormalCdf(x[i]));
    }

    /// <summary>dx += dy·(Φ(x) + x·φ(x)).</summary>
    public static void GeluBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx)
    {
        for (int i = 0; i < dy.Length; i++)
        {
            double v = x[i];
            dx[i] += (float)(dy[i] * (NormalCdf(v) + v * Math.Exp(-0.5 * v * v) / Math.Sqrt(2 * Math.PI)));
        }
    }

    /// <summary>y = x·σ(1.702·x), CLIP's "quick_gelu".</summary>
    public static void QuickGeluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = x[i] / (1 + MathF.Exp(-1.702f * x[i]));
    }

    /// <summary>dx += dy·(σ + 1.702·x·σ·(1 − σ)), σ = σ(1.702·x).</summary>
    public static void QuickGeluBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx)
    {
        for (int i = 0; i < dy.Length; i++)
        {
            float s = 1 / (1 + MathF.Exp(-1.702f * x[i]));
            dx[i] += dy[i] * (s + 1.702f * x[i] * s * (1 - s));
        }
    }

    /// <summary>
    /// Φ(x) = (1 + erf(x/√2))/2 through erfc, W. J. Cody's rational Chebyshev fit as in Numerical Recipes' erfcc
    /// (relative error below 1.2e-7 everywhere): .NET has no erf, and this keeps Φ's relative precision far into the
    /// negative tail, where 1 + erf cancels.
    /// </summary>
    public static double NormalCdf(double x)
    {
        double z = Math.Abs(x) / Math.Sqrt(2), t = 1 / (1 + 0.5 * z);
        double erfc = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? 1 - 0.5 * erfc : 0.5 * erfc;
    }

    // ---- biases ----

    /// <summary>Every row of y [rows, width] += b.</summary>
    public static void AddBias(Span<float> y, ReadOnlySpan<float> b)
    {
        for (int r = 0; r < y.Length; r += b.Length) TensorPrimitives.Add(y.Slice(r, b.Length), b, y.Slice(r, b.Length));
    }

    /// <summary>db += Σ over rows of dy.</summary>
    public static void BiasBackward(ReadOnlySpan<float> dy, Span<float> db)
    {
        for (int r = 0; r < dy.Length; r += db.Length) TensorPrimitives.Add(db, dy.Slice(r, db.Length), db);
    }

    // ---- bidirectional multi-head attention, no mask ----

    /// <summary>
    /// q, k, v [images·n, heads·hd] → z [images·n, heads·hd]; every position of an image sees all n of that image.
    /// probs [images, heads, n, n] keeps the softmax weights for the backward.
    /// </summary>
    public static void AttentionForward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> z, Span<float> probs, int images, int n, int heads, int hd)
    {
        int width = heads * hd;
        float scale = 1f / MathF.Sqrt(hd);
        for (int b = 0; b < images; b++)
            for (int h = 0; h < heads; h++)
            {
                var p = probs.Slice((b * heads + h) * n * n, n * n);
                for (int t = 0; t < n; t++)
                {
                    var qt = q.Slice((b * n + t) * width + h * hd, hd);
                    var row = p.Slice(t * n, n);
                    for (int s = 0; s < n; s++) row[s] = scale * TensorPrimitives.Dot(qt, k.Slice((b * n + s) * width + h * hd, hd));
                    TensorPrimitives.SoftMax(row, row);
                    var zt = z.Slice((b * n + t) * width + h * hd, hd);
                    zt.Clear();
                    for (int s = 0; s < n; s++) TensorPrimitives.MultiplyAdd(v.Slice((b * n + s) * width + h * hd, hd), row[s], zt, zt);
                }
            }
    }

    /// <summary>
    /// dP = dz·vᵀ, dS = P⊙(dP − rowsum(dP⊙P)), dq = scale·dS·k, dk = scale·dSᵀ·q, dv = Pᵀ·dz. Writes dq, dk and dv.
    /// </summary>
    public static void AttentionBackward(ReadOnlySpan<float> dz, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> probs,
        Span<float> dq, Span<float> dk, Span<float> dv, int images, int n, int heads, int hd)
    {
        int width = heads * hd;
        float scale = 1f / MathF.Sqrt(hd);
        dq[..(images * n * width)].Clear();
        dk[..(images * n * width)].Clear();
        dv[..(images * n * width)].Clear();
        Span<float> ds = stackalloc float[n];
        for (int b = 0; b < images; b++)
            for (int h = 0; h < heads; h++)
            {
                var p = probs.Slice((b * heads + h) * n * n, n * n);
                for (int t = 0; t < n; t++)
                {
                    var row = p.Slice(t * n, n);
                    var dzt = dz.Slice((b * n + t) * width + h * hd, hd);
                    float dot = 0;
                    for (int s = 0; s < n; s++)
                    {
                        ds[s] = TensorPrimitives.Dot(dzt, v.Slice((b * n + s) * width + h * hd, hd));
                        dot += ds[s] * row[s];
                    }
                    var qt = q.Slice((b * n + t) * width + h * hd, hd);
                    var dqt = dq.Slice((b * n + t) * width + h * hd, hd);
                    for (int s = 0; s < n; s++)
                    {
                        float g = scale * row[s] * (ds[s] - dot);
                        int at = (b * n + s) * width + h * hd;
                        TensorPrimitives.MultiplyAdd(k.Slice(at, hd), g, dqt, dqt);
                        TensorPrimitives.MultiplyAdd(qt, g, dk.Slice(at, hd), dk.Slice(at, hd));
                        TensorPrimitives.MultiplyAdd(dzt, row[s], dv.Slice(at, hd), dv.Slice(at, hd));
                    }
                }
            }
    }

    // ---- patches ----

    /// <summary>
    /// im2col of images [images, channels, size, size]: patch (row, column) in row-major order becomes one row of
    /// (channel, y, x) values, the convolution kernel's own flattening, so the stride-p convolution is patches·kernelᵀ.
    /// </summary>
    public static void Unfold(ReadOnlySpan<float> pixels, Span<float> patches, int images, int channels, int size, int patch)
    {
        int grid = size / patch, values = channels * patch * patch;
        for (int b = 0; b < images; b++)
        {
            var image = pixels.Slice(b * channels * size * size, channels * size * size);
            for (int py = 0; py < grid; py++)
                for (int px = 0; px < grid; px++)
                {
                    var row = patches.Slice(((b * grid + py) * grid + px) * values, values);
                    for (int ch = 0; ch < channels; ch++)
                        for (int y = 0; y < patch; y++)
                            image.Slice(ch * size * size + (py * patch + y) * size + px * patch, patch).CopyTo(row.Slice((ch * patch + y) * patch, patch));
                }
        }
    }
}
