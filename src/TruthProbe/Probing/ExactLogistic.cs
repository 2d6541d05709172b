using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TruthProbe.Numerics;

namespace TruthProbe.Probing;

/// <summary>
/// The default probe solver: L2-regularised logistic regression solved to convergence by damped Newton.
/// <para>Problem, for the n training rows of one head: features are standardised with the training rows'
/// mean and (population) standard deviation, z = (x - mean) / sd (a constant feature gets sd 1), then
/// minimise f(theta) = (1/n) sum_i [log(1 + e^m_i) - y_i m_i] + (L2/2) ||w||^2 with m_i = w.z_i + b and
/// theta = (w, b). The bias is not penalised. Standardising makes one L2 strength mean the same thing for
/// every head and model, whatever the scale of its activations.</para>
/// <para>Newton: the Hessian (1/n) Z'diag(p(1-p))Z + L2 I_w is accumulated in float32 (it only steers the
/// step) and factorised by Cholesky in float64 at the first step of a head's first fit; later steps, and the
/// head's later fits (its other folds: mostly the same rows, so a Hessian much like the last), solve with the
/// current Hessian by a few conjugate-gradient steps preconditioned by that factor (refactorising when they do not
/// suffice); their Hessian products are float32 too. A fit starts from the previous fit's solution (or the one
/// <see cref="HoldWarmStart"/> held, together with that fit's last factor: a later refactorisation goes to a second
/// buffer, so every held fold starts preconditioned by the all-rows Hessian, one fold's rows from its own), kept as
/// raw weights and mapped into this fit's standardisation. Steps go through a backtracking (Armijo) line search; margins, objective and gradient are
/// float64, so the fixed point is the exact optimum. Stops when the gradient's 2-norm is below
/// <see cref="GradientTolerance"/>.</para>
/// The returned weights are mapped back to the raw activations: logit = w_raw.x + b_raw.
/// <para><see cref="FitCounted"/> fits rows that stand for c_i copies each (the row bootstrap's draws): every
/// per-row sum above, the mean and sd included, weighs row i by c_i and divides by sum c_i instead of n, which is
/// the same problem as the copies written out, on fewer rows. A plain fit is the counted one with every c_i = 1,
/// and multiplying by 1.0 is exact, so its bits are those of the uncounted code.</para>
/// </summary>
internal sealed unsafe class ExactLogistic : IHeadSolver
{
    public const double L2 = 1e-2;
    public const double GradientTolerance = 1e-9;
    public const int MaxIterations = 100;
    private const int MaxConjugateSteps = 3;

    private const int Lanes = 16;
    private const int RowBlock = 32;   // 32 rows x 144 floats x 2 matrices = 36 KB: fits L1 with the tile

    private readonly int _d;
    private readonly int _stride;     // padded width of one standardised row: d features, the constant 1, zeros
    private readonly double[] _zd;    // [n, d] standardised rows, float64 (margins, gradient)
    private readonly float[] _zf;     // [n, stride] standardised rows + 1, float32 (Hessian)
    private readonly float[] _szf;    // [n, stride] the same rows scaled by p(1-p)/n
    private readonly float[] _gram;   // [stride, stride] upper blocks of the weighted Gram matrix
    private readonly float[] _hessianWeights, _hessianVector, _hessianProduct; // [n] p(1-p)/n, [stride] v and H v in float32
    private readonly double[][] _factors; // two [(d+1), hessianStride]: upper triangle of the Hessian, factorised in place
    private int _factor;                   // which of them preconditions the conjugate-gradient steps now
    private int _heldFactor = -1;          // which one the held fits start with (never overwritten); -1: none
    private readonly int _hessianStride;
    private readonly double[] _mean, _scale, _inverseScale, _offset, _negativeShift, _theta, _trial, _gradient, _step, _margin, _probability, _softplus, _residuals;
    private readonly double[] _count; // each row's copies c_i
    private double _total;                         // sum of c_i: the n of the formulas
    private readonly double[] _cgResidual, _cgPreconditioned, _cgDirection, _cgProduct;
    private readonly double[] _start;  // [d + 1] raw weights and bias the next fit starts from
    private bool _hasWarmStart, _hasFactor, _holdStart;

