using System.Runtime.Intrinsics;
using TruthProbe.Numerics;

namespace TruthProbe.Probing;

/// <summary>
/// The exact probe's products with its standardised rows z_i, four rows at a time at the width
/// <see cref="SimdWidth.Current"/> picks: in float64 over [n, d] rows, margins z_i.v and sums of weighted rows
/// sum_i u_i z_i (they set the optimum); in float32 over the padded rows that end in the constant 1, the Hessian's
/// product sum_i w_i (z_i.v) z_i in one pass (a block's rows are still in L1 for the second half; it only steers the
/// Newton step, so half the bytes and twice the lanes of float64). One library call per row and operation cost about
/// three times the arithmetic at d = 128 (a sixth of a fit).
/// </summary>
internal static unsafe class RowProducts
{
    /// <summary>margins[i] = z_i . v + bias.</summary>
    public static void Margins(ReadOnlySpan<double> z, int n, int d, ReadOnlySpan<double> v, double bias, Span<double> margins)
    {
        Check(z, n, d, v, margins.Length);
        fixed (double* pz = z, pv = v, pm = margins)
            switch (SimdWidth.Current)
            {
                case SimdPath.Vector512: Run<Vec<Vector512<float>>>(pz, n, d, pv, bias, null, pm, null); break;
                case SimdPath.Vector256: Run<Vec<Vector256<float>>>(pz, n, d, pv, bias, null, pm, null); break;
                default: Run<Vec<Vector128<float>>>(pz, n, d, pv, bias, null, pm, null); break;
            }
    }

    /// <summary>sum += sum_i u_i z_i (the d weight components); returns sum_i u_i.</summary>
    public static double AddWeightedRows(ReadOnlySpan<double> z, int n, int d, ReadOnlySpan<double> u, Span<double> sum)
    {
        Check(z, n, d, sum, u.Length);
        fixed (double* pz = z, pu = u, ps = sum)
            return SimdWidth.Current switch
            {
                SimdPath.Vector512 => Run<Vec<Vector512<float>>>(pz, n, d, null, 0, pu, null, ps),
                SimdPath.Vector256 => Run<Vec<Vector256<float>>>(pz, n, d, null, 0, pu, null, ps),
                _ => Run<Vec<Vector128<float>>>(pz, n, d, null, 0, pu, null, ps),
            };
    }

    /// <summary>sum = sum_i w_i (z_i . v) z_i over float32 rows [n, stride], stride a multiple of 16 (whole vectors at
    /// every width); v and sum are stride long.</summary>
    public static void HessianTimes(ReadOnlySpan<float> z, int n, int stride, ReadOnlySpan<float> w, ReadOnlySpan<float> v, Span<float> sum)
    {
        if (stride % 16 != 0 || z.Length < (long)n * stride || w.Length < n || v.Length < stride || sum.Length < stride)
            throw new ArgumentException("row products: spans shorter than their shapes, or a stride not a multiple of 16");
        sum[..stride].Clear();
        fixed (float* pz = z, pw = w, pv = v, ps = sum)
            switch (SimdWidth.Current)
            {
                case SimdPath.Vector512: HessianTimes<Vec<Vector512<float>>>(pz, n, stride, pw, pv, ps); break;
                case SimdPath.Vector256: HessianTimes<Vec<Vector256<float>>>(pz, n, stride, pw, pv, ps); break;
                default: HessianTimes<Vec<Vector128<float>>>(pz, n, stride, pw, pv, ps); break;
            }
    }

    private static void HessianTimes<TVec>(float* z, int n, int stride, float* w, float* v, float* sum)
        where TVec : unmanaged, IVec<TVec>
    {
        int lanes = TVec.Count;
        for (int i0 = 0; i0 < n; i0 += 4)
        {
            int rows = Math.Min(4, n - i0);
            float* z0 = z + (long)i0 * stride;
            // Rows past n repeat the block's first row; their coefficients are 0.
            float* z1 = rows > 1 ? z0 + stride : z0, z2 = rows > 2 ? z0 + 2 * stride : z0, z3 = rows > 3 ? z0 + 3 * stride : z0;
            TVec a0 = TVec.Create(0), a1 = a0, a2 = a0, a3 = a0;
            for (int k = 0; k < stride; k += lanes)
            {
                var x = TVec.Load(v + k);
                a0 = TVec.Fma(TVec.Load(z0 + k), x, a0);
                a1 = TVec.Fma(TVec.Load(z1 + k), x, a1);
                a2 = TVec.Fma(TVec.Load(z2 + k), x, a2);
                a3 = TVec.Fma(TVec.Load(z3 + k), x, a3);
            }
            TVec c0 = TVec.Create(w[i0] * TVec.Sum(a0)),
                c1 = TVec.Create(rows > 1 ? w[i0 + 1] * TVec.Sum(a1) : 0),
                c2 = TVec.Create(rows > 2 ? w[i0 + 2] * TVec.Sum(a2) : 0),
                c3 = TVec.Create(rows > 3 ? w[i0 + 3] * TVec.Sum(a3) : 0);
            for (int k = 0; k < stride; k += lanes)
            {
                var s = TVec.Load(sum + k);
                s = TVec.Fma(c0, TVec.Load(z0 + k), s);
                s = TVec.Fma(c1, TVec.Load(z1 + k), s);
                s = TVec.Fma(c2, TVec.Load(z2 + k), s);
                s = TVec.Fma(c3, TVec.Load(z3 + k), s);
                TVec.Store(s, sum + k);
            }
        }
    }

