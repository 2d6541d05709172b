using System.Buffers.Binary;
using System.Text.RegularExpressions;
using System.Text;
using TruthProbe.Common;

namespace TruthProbe.Formats;

/// <summary>An array read from a numpy <c>.npy</c> file, widened to double and in C (row-major) order.</summary>
public sealed record NpyArray(int[] Shape, string DType, double[] Data)
{
    public long Count => Data.LongLength;
}

/// <summary>
/// numpy's <c>.npy</c> format (v1.0-3.0): magic, version, little-endian header length, a Python dict
/// literal with <c>descr</c>, <c>fortran_order</c> and <c>shape</c>, then the raw array.
/// Reads the numeric dtypes people save scores, activations and labels in; writes float64, float32 and int64.
/// </summary>
public static partial class Npy
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    public static NpyArray Read(string path)
    {
        if (!File.Exists(path)) throw new UserError($"{path}: file not found (expected a numpy .npy file)");
        byte[] bytes = File.ReadAllBytes(path);
        return Parse(bytes, path);
    }

    public static NpyArray Parse(ReadOnlySpan<byte> bytes, string nameForErrors)
    {
        if (bytes.Length < 10 || !bytes[..6].SequenceEqual(Magic))
            throw new UserError($"{nameForErrors}: not a numpy .npy file (missing the \\x93NUMPY magic)");
        int major = bytes[6];
        long headerLen;
        int headerStart;
        if (major == 1) { headerLen = BinaryPrimitives.ReadUInt16LittleEndian(bytes[8..]); headerStart = 10; }
        else if (major is 2 or 3)
        {
            if (bytes.Length < 12) throw new UserError($"{nameForErrors}: truncated .npy header");
            headerLen = BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]); headerStart = 12;
        }
        else throw new UserError($"{nameForErrors}: unsupported .npy version {major}.{bytes[7]} (expected 1.0, 2.0 or 3.0)");
        if (headerStart + headerLen > bytes.Length)
            throw new UserError($"{nameForErrors}: .npy header claims {headerLen} bytes but the file has {bytes.Length - headerStart} after the length field (truncated or corrupt)");
        string header = Encoding.Latin1.GetString(bytes.Slice(headerStart, (int)headerLen));

        var descr = DescrRegex().Match(header);
        var fortran = FortranRegex().Match(header);
        var shapeMatch = ShapeRegex().Match(header);
        // np.load evaluates the header as a Python dict literal; a list or a bare sequence of the keys is not one.
        string trimmed = header.Trim();
        if (!descr.Success || !fortran.Success || !shapeMatch.Success || !trimmed.StartsWith('{') || !trimmed.EndsWith('}'))
            throw new UserError($"{nameForErrors}: malformed .npy header '{header.Trim()}'");
        string dtype = descr.Groups[1].Value;
        bool fortranOrder = fortran.Groups[1].Value == "True";
        string[] dims = shapeMatch.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var shape = new int[dims.Length];
        for (int i = 0; i < dims.Length; i++)
            // Python 2 numpy wrote longs with an L suffix: (3L, 4L).
            if (!int.TryParse(dims[i].TrimEnd('L'), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out shape[i]))
                throw new UserError($"{nameForErrors}: .npy shape ({Truncated(shapeMatch.Groups[1].Value)}) must hold non-negative integers below 2^31, got '{Truncated(dims[i])}'");

        int itemSize = ItemSize(dtype, nameForErrors);
        var data = bytes[(int)(headerStart + headerLen)..];
        // The element count is checked against the data before it is formed, so it can neither overflow nor
        // size an allocation beyond what the file holds.
        long available = data.Length / itemSize, count = 1;
        foreach (int d in shape) count = d == 0 ? 0 : count <= (available + 1) / d ? count * d : available + 1;
        if (count > available)
            throw new UserError($"{nameForErrors}: truncated .npy data: shape ({string.Join(", ", shape)}) of {dtype} needs more than the {data.Length} bytes the file has");

        // np.save writes exactly the data; more bytes mean the dtype or shape was changed (a '<f8' file relabelled
        // '<f4' would otherwise read as half its values, reinterpreted).
        if (count * itemSize != data.Length)
            throw new UserError($"{nameForErrors}: .npy data is {data.Length} bytes but shape ({string.Join(", ", shape)}) of {dtype} is {count * itemSize}; the header's dtype or shape does not match the data");

        var values = new double[count];
        for (long i = 0; i < count; i++)
            values[i] = ReadItem(data.Slice((int)(i * itemSize), itemSize), dtype);
        if (fortranOrder && shape.Length > 1) values = FortranToC(values, shape);
        return new NpyArray(shape, dtype, values);
    }

    private static int ItemSize(string dtype, string name) => dtype switch
    {
        "<f8" or "<i8" or "<u8" => 8,
        "<f4" or "<i4" or "<u4" => 4,
        "<f2" or "<i2" or "<u2" => 2,
        "|u1" or "|i1" or "|b1" => 1,
        _ => throw new UserError($"{name}: unsupported .npy dtype '{dtype}' (expected little-endian float16/32/64, int8-64, uint8-64 or bool)"),
    };

    private static double ReadItem(ReadOnlySpan<byte> b, string dtype) => dtype switch
    {
        "<f8" => BinaryPrimitives.ReadDoubleLittleEndian(b),
        "<f4" => BinaryPrimitives.ReadSingleLittleEndian(b),
        "<f2" => (double)BinaryPrimitives.ReadHalfLittleEndian(b),
        "<i8" => BinaryPrimitives.ReadInt64LittleEndian(b),
        "<u8" => BinaryPrimitives.ReadUInt64LittleEndian(b),
        "<i4" => BinaryPrimitives.ReadInt32LittleEndian(b),
        "<u4" => BinaryPrimitives.ReadUInt32LittleEndian(b),
        "<i2" => BinaryPrimitives.ReadInt16LittleEndian(b),
        "<u2" => BinaryPrimitives.ReadUInt16LittleEndian(b),
        "|i1" => (sbyte)b[0],
        _ => b[0],
    };

    private static double[] FortranToC(double[] src, int[] shape)
    {
        var dst = new double[src.Length];
        int rank = shape.Length;
        var index = new int[rank];
        for (long f = 0; f < src.LongLength; f++)
        {
            long c = 0;
            for (int k = 0; k < rank; k++) c = c * shape[k] + index[k];
            dst[c] = src[f];
            for (int k = 0; k < rank; k++)
            {
                if (++index[k] < shape[k]) break;
                index[k] = 0;
            }
        }
        return dst;
    }

    public static void WriteFloat64(string path, ReadOnlySpan<double> data, params int[] shape) =>
        WriteRaw(path, "<f8", shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(data).ToArray());

    public static void WriteFloat32(string path, ReadOnlySpan<float> data, params int[] shape) =>
        WriteRaw(path, "<f4", shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(data).ToArray());

    public static void WriteInt64(string path, ReadOnlySpan<long> data, params int[] shape) =>
        WriteRaw(path, "<i8", shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(data).ToArray());

    private static void WriteRaw(string path, string dtype, int[] shape, byte[] payload)
    {
        long count = 1;
        foreach (int d in shape) count *= d;
        if (count * ItemSize(dtype, path) != payload.Length)
            throw new ArgumentException($"shape ({string.Join(", ", shape)}) does not match {payload.Length} bytes of {dtype}");
        AtomicFile.Write(path, s =>
        {
            byte[] header = Header(dtype, shape);
            s.Write(header);
            s.Write(payload);
        });
    }

    /// <summary>The v1.0 header numpy itself writes: padded with spaces so the data starts on a 64-byte boundary.</summary>
    private static byte[] Header(string dtype, int[] shape)
    {
        string shapeText = shape.Length == 1 ? $"({shape[0]},)" : $"({string.Join(", ", shape)})";
        string dict = $"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shapeText}, }}";
        int total = 10 + dict.Length + 1;
        int padded = (total + 63) / 64 * 64;
        dict = dict + new string(' ', padded - total) + "\n";
        var header = new byte[10 + dict.Length];
        Magic.CopyTo(header, 0);
        header[6] = 1;
        header[7] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), (ushort)dict.Length);
        Encoding.Latin1.GetBytes(dict).CopyTo(header, 10);
        return header;
    }

    private static string Truncated(string s) => s.Length <= 40 ? s : s[..40] + "...";

    [GeneratedRegex(@"'descr'\s*:\s*'([^']+)'")]
    private static partial Regex DescrRegex();
    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranRegex();
    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapeRegex();
}