    public ExactLogistic(int maxRows, int d)
    {
        _d = d;
        // room for the 4-row tile that starts at the last row, so the kernel never reads past a row; whole
        // vectors at every width
        _stride = (d + 4 + Lanes - 1) / Lanes * Lanes;
        _zd = new double[maxRows * d];
        _zf = new float[maxRows * _stride];
        _szf = new float[maxRows * _stride];
        _gram = new float[_stride * _stride];
        _hessianWeights = new float[maxRows];
        _hessianVector = new float[_stride];
        _hessianProduct = new float[_stride];
        _hessianStride = Cholesky.Stride(d + 1);
        _factors = [new double[(d + 1) * _hessianStride], new double[(d + 1) * _hessianStride]];
        _mean = new double[d];
        _scale = new double[d];
        _inverseScale = new double[d];
        _offset = new double[d];
        _negativeShift = new double[d];
        _theta = new double[d + 1];
        _trial = new double[d + 1];
        _gradient = new double[d + 1];
        _step = new double[d + 1];
        _cgResidual = new double[d + 1];
        _cgPreconditioned = new double[d + 1];
        _cgDirection = new double[d + 1];
        _cgProduct = new double[d + 1];
        _start = new double[d + 1];
        _margin = new double[maxRows];
        _probability = new double[maxRows];
        _softplus = new double[maxRows];
        _residuals = new double[maxRows];
        _count = new double[maxRows];
    }

    public string Name => "exact";

    /// <summary>The next fit starts from zero instead of the previous solution, and factorises its own Hessian.</summary>
    public void ResetWarmStart()
    {
        _hasWarmStart = _hasFactor = _holdStart = false;
        _heldFactor = -1;
    }

    /// <summary>Later fits all start from the last fit's solution and factor (until <see cref="ResetWarmStart"/>) instead
    /// of each from its predecessor's: a fold that refactorised no longer hands the next fold a Hessian two folds away
    /// (128 planted heads, 584 rows, d 128: 1,073 Hessians built -> 925).</summary>
    public void HoldWarmStart()
    {
        _holdStart = _hasWarmStart;
        _heldFactor = _holdStart && _hasFactor ? _factor : -1;
    }

    public FitReport Fit(ReadOnlySpan<float> x, ReadOnlySpan<byte> y, Span<float> weights, out float bias)
    {
        _count.AsSpan(0, y.Length).Fill(1);
        _total = y.Length;
        return Solve(x, y, weights, out bias);
    }

    /// <summary>Fits rows of which row i stands for <paramref name="counts"/>[i] &gt; 0 copies.</summary>
    public FitReport FitCounted(ReadOnlySpan<float> x, ReadOnlySpan<byte> y, ReadOnlySpan<int> counts, Span<float> weights, out float bias)
    {
        if (counts.Length != y.Length) throw new ArgumentException("one count per row");
        long total = 0;
        for (int i = 0; i < counts.Length; i++)
        {
            if (counts[i] < 1) throw new ArgumentException("counts must be positive");
            _count[i] = counts[i];
            total += counts[i];
        }
        _total = total;
        return Solve(x, y, weights, out bias);
    }

