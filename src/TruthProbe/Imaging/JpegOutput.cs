using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TruthProbe.Imaging;

internal enum JpegColorTransform { Grey, YCbCr, Rgb, Cmyk, Ycck }

/// <summary>
/// From decoded coefficients to RGB pixels the way libjpeg-turbo does it for Pillow: IDCT of every block,
/// then per output row each component upsampled (jdsample.c's triangular "fancy" filters for 2:1 factors,
/// replication otherwise), then jdcolor.c's fixed-point YCbCr->RGB. Progressive files whose low AC coefficients
/// are incomplete go through libjpeg's block smoothing (<see cref="JpegSmoothing"/>); four-component files through
/// libjpeg's CMYK output and Pillow's CMYK->RGB.
/// </summary>
internal static class JpegOutput
{
    // jdcolor.c's tables: 16-bit fixed point, FIX(x) = round(x * 65536); the G term keeps its scale and
    // carries the rounding half in the Cb part.
    private static readonly int[] CrToR = BuildTable(x => (91881 * x + 32768) >> 16);
    private static readonly int[] CbToB = BuildTable(x => (116130 * x + 32768) >> 16);
    private static readonly int[] CrToG = BuildTable(x => -46802 * x);
    private static readonly int[] CbToG = BuildTable(x => -22554 * x + 32768);

    private static int[] BuildTable(Func<int, int> f) => Enumerable.Range(0, 256).Select(i => f(i - 128)).ToArray();

    public static RgbImage ToRgb(JpegComponent[] comps, int width, int height, int maxH, int maxV,
        JpegColorTransform transform, bool progressive)
    {
        bool smooth = progressive && LibjpegWouldSmooth(comps);
        int totalImcuRows = (height + 8 * maxV - 1) / (8 * maxV);
        var planes = new byte[comps.Length][];
        var rowBuffers = new byte[comps.Length][];
        for (int i = 0; i < comps.Length; i++)
        {
            planes[i] = InverseTransform(comps[i], smooth, totalImcuRows);
            rowBuffers[i] = new byte[maxH / comps[i].H * comps[i].Width + 8];
        }
        var image = new RgbImage(width, height);
        for (int y = 0; y < height; y++)
        {
            var dst = image.Row(y);
            var c0 = UpsampledRow(comps[0], planes[0], y, maxH, maxV, rowBuffers[0], width);
            if (transform == JpegColorTransform.Grey)
            {
                for (int x = 0; x < width; x++) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = c0[x];
                continue;
            }
            var c1 = UpsampledRow(comps[1], planes[1], y, maxH, maxV, rowBuffers[1], width);
            var c2 = UpsampledRow(comps[2], planes[2], y, maxH, maxV, rowBuffers[2], width);
            if (transform is JpegColorTransform.Cmyk or JpegColorTransform.Ycck)
            {
                CmykToRgb(c0, c1, c2, UpsampledRow(comps[3], planes[3], y, maxH, maxV, rowBuffers[3], width), transform == JpegColorTransform.Ycck, dst);
                continue;
            }
            if (transform == JpegColorTransform.Rgb)
            {
                for (int x = 0; x < width; x++)
                {
                    dst[3 * x] = c0[x];
                    dst[3 * x + 1] = c1[x];
                    dst[3 * x + 2] = c2[x];
                }
                continue;
            }
            YCbCrToRgb(c0, c1, c2, dst);
        }
        return image;
    }