    private static void Check(ReadOnlySpan<double> z, int n, int d, ReadOnlySpan<double> row, int perRow)
    {
        if (z.Length < (long)n * d || row.Length < d || perRow < n) throw new ArgumentException("row products: spans shorter than their shapes");
    }

    /// <summary>
    /// Per block of four rows: with v, the dots z_r . v + bias into margins; with sum, the coefficients u_r added as
    /// sum += u_r z_r. Returns the sum of the u_r.
    /// </summary>
    private static double Run<TVec>(double* z, int n, int d, double* v, double bias, double* coefficients, double* margins, double* sum)
        where TVec : unmanaged, IVec<TVec>
    {
        int lanes = TVec.Count / 2, vectorEnd = d / lanes * lanes;
        double total = 0;
        double* c = stackalloc double[4];
        for (int i0 = 0; i0 < n; i0 += 4)
        {
            int rows = Math.Min(4, n - i0);
            double* z0 = z + (long)i0 * d;
            // Rows past n repeat the block's first row; their coefficients are 0.
            double* z1 = rows > 1 ? z0 + d : z0, z2 = rows > 2 ? z0 + 2 * d : z0, z3 = rows > 3 ? z0 + 3 * d : z0;
            if (v != null)
            {
                TVec a0 = TVec.CreateDouble(0), a1 = a0, a2 = a0, a3 = a0;
                for (int k = 0; k < vectorEnd; k += lanes)
                {
                    var x = TVec.Load((float*)(v + k));
                    a0 = TVec.FmaDouble(TVec.Load((float*)(z0 + k)), x, a0);
                    a1 = TVec.FmaDouble(TVec.Load((float*)(z1 + k)), x, a1);
                    a2 = TVec.FmaDouble(TVec.Load((float*)(z2 + k)), x, a2);
                    a3 = TVec.FmaDouble(TVec.Load((float*)(z3 + k)), x, a3);
                }
                c[0] = TVec.SumDoubles(a0); c[1] = TVec.SumDoubles(a1); c[2] = TVec.SumDoubles(a2); c[3] = TVec.SumDoubles(a3);
                for (int k = vectorEnd; k < d; k++)
                {
                    c[0] += z0[k] * v[k]; c[1] += z1[k] * v[k]; c[2] += z2[k] * v[k]; c[3] += z3[k] * v[k];
                }
                for (int r = 0; r < rows; r++) margins[i0 + r] = c[r] + bias;
                continue;
            }
            for (int r = 0; r < 4; r++) c[r] = r < rows ? coefficients[i0 + r] : 0;
            total += c[0] + c[1] + c[2] + c[3];
            TVec c0 = TVec.CreateDouble(c[0]), c1 = TVec.CreateDouble(c[1]), c2 = TVec.CreateDouble(c[2]), c3 = TVec.CreateDouble(c[3]);
            for (int k = 0; k < vectorEnd; k += lanes)
            {
                var s = TVec.Load((float*)(sum + k));
                s = TVec.FmaDouble(c0, TVec.Load((float*)(z0 + k)), s);
                s = TVec.FmaDouble(c1, TVec.Load((float*)(z1 + k)), s);
                s = TVec.FmaDouble(c2, TVec.Load((float*)(z2 + k)), s);
                s = TVec.FmaDouble(c3, TVec.Load((float*)(z3 + k)), s);
                TVec.Store(s, (float*)(sum + k));
            }
            for (int k = vectorEnd; k < d; k++) sum[k] += c[0] * z0[k] + c[1] * z1[k] + c[2] * z2[k] + c[3] * z3[k];
        }
        return total;
    }
}