    private FitReport Solve(ReadOnlySpan<float> x, ReadOnlySpan<byte> y, Span<float> weights, out float bias)
    {
        int n = y.Length, d = _d;
        Standardise(x, n);
        if (_hasWarmStart) StartFromRaw();
        else Array.Clear(_theta);
        _hasWarmStart = true;

        double f = Objective(_theta, y);
        double gradientNorm = 0;
        if (_heldFactor >= 0)
        {
            _factor = _heldFactor;
            _hasFactor = true;
        }
        bool refactor = !_hasFactor;
        int iteration = 0;
        for (; iteration <= MaxIterations; iteration++)
        {
            gradientNorm = Gradient(y);
            if (gradientNorm < GradientTolerance || iteration == MaxIterations) break;
            var hessianWeights = _hessianWeights.AsSpan(0, n);
            for (int i = 0; i < n; i++) hessianWeights[i] = (float)(_count[i] * (_probability[i] * (1 - _probability[i])) / _total);
            if (refactor)
            {
                if (_factor == _heldFactor) _factor = 1 - _heldFactor;
                BuildHessian(n);
                _hasFactor = Cholesky.Factor(_factors[_factor], d + 1, _hessianStride);
                if (!_hasFactor) break; // cannot happen for L2 > 0 short of NaN input
                _gradient.CopyTo(_step, 0);
                Cholesky.Solve(_factors[_factor], d + 1, _hessianStride, _step);
                refactor = false;
            }
            else
            {
                // The Hessian drifts slowly between steps: solve with the current one by conjugate gradients,
                // preconditioned by the last factor, to a relative residual that tightens as the gradient
                // shrinks (superlinear inexact Newton). If that takes long, refactor at the next step.
                refactor = !PreconditionedSolve(n, Math.Min(0.1, gradientNorm));
            }
            double decrease = TensorPrimitives.Dot<double>(_gradient, _step);
            // Newton decrement^2 = g'H^-1 g. Below 1e-8 the full step is safely inside the quadratic region,
            // and objective differences are at rounding level, so a line search there would only stall.
            bool stalled = false;
            for (double t = 1; ; t *= 0.5)
            {
                for (int j = 0; j <= d; j++) _trial[j] = _theta[j] - t * _step[j];
                double fTrial = Objective(_trial, y);
                if (fTrial <= f - 1e-4 * t * decrease || decrease < 1e-8)
                {
                    f = fTrial;
                    _trial.CopyTo(_theta, 0);
                    break;
                }
                if (t < 1e-10) { stalled = true; break; }
            }
            if (stalled)
            {
                Objective(_theta, y); // restore the work buffers to theta
                gradientNorm = Gradient(y);
                break;
            }
        }

        double raw = _theta[d];
        for (int j = 0; j < d; j++)
        {
            double wj = _theta[j] / _scale[j];
            weights[j] = (float)wj;
            raw -= wj * _mean[j];
        }
        bias = (float)raw;
        if (!_holdStart)
        {
            for (int j = 0; j < d; j++) _start[j] = _theta[j] / _scale[j];
            _start[d] = raw;
        }
        return new FitReport(iteration, gradientNorm);
    }

    /// <summary>theta = the raw start in this fit's standardisation: the same logit for every row, where the
    /// standardised vector of another fit would shift by that fit's means.</summary>
    private void StartFromRaw()
    {
        int d = _d;
        double b = _start[d];
        for (int j = 0; j < d; j++)
        {
            _theta[j] = _start[j] * _scale[j];
            b += _start[j] * _mean[j];
        }
        _theta[d] = b;
    }

    /// <summary>
    /// z = (x - mean) / sd into the float64 rows and the padded float32 rows, in two passes: the first widens each row
    /// and adds its copies' differences from the first row, and their squares, to per-column sums (shifted sums: a
    /// constant column sums exact zeros, and the variance loses nothing to a mean far from zero as long as the first
    /// row is not far out); the second writes z = x / sd - mean / sd with one FMA. The two-pass version (mean, then
    /// squared deviations, then division) made six library calls a row and a float64 division per element.
    /// </summary>
    private void Standardise(ReadOnlySpan<float> x, int n)
    {
        int d = _d;
        var mean = _mean.AsSpan();
        var scale = _scale.AsSpan();
        var shift = _negativeShift.AsSpan();
        mean.Clear();
        scale.Clear();
        TensorPrimitives.ConvertChecked<float, double>(x[..d], shift);
        TensorPrimitives.Negate(shift, shift);
        fixed (double* pz = _zd, ps = shift, pm = mean, pq = scale)
            for (int i = 0; i < n; i++)
            {
                TensorPrimitives.ConvertChecked<float, double>(x.Slice(i * d, d), _zd.AsSpan(i * d, d));
                switch (SimdWidth.Current)
                {
                    case SimdPath.Vector512: AddShifted<Vec<Vector512<float>>>(pz + (long)i * d, ps, _count[i], pm, pq, d); break;
                    case SimdPath.Vector256: AddShifted<Vec<Vector256<float>>>(pz + (long)i * d, ps, _count[i], pm, pq, d); break;
                    default: AddShifted<Vec<Vector128<float>>>(pz + (long)i * d, ps, _count[i], pm, pq, d); break;
                }
            }
        var inverseScale = _inverseScale.AsSpan();
        var offset = _offset.AsSpan();
        for (int j = 0; j < d; j++)
        {
            double shifted = mean[j] / _total;
            mean[j] = shifted - shift[j];
            double sd = Math.Sqrt(Math.Max(0, scale[j] / _total - shifted * shifted));
            scale[j] = sd > 1e-12 * (1 + Math.Abs(mean[j])) ? sd : 1;
            inverseScale[j] = 1 / scale[j];
            offset[j] = -mean[j] * inverseScale[j];
        }
        for (int i = 0; i < n; i++)
        {
            var zd = _zd.AsSpan(i * d, d);
            var zf = _zf.AsSpan(i * _stride, _stride);
            TensorPrimitives.FusedMultiplyAdd(zd, inverseScale, offset, zd);
            TensorPrimitives.ConvertChecked<double, float>(zd, zf[..d]);
            zf[d] = 1;
        }
    }

