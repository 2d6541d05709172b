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
        for (int k = 0; k < n; k++)
        {
            b[k] /= u[k * stride + k];
            Axpy(-b[k], u.Slice(k * stride + k + 1, n - k - 1), b.Slice(k + 1, n - k - 1));
        }
        for (int k = n - 1; k >= 0; k--)
            b[k] = (b[k] - Dot(u.Slice(k * stride + k + 1, n - k - 1), b.Slice(k + 1, n - k - 1))) / u[k * stride + k];
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

    private static double Dot(ReadOnlySpan<double> x, ReadOnlySpan<double> y) =>
        System.Numerics.Tensors.TensorPrimitives.Dot(x, y);
}
