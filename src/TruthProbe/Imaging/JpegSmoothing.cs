namespace TruthProbe.Imaging;

/// <summary>
/// libjpeg-turbo 2.1.5's block smoothing (jdcoefct.c, <c>decompress_smooth_data</c>), the version Pillow 9.4 uses on
/// Debian 12: when a progressive file leaves some of the first nine AC coefficients without all their bits, each
/// block's still-zero low coefficients are estimated from the DC values of its 5x5 block neighbourhood before the
/// IDCT (and, when no AC data came at all, the DC itself is re-estimated). Written from that source line by line,
/// including its edge rules, which 2.1.5 still has: an image two blocks wide fills the window's right column from the
/// first block, and in vertically subsampled components the rows two away from the image's ends repeat the nearer one.
/// The stored coefficients are not changed; each block is estimated in a copy.
/// </summary>
internal static class JpegSmoothing
{
    /// <summary>Zigzag positions 1-9 (coef_bits' indices) in natural order: Q01, Q10, Q20, Q11, Q02, Q03, Q12, Q21, Q30.</summary>
    private static readonly int[] Natural = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24];

    /// <summary>The component's samples with smoothing, into <paramref name="plane"/> as the plain IDCT writes them.</summary>
    /// <param name="totalImcuRows">the frame's iMCU rows (image height over 8 x the largest vertical sampling factor).</param>
    public static void InverseTransform(JpegComponent c, int totalImcuRows, byte[] plane, int stride)
    {
        var quant = c.Quant!;   // smoothing is only chosen when every component has latched its table
        var bits = c.CoefficientBits;
        // The DC is re-estimated only when no AC coefficient of the first nine has any data.
        bool changeDc = true;
        for (int k = 1; k < 10; k++) changeDc &= bits[k] == -1;
        long q00 = quant[0];
        Span<short> work = stackalloc short[64];
        Span<int> dc = stackalloc int[25];   // DC01..DC25: rows prev-prev, prev, this, next, next-next; columns -2..+2
        Span<int> rows = stackalloc int[5];
        int v = c.V, lastImcu = totalImcuRows - 1, lastColumn = c.WidthInBlocks - 1;
        for (int r = 0; r < c.HeightInBlocks; r++)
        {
            int imcu = r / v, blockRow = r % v;
            int blockRows = imcu < lastImcu || c.HeightInBlocks % v == 0 ? v : c.HeightInBlocks % v;
            rows[2] = r;
            rows[1] = blockRow > 0 || imcu > 0 ? r - 1 : r;
            rows[0] = blockRow > 1 || imcu > 1 ? r - 2 : rows[1];
            rows[3] = blockRow < blockRows - 1 || imcu < lastImcu ? r + 1 : r;
            rows[4] = blockRow < blockRows - 2 || imcu + 1 < lastImcu ? r + 2 : rows[3];
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < 5; j++) dc[5 * i + j] = Dc(c, rows[i], 0);
            for (int column = 0; column <= lastColumn; column++)
            {
                c.Block(r, column).CopyTo(work);
                if (column == 0 && column < lastColumn)
                    for (int i = 0; i < 5; i++) dc[5 * i + 3] = Dc(c, rows[i], 1);
                if (column + 1 < lastColumn)
                    for (int i = 0; i < 5; i++) dc[5 * i + 4] = Dc(c, rows[i], column + 2);
                Estimate(work, dc, bits, quant, q00, changeDc);
                JpegIdct.Transform(work, quant, plane.AsSpan(r * 8 * stride + column * 8), stride);
                for (int i = 0; i < 5; i++) dc.Slice(5 * i + 1, 4).CopyTo(dc.Slice(5 * i, 4));
            }
        }
    }

    private static int Dc(JpegComponent c, int row, int column) => c.Coefficients[(row * c.BlocksPerLine + column) * 64];

    /// <summary>The estimates of one block, each applied only where the coefficient is still zero and not known exactly.</summary>
    private static void Estimate(Span<short> w, ReadOnlySpan<int> d, int[] bits, int[] quant, long q00, bool changeDc)
    {
        int d01 = d[0], d02 = d[1], d03 = d[2], d04 = d[3], d05 = d[4], d06 = d[5], d07 = d[6], d08 = d[7], d09 = d[8], d10 = d[9],
            d11 = d[10], d12 = d[11], d13 = d[12], d14 = d[13], d15 = d[14], d16 = d[15], d17 = d[16], d18 = d[17], d19 = d[18], d20 = d[19],
            d21 = d[20], d22 = d[21], d23 = d[22], d24 = d[23], d25 = d[24];
        // Each sum: the Gaussian-like kernel when the DC is re-estimated, else the 5x5 form of the JPEG standard's K.8.
        Apply(w, bits, quant, q00, 1, changeDc
            ? -d01 - d02 + d04 + d05 - 3 * d06 + 13 * d07 - 13 * d09 + 3 * d10 - 3 * d11 + 38 * d12 - 38 * d14 +
              3 * d15 - 3 * d16 + 13 * d17 - 13 * d19 + 3 * d20 - d21 - d22 + d24 + d25
            : -7 * d11 + 50 * d12 - 50 * d14 + 7 * d15);
        Apply(w, bits, quant, q00, 2, changeDc
            ? -d01 - 3 * d02 - 3 * d03 - 3 * d04 - d05 - d06 + 13 * d07 + 38 * d08 + 13 * d09 - d10 + d16 -
              13 * d17 - 38 * d18 - 13 * d19 + d20 + d21 + 3 * d22 + 3 * d23 + 3 * d24 + d25
            : -7 * d03 + 50 * d08 - 50 * d18 + 7 * d23);
        Apply(w, bits, quant, q00, 3, changeDc
            ? d03 + 2 * d07 + 7 * d08 + 2 * d09 - 5 * d12 - 14 * d13 - 5 * d14 + 2 * d17 + 7 * d18 + 2 * d19 + d23
            : -d03 + 13 * d08 - 24 * d13 + 13 * d18 - d23);
        Apply(w, bits, quant, q00, 4, changeDc
            ? -d01 + d05 + 9 * d07 - 9 * d09 - 9 * d17 + 9 * d19 + d21 - d25
            : d10 + d16 - 10 * d17 + 10 * d19 - d02 - d20 + d22 - d24 + d04 - d06 + 10 * d07 - 10 * d09);
        Apply(w, bits, quant, q00, 5, changeDc
            ? 2 * d07 - 5 * d08 + 2 * d09 + d11 + 7 * d12 - 14 * d13 + 7 * d14 + d15 + 2 * d17 - 5 * d18 + 2 * d19
            : -d11 + 13 * d12 - 24 * d13 + 13 * d14 - d15);
        if (!changeDc) return;
        Apply(w, bits, quant, q00, 6, d07 - d09 + 2 * d12 - 2 * d14 + d17 - d19);
        Apply(w, bits, quant, q00, 7, d07 - 3 * d08 + d09 - d17 + 3 * d18 - d19);
        Apply(w, bits, quant, q00, 8, d07 - d09 - 3 * d12 + 3 * d14 + d17 - d19);
        Apply(w, bits, quant, q00, 9, d07 + 2 * d08 + d09 - d17 - 2 * d18 - d19);
        // The DC is not bounded by a bit position: every estimate replaces it.
        w[0] = Predict(q00 * (-2 * d01 - 6 * d02 - 8 * d03 - 6 * d04 - 2 * d05 - 6 * d06 + 6 * d07 + 42 * d08 + 6 * d09 - 6 * d10 -
                              8 * d11 + 42 * d12 + 152 * d13 + 42 * d14 - 8 * d15 - 6 * d16 + 6 * d17 + 42 * d18 + 6 * d19 - 6 * d20 -
                              2 * d21 - 6 * d22 - 8 * d23 - 6 * d24 - 2 * d25), q00, 0);
    }

    /// <summary>Coefficient zigzag <paramref name="k"/> (1-9): estimated from <paramref name="sum"/> when its bits are incomplete and it is still zero.</summary>
    private static void Apply(Span<short> w, int[] bits, int[] quant, long q00, int k, int sum)
    {
        int al = bits[k], position = Natural[k];
        if (al != 0 && w[position] == 0) w[position] = Predict(q00 * sum, quant[position], al);
    }

    /// <summary>round(num / (q * 256)) away from zero, capped below 2^al when only bits below al are missing.</summary>
    private static short Predict(long num, long q, int al)
    {
        int pred = (int)(((q << 7) + Math.Abs(num)) / (q << 8));
        if (al > 0 && pred >= 1 << al) pred = (1 << al) - 1;
        return (short)(num >= 0 ? pred : -pred);
    }
}