    /// <summary>sum += c (row - shift), squares += c (row - shift)^2 over d float64 columns, -shift given; the
    /// tail rounds as the vectors do.</summary>
    private static void AddShifted<TVec>(double* row, double* negativeShift, double count, double* sum, double* squares, int d)
        where TVec : unmanaged, IVec<TVec>
    {
        int lanes = TVec.Count / 2, k = 0;
        TVec one = TVec.CreateDouble(1), zero = TVec.CreateDouble(0), c = TVec.CreateDouble(count);
        for (; k + lanes <= d; k += lanes)
        {
            var difference = TVec.FmaDouble(TVec.Load((float*)(row + k)), one, TVec.Load((float*)(negativeShift + k)));
            var counted = TVec.FmaDouble(difference, c, zero);
            TVec.Store(TVec.FmaDouble(counted, one, TVec.Load((float*)(sum + k))), (float*)(sum + k));
            TVec.Store(TVec.FmaDouble(counted, difference, TVec.Load((float*)(squares + k))), (float*)(squares + k));
        }
        for (; k < d; k++)
        {
            double difference = row[k] + negativeShift[k], counted = difference * count;
            sum[k] += counted;
            squares[k] = Math.FusedMultiplyAdd(counted, difference, squares[k]);
        }
    }

    /// <summary>
    /// _step = H^-1 g approximately, H the Hessian at the current probabilities, by conjugate gradients
    /// preconditioned with the current factor (an earlier Hessian). True when the relative residual
    /// reached <paramref name="tolerance"/> within <see cref="MaxConjugateSteps"/> steps; _step is a descent
    /// direction either way.
    /// </summary>
    private bool PreconditionedSolve(int n, double tolerance)
    {
        int d1 = _d + 1;
        var x = _step.AsSpan(0, d1);
        var r = _cgResidual.AsSpan(0, d1);
        var z = _cgPreconditioned.AsSpan(0, d1);
        var p = _cgDirection.AsSpan(0, d1);
        var hp = _cgProduct.AsSpan(0, d1);
        x.Clear();
        _gradient.CopyTo(r);
        double goal = tolerance * TensorPrimitives.Norm<double>(r);
        r.CopyTo(z);
        Cholesky.Solve(_factors[_factor], d1, _hessianStride, z);
        z.CopyTo(p);
        double rz = TensorPrimitives.Dot<double>(r, z);
        for (int k = 0; k < MaxConjugateSteps; k++)
        {
            HessianTimes(p, hp, n);
            double alpha = rz / TensorPrimitives.Dot<double>(p, hp);
            TensorPrimitives.MultiplyAdd(p, alpha, x, x);
            TensorPrimitives.MultiplyAdd(hp, -alpha, r, r);
            if (TensorPrimitives.Norm<double>(r) <= goal) return true;
            r.CopyTo(z);
            Cholesky.Solve(_factors[_factor], d1, _hessianStride, z);
            double rzNext = TensorPrimitives.Dot<double>(r, z);
            TensorPrimitives.MultiplyAdd(p, rzNext / rz, z, p);
            rz = rzNext;
        }
        return false;
    }

    /// <summary>result = H v with H = (1/n) Z'diag(p(1-p))Z + L2 I_w at the current probabilities (float32 rows, as the
    /// Hessian's factor: it only steers the step; no matrix formed).</summary>
    private void HessianTimes(ReadOnlySpan<double> v, Span<double> result, int n)
    {
        int d1 = _d + 1;
        TensorPrimitives.ConvertChecked<double, float>(v, _hessianVector.AsSpan(0, d1));
        RowProducts.HessianTimes(_zf, n, _stride, _hessianWeights, _hessianVector, _hessianProduct);
        TensorPrimitives.ConvertChecked<float, double>(_hessianProduct.AsSpan(0, d1), result);
        TensorPrimitives.MultiplyAdd(v[.._d], L2, result[.._d], result[.._d]);
    }

