using System.Runtime.Intrinsics;
using TruthProbe.Numerics;

namespace TruthProbe.Probing;

/// <summary>
/// Cholesky factorisation A = U'U of a small dense symmetric positive-definite matrix, in place, row-major
/// with a row stride that is a multiple of 8 (padding columns are scratch). Blocked right-looking: each
/// block of 16 rows is factorised, then the rows below it are updated in one pass with 4-vector register tiles,
/// so the O(n^3) work runs as contiguous vector FMAs instead of many short dot products, at the width
/// <see cref="SimdWidth.Current"/> picks (on AVX2 the Vector512-only version ran as .NET's software fallback).
/// Every element sums the same products in the same order at every width: results are bit-identical.
/// Only the upper triangle of A is read; the strict lower triangle is left as scratch.
/// </summary>
internal static unsafe class Cholesky
{
    private const int Block = 16;
    private const int Lanes = 8;
    private const int SolveBlock = 4;
    private const int MaxSolveRows = 4096;

    public static int Stride(int n) => (n + Lanes - 1) / Lanes * Lanes;

    /// <summary>Overwrites the upper triangle of <paramref name="a"/> with U; false if A is not positive definite.</summary>
    public static bool Factor(Span<double> a, int n, int stride)
    {
        for (int kb = 0; kb < n; kb += Block)
        {
            int end = Math.Min(kb + Block, n);
            // Unblocked factorisation of rows kb..end-1, each row carried to the last column.
            for (int k = kb; k < end; k++)
            {
                double pivot = a[k * stride + k];
                if (!(pivot > 0)) return false;
                double ukk = Math.Sqrt(pivot);
                var rowK = a.Slice(k * stride + k, n - k);
                rowK[0] = ukk;
                Scale(rowK[1..], 1 / ukk);
                for (int i = k + 1; i < end; i++)
                    Axpy(-a[k * stride + i], a.Slice(k * stride + i, n - i), a.Slice(i * stride + i, n - i));
            }
            // Rows below the block: A[i, i..] -= sum_k U[k, i] U[k, i..] over the block's rows k.
            fixed (double* pa = a)
                switch (SimdWidth.Current)
                {
                    case SimdPath.Vector512: UpdateRows<Vec<Vector512<float>>>(pa, stride, kb, end, n); break;
                    case SimdPath.Vector256: UpdateRows<Vec<Vector256<float>>>(pa, stride, kb, end, n); break;
                    default: UpdateRows<Vec<Vector128<float>>>(pa, stride, kb, end, n); break;
                }
        }
        return true;
    }

    /// <summary>Solves A x = b with U from <see cref="Factor"/> (U'y = b, then U x = y); b is overwritten by x.</summary>
    public static void Solve(ReadOnlySpan<double> u, int n, int stride, Span<double> b)
    {
        if (n < 1 || stride < n || u.Length < (long)(n - 1) * stride + n || b.Length < n)
            throw new ArgumentException("Cholesky solve: spans shorter than their shapes");
        if (n > MaxSolveRows) throw new ArgumentOutOfRangeException(nameof(n), $"Cholesky solve: at most {MaxSolveRows} rows (the diagonal's reciprocals live on the stack)");
        fixed (double* pu = u, pb = b)
            switch (SimdWidth.Current)
            {
                case SimdPath.Vector512: Solve<Vec<Vector512<float>>>(pu, n, stride, pb); break;
                case SimdPath.Vector256: Solve<Vec<Vector256<float>>>(pu, n, stride, pb); break;
                default: Solve<Vec<Vector128<float>>>(pu, n, stride, pb); break;
            }
    }

