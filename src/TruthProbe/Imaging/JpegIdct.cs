using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Runtime.Intrinsics;

namespace TruthProbe.Imaging;

/// <summary>
/// libjpeg's default inverse DCT (JDCT_ISLOW, the Loeffler-Ligtenberg-Moschytz integer transform of
/// jidctint.c): 13-bit fixed-point constants, 2 extra bits between the column and the row pass, and its
/// output range limiting, which wraps the descaled value to 10 bits before clamping. Bit-exact with it (and
/// with libjpeg-turbo's SIMD versions of it) for every coefficient block a real encoder can produce: all
/// intermediates are 32-bit, as in their SIMD code.
/// </summary>
internal static class JpegIdct
{
    private const int ConstBits = 13;
    private const int Pass1Bits = 2;

    private const int Fix0_298631336 = 2446;
    private const int Fix0_390180644 = 3196;
    private const int Fix0_541196100 = 4433;
    private const int Fix0_765366865 = 6270;
    private const int Fix0_899976223 = 7373;
    private const int Fix1_175875602 = 9633;
    private const int Fix1_501321110 = 12299;
    private const int Fix1_847759065 = 15137;
    private const int Fix1_961570560 = 16069;
    private const int Fix2_053119869 = 16819;
    private const int Fix2_562915447 = 20995;
    private const int Fix3_072711026 = 25172;

