using System.Runtime.Intrinsics;

namespace TruthProbe.Lineage;

/// <summary>
/// The four float64 sums two same-shaped blocks of weights A (parent) and B (child) reduce to. They add
/// up across rows, heads and threads, so a matrix is streamed once and never held as a copy.
/// </summary>
public struct DriftSums
{
    /// <summary>Sum of a^2, b^2, (a - b)^2 and a*b over the entries.</summary>
    public double ParentSq, ChildSq, DiffSq, Dot;
    public long Count;

    public void Add(in DriftSums other)
    {
        ParentSq += other.ParentSq;
        ChildSq += other.ChildSq;
        DiffSq += other.DiffSq;
        Dot += other.Dot;
        Count += other.Count;
    }

    /// <summary>||A - B||_F / ||A||_F: 0 for identical blocks; NaN when A is all zeros and B is not.</summary>
    public readonly double RelFrobenius =>
        ParentSq > 0 ? Math.Sqrt(DiffSq / ParentSq) : DiffSq == 0 ? 0 : double.NaN;

    /// <summary>&lt;A, B&gt; / (||A||_F ||B||_F) of the flattened blocks; NaN when either is all zeros.</summary>
    public readonly double Cosine =>
        ParentSq > 0 && ChildSq > 0 ? Math.Clamp(Dot / Math.Sqrt(ParentSq * ChildSq), -1.0, 1.0) : double.NaN;

    /// <summary>
    /// Adds the entries of a and b (same length). The differences are taken in float64, so identical
    /// inputs give DiffSq exactly 0 and Dot exactly ParentSq (the same products in the same order).
    /// </summary>
    public void Accumulate(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"blocks differ in length: {a.Length} vs {b.Length}");
        int n = a.Length, i = 0;
        double pp = 0, cc = 0, dd = 0, ab = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            // Separate accumulators for the low and high halves: two independent FMA chains per sum keep
            // both FMA ports busy instead of waiting on each other's latency.
            Vector512<double> ppLo = default, ppHi = default, ccLo = default, ccHi = default;
            Vector512<double> ddLo = default, ddHi = default, abLo = default, abHi = default;
            for (; i + 16 <= n; i += 16)
            {
                var (aLo, aHi) = Vector512.Widen(Vector512.Create(a.Slice(i, 16)));
                var (bLo, bHi) = Vector512.Widen(Vector512.Create(b.Slice(i, 16)));
                var dLo = aLo - bLo;
                var dHi = aHi - bHi;
                ppLo = Vector512.FusedMultiplyAdd(aLo, aLo, ppLo);
                ppHi = Vector512.FusedMultiplyAdd(aHi, aHi, ppHi);
                ccLo = Vector512.FusedMultiplyAdd(bLo, bLo, ccLo);
                ccHi = Vector512.FusedMultiplyAdd(bHi, bHi, ccHi);
                ddLo = Vector512.FusedMultiplyAdd(dLo, dLo, ddLo);
                ddHi = Vector512.FusedMultiplyAdd(dHi, dHi, ddHi);
                abLo = Vector512.FusedMultiplyAdd(aLo, bLo, abLo);
                abHi = Vector512.FusedMultiplyAdd(aHi, bHi, abHi);
            }
            (pp, cc, dd, ab) = (Vector512.Sum(ppLo + ppHi), Vector512.Sum(ccLo + ccHi), Vector512.Sum(ddLo + ddHi), Vector512.Sum(abLo + abHi));
        }
        for (; i < n; i++)
        {
            double x = a[i], y = b[i], d = x - y;
            pp = Math.FusedMultiplyAdd(x, x, pp);
            cc = Math.FusedMultiplyAdd(y, y, cc);
            dd = Math.FusedMultiplyAdd(d, d, dd);
            ab = Math.FusedMultiplyAdd(x, y, ab);
        }
        ParentSq += pp;
        ChildSq += cc;
        DiffSq += dd;
        Dot += ab;
        Count += n;
    }
}