    /// <summary>
    /// Both triangular solves, <see cref="SolveBlock"/> rows of U at a time: the block's own triangle in scalar code,
    /// the columns right of it in one vector pass for all its rows (a library call per row and operation was most of
    /// a solve's cost at n = 129, and the conjugate-gradient steps solve several times per Newton step). The forward
    /// solve subtracts each row's share from b[j] in row order with one FMA, in vectors and in the tail alike, so y is
    /// the same at every width; the back solve's dots are summed in vector lanes, so x's last bits follow the width.
    /// The diagonal's reciprocals come first, independent divisions, so that each row's step in the two chains of
    /// dependent rows is a multiplication (4 cycles) rather than a division (13-15).
    /// </summary>
    private static void Solve<TVec>(double* u, int n, int stride, double* b) where TVec : unmanaged, IVec<TVec>
    {
        int lanes = TVec.Count / 2;
        double* inverse = stackalloc double[n];
        for (int k = 0; k < n; k++) inverse[k] = 1 / u[(long)k * stride + k];
        for (int k0 = 0; k0 < n; k0 += SolveBlock)
        {
            int k1 = Math.Min(k0 + SolveBlock, n);
            for (int k = k0; k < k1; k++)
            {
                double* row = u + (long)k * stride;
                b[k] *= inverse[k];
                for (int j = k + 1; j < k1; j++) b[j] = Math.FusedMultiplyAdd(-b[k], row[j], b[j]);
            }
            if (k1 == n) break;
            double* r0 = u + (long)k0 * stride, r1 = r0 + stride, r2 = r1 + stride, r3 = r2 + stride;
            double y0 = -b[k0], y1 = -b[k0 + 1], y2 = -b[k0 + 2], y3 = -b[k0 + 3];
            TVec c0 = TVec.CreateDouble(y0), c1 = TVec.CreateDouble(y1), c2 = TVec.CreateDouble(y2), c3 = TVec.CreateDouble(y3);
            int j0 = k1;
            for (; j0 + lanes <= n; j0 += lanes)
            {
                var s = TVec.Load((float*)(b + j0));
                s = TVec.FmaDouble(c0, TVec.Load((float*)(r0 + j0)), s);
                s = TVec.FmaDouble(c1, TVec.Load((float*)(r1 + j0)), s);
                s = TVec.FmaDouble(c2, TVec.Load((float*)(r2 + j0)), s);
                s = TVec.FmaDouble(c3, TVec.Load((float*)(r3 + j0)), s);
                TVec.Store(s, (float*)(b + j0));
            }
            for (; j0 < n; j0++)
                b[j0] = Math.FusedMultiplyAdd(y3, r3[j0], Math.FusedMultiplyAdd(y2, r2[j0], Math.FusedMultiplyAdd(y1, r1[j0], Math.FusedMultiplyAdd(y0, r0[j0], b[j0]))));
        }
        for (int k0 = (n - 1) / SolveBlock * SolveBlock; k0 >= 0; k0 -= SolveBlock)
        {
            int k1 = Math.Min(k0 + SolveBlock, n);
            if (k1 < n)
            {
                double* r0 = u + (long)k0 * stride, r1 = r0 + stride, r2 = r1 + stride, r3 = r2 + stride;
                TVec a0 = TVec.CreateDouble(0), a1 = a0, a2 = a0, a3 = a0;
                int j0 = k1;
                for (; j0 + lanes <= n; j0 += lanes)
                {
                    var x = TVec.Load((float*)(b + j0));
                    a0 = TVec.FmaDouble(TVec.Load((float*)(r0 + j0)), x, a0);
                    a1 = TVec.FmaDouble(TVec.Load((float*)(r1 + j0)), x, a1);
                    a2 = TVec.FmaDouble(TVec.Load((float*)(r2 + j0)), x, a2);
                    a3 = TVec.FmaDouble(TVec.Load((float*)(r3 + j0)), x, a3);
                }
                double d0 = TVec.SumDoubles(a0), d1 = TVec.SumDoubles(a1), d2 = TVec.SumDoubles(a2), d3 = TVec.SumDoubles(a3);
                for (; j0 < n; j0++)
                {
                    d0 = Math.FusedMultiplyAdd(r0[j0], b[j0], d0);
                    d1 = Math.FusedMultiplyAdd(r1[j0], b[j0], d1);
                    d2 = Math.FusedMultiplyAdd(r2[j0], b[j0], d2);
                    d3 = Math.FusedMultiplyAdd(r3[j0], b[j0], d3);
                }
                b[k0] -= d0; b[k0 + 1] -= d1; b[k0 + 2] -= d2; b[k0 + 3] -= d3;
            }
            for (int k = k1 - 1; k >= k0; k--)
            {
                double* row = u + (long)k * stride;
                double s = b[k];
                for (int j = k + 1; j < k1; j++) s = Math.FusedMultiplyAdd(-row[j], b[j], s);
                b[k] = s * inverse[k];
            }
        }
    }

    /// <summary>Rows k1..n-1, each from its vector-aligned column below the diagonal to the stride end, 4 vectors of
    /// double lanes at a time (the stride is a multiple of every width's lane count).</summary>
    private static void UpdateRows<TVec>(double* a, int stride, int k0, int k1, int n) where TVec : unmanaged, IVec<TVec>
    {
        int lanes = TVec.Count / 2;
        for (int i = k1; i < n; i++)
        {
            int c = i / lanes * lanes;
            for (; c + 4 * lanes <= stride; c += 4 * lanes)
            {
                float* at = (float*)(a + (long)i * stride + c);
                TVec r0 = TVec.Load(at), r1 = TVec.Load(at + 2 * lanes), r2 = TVec.Load(at + 4 * lanes), r3 = TVec.Load(at + 6 * lanes);
                for (int k = k0; k < k1; k++)
                {
                    var u = TVec.CreateDouble(-a[(long)k * stride + i]);
                    float* from = (float*)(a + (long)k * stride + c);
                    r0 = TVec.FmaDouble(u, TVec.Load(from), r0);
                    r1 = TVec.FmaDouble(u, TVec.Load(from + 2 * lanes), r1);
                    r2 = TVec.FmaDouble(u, TVec.Load(from + 4 * lanes), r2);
                    r3 = TVec.FmaDouble(u, TVec.Load(from + 6 * lanes), r3);
                }
                TVec.Store(r0, at); TVec.Store(r1, at + 2 * lanes); TVec.Store(r2, at + 4 * lanes); TVec.Store(r3, at + 6 * lanes);
            }
            for (; c < stride; c += lanes)
            {
                float* at = (float*)(a + (long)i * stride + c);
                var r = TVec.Load(at);
                for (int k = k0; k < k1; k++) r = TVec.FmaDouble(TVec.CreateDouble(-a[(long)k * stride + i]), TVec.Load((float*)(a + (long)k * stride + c)), r);
                TVec.Store(r, at);
            }
        }
    }

    private static void Scale(Span<double> x, double s) => System.Numerics.Tensors.TensorPrimitives.Multiply(x, s, x);

    private static void Axpy(double alpha, ReadOnlySpan<double> x, Span<double> y) =>
        System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(x, alpha, y, y);
}
