namespace TruthProbe.Imaging;

/// <summary>
/// libjpeg's default inverse DCT (JDCT_ISLOW, the Loeffler-Ligtenberg-Moschytz integer transform of
/// jidctint.c): 13-bit fixed-point constants, 2 extra bits between the column and the row pass, and its
/// output range limiting, which wraps the descaled value to 10 bits before clamping. Bit-exact with it (and
/// with libjpeg-turbo's SIMD versions of it) for every coefficient block a real encoder can produce.
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
    /// </summary>
    public static void Transform(ReadOnlySpan<short> coefficients, ReadOnlySpan<int> quant, Span<byte> output, int stride)
    {
        Span<int> ws = stackalloc int[64];
        coefficients = coefficients[..64];
        quant = quant[..64];
        for (int c = 0; c < 8; c++)
        {
            if (coefficients[8 + c] == 0 && coefficients[16 + c] == 0 && coefficients[24 + c] == 0 && coefficients[32 + c] == 0 &&
                coefficients[40 + c] == 0 && coefficients[48 + c] == 0 && coefficients[56 + c] == 0)
            {
                // The full column transform of a DC-only column gives exactly this (the rounding term vanishes).
                int dc = coefficients[c] * quant[c] << Pass1Bits;
                for (int r = 0; r < 8; r++) ws[r * 8 + c] = dc;
                continue;
            }
            Butterfly(
                coefficients[c] * quant[c], coefficients[8 + c] * quant[8 + c],
                coefficients[16 + c] * quant[16 + c], coefficients[24 + c] * quant[24 + c],
                coefficients[32 + c] * quant[32 + c], coefficients[40 + c] * quant[40 + c],
                coefficients[48 + c] * quant[48 + c], coefficients[56 + c] * quant[56 + c],
                out int o0, out int o1, out int o2, out int o3, out int o4, out int o5, out int o6, out int o7);
            const int shift = ConstBits - Pass1Bits, round = 1 << (shift - 1);
            ws[c] = (o0 + round) >> shift;
            ws[8 + c] = (o1 + round) >> shift;
            ws[16 + c] = (o2 + round) >> shift;
            ws[24 + c] = (o3 + round) >> shift;
            ws[32 + c] = (o4 + round) >> shift;
            ws[40 + c] = (o5 + round) >> shift;
            ws[48 + c] = (o6 + round) >> shift;
            ws[56 + c] = (o7 + round) >> shift;
        }
        for (int r = 0; r < 8; r++)
        {
            var row = ws.Slice(r * 8, 8);
            var dst = output.Slice(r * stride, 8);
            if (row[1] == 0 && row[2] == 0 && row[3] == 0 && row[4] == 0 && row[5] == 0 && row[6] == 0 && row[7] == 0)
            {
                dst.Fill(RangeLimit((row[0] + (1 << (Pass1Bits + 2))) >> (Pass1Bits + 3)));
                continue;
            }
            Butterfly(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
                out int o0, out int o1, out int o2, out int o3, out int o4, out int o5, out int o6, out int o7);
            const int shift = ConstBits + Pass1Bits + 3, round = 1 << (shift - 1);
            dst[0] = RangeLimit((o0 + round) >> shift);
            dst[1] = RangeLimit((o1 + round) >> shift);
            dst[2] = RangeLimit((o2 + round) >> shift);
            dst[3] = RangeLimit((o3 + round) >> shift);
            dst[4] = RangeLimit((o4 + round) >> shift);
            dst[5] = RangeLimit((o5 + round) >> shift);
            dst[6] = RangeLimit((o6 + round) >> shift);
            dst[7] = RangeLimit((o7 + round) >> shift);
        }
    }

    /// <summary>
    /// libjpeg's post-IDCT table: the value is taken modulo 1024 as a signed 10-bit number, shifted by +128,
    /// then clamped; so a wildly out-of-range sum wraps instead of saturating, exactly as theirs does.
    /// </summary>
    private static byte RangeLimit(int value) => (byte)Math.Clamp(((value << 22) >> 22) + 128, 0, 255);

    /// <summary>The 1-D transform of jidctint.c, scaled by 2^13 (no descaling).</summary>
    private static void Butterfly(int i0, int i1, int i2, int i3, int i4, int i5, int i6, int i7,
        out int o0, out int o1, out int o2, out int o3, out int o4, out int o5, out int o6, out int o7)
    {
        int z1 = (i2 + i6) * Fix0_541196100;
        int t2 = z1 - i6 * Fix1_847759065;
        int t3 = z1 + i2 * Fix0_765366865;
        int t0 = (i0 + i4) << ConstBits;
        int t1 = (i0 - i4) << ConstBits;
        int t10 = t0 + t3, t13 = t0 - t3, t11 = t1 + t2, t12 = t1 - t2;

        int a0 = i7, a1 = i5, a2 = i3, a3 = i1;
        int y1 = a0 + a3, y2 = a1 + a2, y3 = a0 + a2, y4 = a1 + a3;
        int z5 = (y3 + y4) * Fix1_175875602;
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

        o0 = t10 + a3; o7 = t10 - a3;
        o1 = t11 + a2; o6 = t11 - a2;
        o2 = t12 + a1; o5 = t12 - a1;
        o3 = t13 + a0; o4 = t13 - a0;
    }
}