    /// <summary>f(theta); leaves the margins and probabilities of theta in the work buffers.</summary>
    private double Objective(ReadOnlySpan<double> theta, ReadOnlySpan<byte> y)
    {
        int n = y.Length, d = _d;
        var w = theta[..d];
        var margin = _margin.AsSpan(0, n);
        var e = _probability.AsSpan(0, n);
        var softplus = _softplus.AsSpan(0, n);
        double positives = 0;
        RowProducts.Margins(_zd, n, d, w, theta[d], margin);
        for (int i = 0; i < n; i++)
            if (y[i] == 1) positives += _count[i] * margin[i];
        // One exponential per row, on vectors: e = exp(-|m|) gives log(1 + e^m) = max(m, 0) + log(1 + e) without
        // overflow and sigmoid(m) = 1 / (1 + e) or e / (1 + e). Three scalar libm calls a row were a sixth of a fit.
        TensorPrimitives.Abs(margin, e);
        TensorPrimitives.Negate(e, e);
        TensorPrimitives.Exp(e, e);
        TensorPrimitives.Add(e, 1.0, softplus);
        TensorPrimitives.Log(softplus, softplus);
        TensorPrimitives.Multiply(softplus, _count.AsSpan(0, n), softplus);
        double loss = TensorPrimitives.Sum<double>(softplus) - positives;
        for (int i = 0; i < n; i++)
        {
            double m = margin[i];
            if (m > 0) loss += _count[i] * m;
            e[i] = (m >= 0 ? 1 : e[i]) / (1 + e[i]);
        }
        return loss / _total + 0.5 * L2 * TensorPrimitives.Dot(w, w);
    }

    /// <summary>The gradient at the point whose probabilities are in the work buffers (the current theta); returns its 2-norm.</summary>
    private double Gradient(ReadOnlySpan<byte> y)
    {
        int n = y.Length, d = _d;
        var g = _gradient.AsSpan(0, d);
        g.Clear();
        var residuals = _residuals.AsSpan(0, n);
        for (int i = 0; i < n; i++) residuals[i] = _count[i] * (_probability[i] - y[i]) / _total;
        _gradient[d] = RowProducts.AddWeightedRows(_zd, n, d, residuals, g);
        TensorPrimitives.MultiplyAdd(_theta.AsSpan(0, d), L2, g, g);
        return TensorPrimitives.Norm<double>(_gradient);
    }

    private void BuildHessian(int n)
    {
        int d1 = _d + 1, stride = _stride;
        for (int i = 0; i < n; i++)
            TensorPrimitives.Multiply(_zf.AsSpan(i * stride, stride), _hessianWeights[i], _szf.AsSpan(i * stride, stride));
        WeightedGram(_zf, _szf, n, stride, d1, _gram);
        int hs = _hessianStride;
        var hessian = _factors[_factor];
        for (int j = 0; j < d1; j++)
            for (int k = j; k < d1; k++) hessian[j * hs + k] = _gram[j * stride + k];
        for (int j = 0; j < _d; j++) hessian[j * hs + j] += L2;
    }

    /// <summary>
    /// gram[j, k] = sum_i scaled[i, j] * z[i, k] for every k from the vector that holds column j (rounded down
    /// to 4-row groups) to the end of the last vector holding a column below <paramref name="rows"/>: the
    /// upper triangle plus less than a vector on each side. Rows i go in blocks of <see cref="RowBlock"/> that
    /// stay in L1 while every 4-row x 3-vector register tile sweeps them (a 4 x 1 or 4 x 2 tile for the last one
    /// or two vectors); tiles accumulate across blocks in gram. Starting the sweep at column j's vector rather
    /// than its 48-column chunk skips about a quarter of the multiply-adds at d = 128 on AVX2 (the triangle's
    /// edge at 8 columns, not 48). Every upper-triangle element sums the same products in the same order at
    /// every width, so those are bit-identical across widths. <paramref name="stride"/> is a multiple of 16.
    /// </summary>
    internal static unsafe void WeightedGram(float[] z, float[] scaled, int n, int stride, int rows, float[] gram)
    {
        Array.Clear(gram);
        fixed (float* pz = z, ps = scaled, pg = gram)
        {
            switch (SimdWidth.Current)
            {
                case SimdPath.Vector512: WeightedGram<Vec<Vector512<float>>>(pz, ps, n, stride, rows, pg); break;
                case SimdPath.Vector256: WeightedGram<Vec<Vector256<float>>>(pz, ps, n, stride, rows, pg); break;
                default: WeightedGram<Vec<Vector128<float>>>(pz, ps, n, stride, rows, pg); break;
            }
        }
    }