    /// <summary>
    /// One 8x8 block: <paramref name="coefficients"/> and <paramref name="quant"/> in natural (row-major) order,
    /// 8 output rows of 8 samples written <paramref name="stride"/> apart from <paramref name="output"/>[0].
    /// Eight columns (then eight rows) go through the 1-D transform at once, one per vector lane; jidctint.c's
    /// shortcuts for all-zero columns and rows are not needed because they give exactly the full transform.
    /// </summary>
    public static void Transform(ReadOnlySpan<short> coefficients, ReadOnlySpan<int> quant, Span<byte> output, int stride)
    {
        if (coefficients.Length < 64 || quant.Length < 64 || output.Length < 7 * stride + 8)
            throw new ArgumentException("an 8x8 block needs 64 coefficients, 64 quantisers and 8 output rows");
        ref short c = ref MemoryMarshal.GetReference(coefficients);
        ref int q = ref MemoryMarshal.GetReference(quant);
        var r0 = Dequantize(ref c, ref q, 0);
        var r1 = Dequantize(ref c, ref q, 1);
        var r2 = Dequantize(ref c, ref q, 2);
        var r3 = Dequantize(ref c, ref q, 3);
        var r4 = Dequantize(ref c, ref q, 4);
        var r5 = Dequantize(ref c, ref q, 5);
        var r6 = Dequantize(ref c, ref q, 6);
        var r7 = Dequantize(ref c, ref q, 7);
        ref byte dst = ref MemoryMarshal.GetReference(output);
        if (((r1 | r2 | r3 | r4 | r5 | r6 | r7) == Vector256<int>.Zero) && r0.WithElement(0, 0) == Vector256<int>.Zero)
        {
            // Smooth areas: a DC-only block is one flat value (what both passes give for it, rounding included).
            byte flat = (byte)RangeLimit(Vector256.Create((r0.ToScalar() * (1 << Pass1Bits) + (1 << (Pass1Bits + 2))) >> (Pass1Bits + 3))).ToScalar();
            for (int r = 0; r < 8; r++) Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, r * stride), 0x0101010101010101UL * flat);
            return;
        }

        // Pass 1: lanes are columns; results keep Pass1Bits extra bits.
        Butterfly(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        const int shift1 = ConstBits - Pass1Bits;
        var round1 = Vector256.Create(1 << (shift1 - 1));
        r0 = (r0 + round1) >> shift1; r1 = (r1 + round1) >> shift1; r2 = (r2 + round1) >> shift1; r3 = (r3 + round1) >> shift1;
        r4 = (r4 + round1) >> shift1; r5 = (r5 + round1) >> shift1; r6 = (r6 + round1) >> shift1; r7 = (r7 + round1) >> shift1;

        // Pass 2: lanes are rows.
        Transpose(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        Butterfly(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        const int shift2 = ConstBits + Pass1Bits + 3;
        var round2 = Vector256.Create(1 << (shift2 - 1));
        r0 = RangeLimit((r0 + round2) >> shift2); r1 = RangeLimit((r1 + round2) >> shift2);
        r2 = RangeLimit((r2 + round2) >> shift2); r3 = RangeLimit((r3 + round2) >> shift2);
        r4 = RangeLimit((r4 + round2) >> shift2); r5 = RangeLimit((r5 + round2) >> shift2);
        r6 = RangeLimit((r6 + round2) >> shift2); r7 = RangeLimit((r7 + round2) >> shift2);
        Transpose(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);

        var top = Vector256.Narrow(Vector256.Narrow(r0, r1), Vector256.Narrow(r2, r3)).AsUInt64();
        var bottom = Vector256.Narrow(Vector256.Narrow(r4, r5), Vector256.Narrow(r6, r7)).AsUInt64();
        for (int r = 0; r < 4; r++)
        {
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, r * stride), top.GetElement(r));
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, (r + 4) * stride), bottom.GetElement(r));
        }
    }

    private static Vector256<int> Dequantize(ref short c, ref int q, int row)
    {
        var s = Vector128.LoadUnsafe(ref c, (nuint)(8 * row));
        return Vector256.Create(Vector128.WidenLower(s), Vector128.WidenUpper(s)) * Vector256.LoadUnsafe(ref q, (nuint)(8 * row));
    }

    /// <summary>
    /// libjpeg's post-IDCT table: the value is taken modulo 1024 as a signed 10-bit number, shifted by +128,
    /// then clamped; so a wildly out-of-range sum wraps instead of saturating, exactly as theirs does.
    /// </summary>
    private static Vector256<int> RangeLimit(Vector256<int> v) =>
        Vector256.Min(Vector256.Max(((v << 22) >> 22) + Vector256.Create(128), Vector256<int>.Zero), Vector256.Create(255));

    private static void Transpose(ref Vector256<int> r0, ref Vector256<int> r1, ref Vector256<int> r2, ref Vector256<int> r3,
        ref Vector256<int> r4, ref Vector256<int> r5, ref Vector256<int> r6, ref Vector256<int> r7)
    {
        if (Avx2.IsSupported)
        {
            var t0 = Avx2.UnpackLow(r0, r1).AsInt64(); var t1 = Avx2.UnpackHigh(r0, r1).AsInt64();
            var t2 = Avx2.UnpackLow(r2, r3).AsInt64(); var t3 = Avx2.UnpackHigh(r2, r3).AsInt64();
            var t4 = Avx2.UnpackLow(r4, r5).AsInt64(); var t5 = Avx2.UnpackHigh(r4, r5).AsInt64();
            var t6 = Avx2.UnpackLow(r6, r7).AsInt64(); var t7 = Avx2.UnpackHigh(r6, r7).AsInt64();
            var u0 = Avx2.UnpackLow(t0, t2).AsInt32(); var u1 = Avx2.UnpackHigh(t0, t2).AsInt32();
            var u2 = Avx2.UnpackLow(t1, t3).AsInt32(); var u3 = Avx2.UnpackHigh(t1, t3).AsInt32();
            var u4 = Avx2.UnpackLow(t4, t6).AsInt32(); var u5 = Avx2.UnpackHigh(t4, t6).AsInt32();
            var u6 = Avx2.UnpackLow(t5, t7).AsInt32(); var u7 = Avx2.UnpackHigh(t5, t7).AsInt32();
            r0 = Avx2.Permute2x128(u0, u4, 0x20); r4 = Avx2.Permute2x128(u0, u4, 0x31);
            r1 = Avx2.Permute2x128(u1, u5, 0x20); r5 = Avx2.Permute2x128(u1, u5, 0x31);
            r2 = Avx2.Permute2x128(u2, u6, 0x20); r6 = Avx2.Permute2x128(u2, u6, 0x31);
            r3 = Avx2.Permute2x128(u3, u7, 0x20); r7 = Avx2.Permute2x128(u3, u7, 0x31);
            return;
        }
        Span<int> m = stackalloc int[64];
        r0.CopyTo(m); r1.CopyTo(m[8..]); r2.CopyTo(m[16..]); r3.CopyTo(m[24..]);
        r4.CopyTo(m[32..]); r5.CopyTo(m[40..]); r6.CopyTo(m[48..]); r7.CopyTo(m[56..]);
        for (int i = 0; i < 8; i++)
            for (int j = i + 1; j < 8; j++)
                (m[i * 8 + j], m[j * 8 + i]) = (m[j * 8 + i], m[i * 8 + j]);
        r0 = Vector256.Create<int>(m); r1 = Vector256.Create<int>(m[8..]); r2 = Vector256.Create<int>(m[16..]); r3 = Vector256.Create<int>(m[24..]);
        r4 = Vector256.Create<int>(m[32..]); r5 = Vector256.Create<int>(m[40..]); r6 = Vector256.Create<int>(m[48..]); r7 = Vector256.Create<int>(m[56..]);
    }

    /// <summary>The 1-D transform of jidctint.c on 8 lanes at once, in place, scaled by 2^13 (no descaling).</summary>
    private static void Butterfly(ref Vector256<int> i0, ref Vector256<int> i1, ref Vector256<int> i2, ref Vector256<int> i3,
        ref Vector256<int> i4, ref Vector256<int> i5, ref Vector256<int> i6, ref Vector256<int> i7)
    {
        var z1 = (i2 + i6) * Fix0_541196100;
        var t2 = z1 - i6 * Fix1_847759065;
        var t3 = z1 + i2 * Fix0_765366865;
        var t0 = (i0 + i4) << ConstBits;
        var t1 = (i0 - i4) << ConstBits;
        Vector256<int> t10 = t0 + t3, t13 = t0 - t3, t11 = t1 + t2, t12 = t1 - t2;

        Vector256<int> a0 = i7, a1 = i5, a2 = i3, a3 = i1;
        Vector256<int> y1 = a0 + a3, y2 = a1 + a2, y3 = a0 + a2, y4 = a1 + a3;
        var z5 = (y3 + y4) * Fix1_175875602;
        a0 *= Fix0_298631336;
        a1 *= Fix2_053119869;
        a2 *= Fix3_072711026;
        a3 *= Fix1_501321110;
        y1 *= -Fix0_899976223;
        y2 *= -Fix2_562915447;
        y3 = y3 * -Fix1_961570560 + z5;
        y4 = y4 * -Fix0_390180644 + z5;
        a0 += y1 + y3;
        a1 += y2 + y4;
        a2 += y2 + y3;
        a3 += y1 + y4;

        i0 = t10 + a3; i7 = t10 - a3;
        i1 = t11 + a2; i6 = t11 - a2;
        i2 = t12 + a1; i5 = t12 - a1;
        i3 = t13 + a0; i4 = t13 - a0;
    }
}
