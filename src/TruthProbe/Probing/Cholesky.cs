using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TruthProbe.Probing;

/// <summary>
/// Cholesky factorisation A = U'U of a small dense symmetric positive-definite matrix, in place, row-major
/// with a row stride that is a multiple of 8 (padding columns are scratch). Blocked right-looking: each
/// block of 16 rows is factorised, then the rows below it are updated in one pass with 4-vector register tiles,
/// so the O(n^3) work runs as contiguous Vector512 FMAs instead of many short dot products.
/// Only the upper triangle of A is read; the strict lower triangle is left as scratch.
/// </summary>
internal static class Cholesky
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
            for (int i = end; i < n; i++) UpdateRow(a, stride, kb, end, i, n);
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

    /// <summary>Row i from its 8-aligned column below the diagonal to the stride end, 4 vectors at a time.</summary>
    private static void UpdateRow(Span<double> a, int stride, int k0, int k1, int i, int n)
    {
        ref double aBase = ref MemoryMarshal.GetReference(a);
        int c = i / Lanes * Lanes;
        for (; c + 4 * Lanes <= stride; c += 4 * Lanes)
        {
            nuint at = (nuint)(i * stride + c);
            var r0 = Vector512.LoadUnsafe(ref aBase, at);
            var r1 = Vector512.LoadUnsafe(ref aBase, at + Lanes);
            var r2 = Vector512.LoadUnsafe(ref aBase, at + 2 * Lanes);
            var r3 = Vector512.LoadUnsafe(ref aBase, at + 3 * Lanes);
            for (int k = k0; k < k1; k++)
            {
                var u = Vector512.Create(-Unsafe.Add(ref aBase, k * stride + i));
                nuint from = (nuint)(k * stride + c);
                r0 = Vector512.FusedMultiplyAdd(u, Vector512.LoadUnsafe(ref aBase, from), r0);
                r1 = Vector512.FusedMultiplyAdd(u, Vector512.LoadUnsafe(ref aBase, from + Lanes), r1);
                r2 = Vector512.FusedMultiplyAdd(u, Vector512.LoadUnsafe(ref aBase, from + 2 * Lanes), r2);
                r3 = Vector512.FusedMultiplyAdd(u, Vector512.LoadUnsafe(ref aBase, from + 3 * Lanes), r3);
            }
            r0.StoreUnsafe(ref aBase, at);
            r1.StoreUnsafe(ref aBase, at + Lanes);
            r2.StoreUnsafe(ref aBase, at + 2 * Lanes);
            r3.StoreUnsafe(ref aBase, at + 3 * Lanes);
        }
        for (; c < stride; c += Lanes)
        {
            nuint at = (nuint)(i * stride + c);
            var r = Vector512.LoadUnsafe(ref aBase, at);
            for (int k = k0; k < k1; k++)
                r = Vector512.FusedMultiplyAdd(Vector512.Create(-Unsafe.Add(ref aBase, k * stride + i)), Vector512.LoadUnsafe(ref aBase, (nuint)(k * stride + c)), r);
            r.StoreUnsafe(ref aBase, at);
        }
    }

    private static void Scale(Span<double> x, double s) => System.Numerics.Tensors.TensorPrimitives.Multiply(x, s, x);

    private static void Axpy(double alpha, ReadOnlySpan<double> x, Span<double> y) =>
        System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(x, alpha, y, y);

    private static double Dot(ReadOnlySpan<double> x, ReadOnlySpan<double> y) =>
        System.Numerics.Tensors.TensorPrimitives.Dot(x, y);
}