    private static unsafe void WeightedGram<TVec>(float* z, float* scaled, int n, int stride, int rows, float* gram)
        where TVec : unmanaged, IVec<TVec>
    {
        int w = TVec.Count, end = (rows + w - 1) / w * w;
        for (int i0 = 0; i0 < n; i0 += RowBlock)
        {
            int i1 = Math.Min(n, i0 + RowBlock);
            for (int j0 = 0; j0 < rows; j0 += 4)
            {
                int c0 = j0 / w * w;
                for (; c0 + 3 * w <= end; c0 += 3 * w) Tile<TVec>(z, scaled, i0, i1, stride, gram, j0, c0, 3);
                if (end - c0 == 2 * w) Tile<TVec>(z, scaled, i0, i1, stride, gram, j0, c0, 2);
                else if (end - c0 == w) Tile<TVec>(z, scaled, i0, i1, stride, gram, j0, c0, 1);
            }
        }
    }

    /// <summary>One Gram row's accumulators += its weight times the tile's row vectors (inlined: the refs are registers).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowTimes<TVec>(float weight, TVec z0, TVec z1, TVec z2, int vectors, ref TVec a0, ref TVec a1, ref TVec a2)
        where TVec : unmanaged, IVec<TVec>
    {
        TVec b = TVec.Create(weight);
        a0 = TVec.Fma(b, z0, a0);
        if (vectors > 1) a1 = TVec.Fma(b, z1, a1);
        if (vectors > 2) a2 = TVec.Fma(b, z2, a2);
    }

    /// <summary>
    /// gram rows j0..j0+3, columns c0 onward, += the products of rows i0..i1-1, for <paramref name="vectors"/>
    /// (1 to 3) vectors of columns. Always inlined with a constant count, so the JIT drops the unused
    /// accumulators and branches from the loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Tile<TVec>(float* z, float* scaled, int i0, int i1, int stride, float* gram, int j0, int c0, int vectors)
        where TVec : unmanaged, IVec<TVec>
    {
        int w = TVec.Count;
        float* g0 = gram + j0 * stride + c0, g1 = g0 + stride, g2 = g1 + stride, g3 = g2 + stride;
        TVec a00 = TVec.Load(g0), a10 = TVec.Load(g1), a20 = TVec.Load(g2), a30 = TVec.Load(g3);
        TVec a01 = default, a11 = default, a21 = default, a31 = default, a02 = default, a12 = default, a22 = default, a32 = default;
        if (vectors > 1) { a01 = TVec.Load(g0 + w); a11 = TVec.Load(g1 + w); a21 = TVec.Load(g2 + w); a31 = TVec.Load(g3 + w); }
        if (vectors > 2) { a02 = TVec.Load(g0 + 2 * w); a12 = TVec.Load(g1 + 2 * w); a22 = TVec.Load(g2 + 2 * w); a32 = TVec.Load(g3 + 2 * w); }
        // Pointers step by a row (no multiply per row), and each broadcast is made just before its FMAs, so at most
        // 12 accumulators, 3 row vectors and one broadcast are live: AVX2's 16 registers hold them all, where four
        // broadcasts made up front pushed an accumulator into memory (a store and reload on its chain every row).
        float* row = z + i0 * stride + c0, s = scaled + i0 * stride + j0;
        for (int i = i0; i < i1; i++, row += stride, s += stride)
        {
            TVec z0 = TVec.Load(row), z1 = vectors > 1 ? TVec.Load(row + w) : default, z2 = vectors > 2 ? TVec.Load(row + 2 * w) : default;
            RowTimes(s[0], z0, z1, z2, vectors, ref a00, ref a01, ref a02);
            RowTimes(s[1], z0, z1, z2, vectors, ref a10, ref a11, ref a12);
            RowTimes(s[2], z0, z1, z2, vectors, ref a20, ref a21, ref a22);
            RowTimes(s[3], z0, z1, z2, vectors, ref a30, ref a31, ref a32);
        }
        TVec.Store(a00, g0); TVec.Store(a10, g1); TVec.Store(a20, g2); TVec.Store(a30, g3);
        if (vectors > 1) { TVec.Store(a01, g0 + w); TVec.Store(a11, g1 + w); TVec.Store(a21, g2 + w); TVec.Store(a31, g3 + w); }
        if (vectors > 2) { TVec.Store(a02, g0 + 2 * w); TVec.Store(a12, g1 + 2 * w); TVec.Store(a22, g2 + 2 * w); TVec.Store(a32, g3 + 2 * w); }
    }
}