    /// <summary>
    /// jdcoefct.c's smoothing_ok on the final coefficient state (Pillow reads the whole file before output):
    /// smoothing is used when every component's DC is known, the first 10 quantisers are nonzero, and some
    /// component still lacks bits of one of its first 9 AC coefficients.
    /// </summary>
    private static bool LibjpegWouldSmooth(JpegComponent[] comps)
    {
        ReadOnlySpan<int> firstTen = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24];
        bool useful = false;
        foreach (var c in comps)
        {
            if (c.Quant == null) return false;
            foreach (int p in firstTen)
                if (c.Quant[p] == 0) return false;
            if (c.CoefficientBits[0] < 0) return false;
            for (int k = 1; k < 10; k++) useful |= c.CoefficientBits[k] != 0;
        }
        return useful;
    }

    /// <summary>The component's samples, one byte each, for every block its scans cover (stride: whole MCUs).</summary>
    private static byte[] InverseTransform(JpegComponent c, bool smooth, int totalImcuRows)
    {
        int stride = c.BlocksPerLine * 8;
        var plane = new byte[stride * c.HeightInBlocks * 8];
        if (smooth)
        {
            JpegSmoothing.InverseTransform(c, totalImcuRows, plane, stride);
            return plane;
        }
        // A component no scan reached has all-zero coefficients; libjpeg then shows mid-grey, as any quantiser gives.
        var quant = c.Quant ?? new int[64];
        for (int by = 0; by < c.HeightInBlocks; by++)
            for (int bx = 0; bx < c.WidthInBlocks; bx++)
                JpegIdct.Transform(c.Block(by, bx), quant, plane.AsSpan(by * 8 * stride + bx * 8), stride);
        return plane;
    }

    /// <summary>Row <paramref name="y"/> of the component at full resolution (at least <paramref name="width"/> samples).</summary>
    private static ReadOnlySpan<byte> UpsampledRow(JpegComponent c, byte[] plane, int y, int maxH, int maxV, byte[] buffer, int width)
    {
        int stride = c.BlocksPerLine * 8;
        int hExpand = maxH / c.H, vExpand = maxV / c.V;
        ReadOnlySpan<byte> Row(int r) => plane.AsSpan(Math.Clamp(r, 0, c.Height - 1) * stride, c.Width);
        // The choice of filter follows jdsample.c's jinit_upsampler, including its fallbacks to replication
        // for components at most 2 samples wide.
        if (hExpand == 1 && vExpand == 1) return Row(y);
        if (hExpand == 2 && vExpand == 1)
        {
            if (c.Width > 2) FancyH2V1(Row(y), buffer);
            else Replicate(Row(y), 2, buffer, width);
        }
        else if (hExpand == 1 && vExpand == 2)
        {
            bool above = (y & 1) == 0;
            FancyH1V2(Row(y >> 1), Row(above ? (y >> 1) - 1 : (y >> 1) + 1), above ? 1 : 2, buffer);
        }
        else if (hExpand == 2 && vExpand == 2 && c.Width > 2)
        {
            bool above = (y & 1) == 0;
            FancyH2V2(Row(y >> 1), Row(above ? (y >> 1) - 1 : (y >> 1) + 1), buffer);
        }
        else Replicate(Row(y / vExpand), hExpand, buffer, width);
        return buffer;
    }

    /// <summary>Horizontal 2:1, each output 3/4 of the nearer and 1/4 of the further input; edges copy.</summary>
    private static void FancyH2V1(ReadOnlySpan<byte> src, Span<byte> dst)
    {
        int n = src.Length;
        if (dst.Length < 2 * n) throw new ArgumentException("output row too short", nameof(dst));
        ref byte s = ref MemoryMarshal.GetReference(src);
        ref byte d = ref MemoryMarshal.GetReference(dst);
        int prev = s, cur = s;
        for (int i = 0; i < n; i++)
        {
            int next = i + 1 < n ? Unsafe.Add(ref s, i + 1) : cur;
            Unsafe.Add(ref d, 2 * i) = (byte)((cur * 3 + prev + 1) >> 2);
            Unsafe.Add(ref d, 2 * i + 1) = (byte)((cur * 3 + next + 2) >> 2);
            prev = cur;
            cur = next;
        }
    }

    /// <summary>Vertical 2:1: 3/4 of the nearer row, 1/4 of the other, rounding biased as libjpeg's (1 above, 2 below).</summary>
    private static void FancyH1V2(ReadOnlySpan<byte> near, ReadOnlySpan<byte> far, int bias, Span<byte> dst)
    {
        for (int i = 0; i < near.Length; i++) dst[i] = (byte)((near[i] * 3 + far[i] + bias) >> 2);
    }

    /// <summary>Both directions 2:1: 9/16, 3/16, 3/16, 1/16 of the four nearest inputs, libjpeg's rounding.</summary>
    private static void FancyH2V2(ReadOnlySpan<byte> near, ReadOnlySpan<byte> far, Span<byte> dst)
    {
        int n = near.Length;
        if (far.Length < n || dst.Length < 2 * n) throw new ArgumentException("rows too short", nameof(dst));
        ref byte a = ref MemoryMarshal.GetReference(near);
        ref byte b = ref MemoryMarshal.GetReference(far);
        ref byte d = ref MemoryMarshal.GetReference(dst);
        int last = a * 3 + b;
        int cur = last;
        for (int i = 0; i < n; i++)
        {
            int next = i + 1 < n ? Unsafe.Add(ref a, i + 1) * 3 + Unsafe.Add(ref b, i + 1) : cur;
            Unsafe.Add(ref d, 2 * i) = (byte)((cur * 3 + last + 8) >> 4);
            Unsafe.Add(ref d, 2 * i + 1) = (byte)((cur * 3 + next + 7) >> 4);
            last = cur;
            cur = next;
        }
    }

    private static void Replicate(ReadOnlySpan<byte> src, int factor, Span<byte> dst, int width)
    {
        for (int x = 0; x < width; x++) dst[x] = src[x / factor];
    }

    private static void YCbCrToRgb(ReadOnlySpan<byte> yRow, ReadOnlySpan<byte> cbRow, ReadOnlySpan<byte> crRow, Span<byte> dst)
    {
        int width = dst.Length / 3;
        if (yRow.Length < width || cbRow.Length < width || crRow.Length < width) throw new ArgumentException("component rows too short");
        ref byte py = ref MemoryMarshal.GetReference(yRow);
        ref byte pcb = ref MemoryMarshal.GetReference(cbRow);
        ref byte pcr = ref MemoryMarshal.GetReference(crRow);
        ref byte d = ref MemoryMarshal.GetReference(dst);
        int x = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            // 8 pixels at a time with jdcolor.c's products computed, not looked up (its tables hold exactly
            // these values); 16 bytes are loaded per component, so stop 16 short of the row's end.
            var center = Vector256.Create(128);
            var half = Vector256.Create(1 << 15);
            var max = Vector256.Create(255);
            for (; x + 16 <= width; x += 8)
            {
                var y = Widen(ref Unsafe.Add(ref py, x));
                var cb = Widen(ref Unsafe.Add(ref pcb, x)) - center;
                var cr = Widen(ref Unsafe.Add(ref pcr, x)) - center;
                var r = Vector256.Min(Vector256.Max(y + ((cr * 91881 + half) >> 16), Vector256<int>.Zero), max);
                var g = Vector256.Min(Vector256.Max(y + ((cb * -22554 + cr * -46802 + half) >> 16), Vector256<int>.Zero), max);
                var b = Vector256.Min(Vector256.Max(y + ((cb * 116130 + half) >> 16), Vector256<int>.Zero), max);
                // r and g narrowed into one 16-byte register, b into another, then shuffled into R G B order.
                var rg = NarrowToBytes(r, g);
                var bb = NarrowToBytes(b, b);
                var first = Vector128.Shuffle(rg, RgFirst) | Vector128.Shuffle(bb, BFirst);
                var second = Vector128.Shuffle(rg, RgSecond) | Vector128.Shuffle(bb, BSecond);
                first.StoreUnsafe(ref Unsafe.Add(ref d, 3 * x));
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref d, 3 * x + 16), second.AsUInt64().ToScalar());
            }
        }
        ref int crToR = ref MemoryMarshal.GetArrayDataReference(CrToR);
        ref int cbToB = ref MemoryMarshal.GetArrayDataReference(CbToB);
        ref int crToG = ref MemoryMarshal.GetArrayDataReference(CrToG);
        ref int cbToG = ref MemoryMarshal.GetArrayDataReference(CbToG);
        // Every sum lies in [-256, 512), so the clamp is one lookup, as in libjpeg.
        ref byte clamp = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(ClampTable), 256);
        for (; x < width; x++)
        {
            int y = Unsafe.Add(ref py, x), cb = Unsafe.Add(ref pcb, x), cr = Unsafe.Add(ref pcr, x);
            Unsafe.Add(ref d, 3 * x) = Unsafe.Add(ref clamp, y + Unsafe.Add(ref crToR, cr));
            Unsafe.Add(ref d, 3 * x + 1) = Unsafe.Add(ref clamp, y + ((Unsafe.Add(ref cbToG, cb) + Unsafe.Add(ref crToG, cr)) >> 16));
            Unsafe.Add(ref d, 3 * x + 2) = Unsafe.Add(ref clamp, y + Unsafe.Add(ref cbToB, cb));
        }
    }

    /// <summary>
    /// Four components as Pillow shows them: libjpeg hands out CMYK (YCCK converted by jdcolor.c's YCbCr tables, stored
    /// inverted: 255 - R), Pillow reads it as Adobe's inverted CMYK ("CMYK;I", every byte inverted) and converts with
    /// Convert.c's cmyk2rgb, R = nk - nk * c / 255 in its integer division by 255, nk = 255 - k. After both inversions
    /// that is R = K - MULDIV255(c', K) with K and c' as below.
    /// </summary>
    private static void CmykToRgb(ReadOnlySpan<byte> c0, ReadOnlySpan<byte> c1, ReadOnlySpan<byte> c2, ReadOnlySpan<byte> k, bool ycck, Span<byte> dst)
    {
        int width = dst.Length / 3;
        for (int x = 0; x < width; x++)
        {
            int key = k[x], r, g, b;
            if (ycck)
            {
                int y = c0[x], cb = c1[x], cr = c2[x];
                r = ClampTable[256 + y + CrToR[cr]];
                g = ClampTable[256 + y + ((CbToG[cb] + CrToG[cr]) >> 16)];
                b = ClampTable[256 + y + CbToB[cb]];
            }
            else (r, g, b) = (255 - c0[x], 255 - c1[x], 255 - c2[x]);
            dst[3 * x] = (byte)(key - MulDiv255(r, key));
            dst[3 * x + 1] = (byte)(key - MulDiv255(g, key));
            dst[3 * x + 2] = (byte)(key - MulDiv255(b, key));
        }
    }

    /// <summary>Pillow's MULDIV255: a * b / 255 rounded, exactly for bytes.</summary>
    private static int MulDiv255(int a, int b)
    {
        int t = a * b + 128;
        return ((t >> 8) + t) >> 8;
    }

    private static Vector128<byte> NarrowToBytes(Vector256<int> low, Vector256<int> high)
    {
        var shorts = Vector256.Narrow(low, high).AsUInt16();
        return Vector128.Narrow(shorts.GetLower(), shorts.GetUpper());
    }

    private static Vector256<int> Widen(ref byte source)
    {
        var bytes = Vector128.LoadUnsafe(ref source);
        var shorts = Vector128.WidenLower(bytes).AsInt16();
        return Vector256.Create(Vector128.WidenLower(shorts), Vector128.WidenUpper(shorts));
    }

    // Byte i of the 8-pixel output comes from r (0-7) or g (8-15) in rg, or from b; 0xFF selects zero.
    private static readonly Vector128<byte> RgFirst = Vector128.Create((byte)0, 8, 0xFF, 1, 9, 0xFF, 2, 10, 0xFF, 3, 11, 0xFF, 4, 12, 0xFF, 5);
    private static readonly Vector128<byte> BFirst = Vector128.Create((byte)0xFF, 0xFF, 0, 0xFF, 0xFF, 1, 0xFF, 0xFF, 2, 0xFF, 0xFF, 3, 0xFF, 0xFF, 4, 0xFF);
    private static readonly Vector128<byte> RgSecond = Vector128.Create((byte)13, 0xFF, 6, 14, 0xFF, 7, 15, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF);
    private static readonly Vector128<byte> BSecond = Vector128.Create((byte)0xFF, 5, 0xFF, 0xFF, 6, 0xFF, 0xFF, 7, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF);

    private static readonly byte[] ClampTable = Enumerable.Range(-256, 768).Select(v => (byte)Math.Clamp(v, 0, 255)).ToArray();
}
