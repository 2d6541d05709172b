using System.Runtime.InteropServices;
using TruthProbe.Common;

namespace TruthProbe.Formats;

/// <summary>Type tags of GGUF metadata values (the numbers are the file format's).</summary>
public enum GgufValueType : uint
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
    String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>
/// The tensor element types truthprobe reads (the numbers are ggml's <c>ggml_type</c>). Other ggml types
/// are refused by name when a file is opened, so a quantisation we cannot run never becomes garbage.
/// </summary>
public enum GgufTensorType : uint { F32 = 0, F16 = 1, Q8_0 = 8, BF16 = 30 }

public static class GgufTensorTypes
{
    /// <summary>Q8_0 packs 32 values as one fp16 scale followed by 32 signed bytes.</summary>
    public const int Q8_0BlockValues = 32;
    public const int Q8_0BlockBytes = 2 + Q8_0BlockValues;

    /// <summary>Bytes of a row of <paramref name="values"/> elements; Q8_0 rows must be whole blocks.</summary>
    public static long RowBytes(this GgufTensorType type, long values) => type switch
    {
        GgufTensorType.F32 => values * 4,
        GgufTensorType.F16 or GgufTensorType.BF16 => values * 2,
        GgufTensorType.Q8_0 => values / Q8_0BlockValues * Q8_0BlockBytes,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>Bytes of a whole tensor of the given row-major shape.</summary>
    public static long ByteLength(this GgufTensorType type, long[] shape)
    {
        long row = shape.Length == 0 ? 1 : shape[^1];
        long rows = row == 0 ? 0 : shape.Aggregate(1L, (a, b) => checked(a * b)) / row;
        return checked(type.RowBytes(row) * rows);
    }

    public static bool IsSupported(uint raw) => Enum.IsDefined((GgufTensorType)raw);

    /// <summary>ggml's names for the types other tools write, so a refusal can say what the file holds.</summary>
    public static string GgmlName(uint raw) => raw switch
    {
        0 => "F32", 1 => "F16", 2 => "Q4_0", 3 => "Q4_1", 6 => "Q5_0", 7 => "Q5_1", 8 => "Q8_0", 9 => "Q8_1",
        10 => "Q2_K", 11 => "Q3_K", 12 => "Q4_K", 13 => "Q5_K", 14 => "Q6_K", 15 => "Q8_K",
        16 => "IQ2_XXS", 17 => "IQ2_XS", 18 => "IQ3_XXS", 19 => "IQ1_S", 20 => "IQ4_NL", 21 => "IQ3_S",
        22 => "IQ2_S", 23 => "IQ4_XS", 24 => "I8", 25 => "I16", 26 => "I32", 27 => "I64", 28 => "F64",
        29 => "IQ1_M", 30 => "BF16", 34 => "TQ1_0", 35 => "TQ2_0", 39 => "MXFP4",
        _ => $"type {raw}",
    };

    /// <summary>
    /// Widens Q8_0 blocks to float32: value = scale * q for each of the 32 signed bytes of a block.
    /// <paramref name="destination"/> holds <c>blocks.Length / 34 * 32</c> values.
    /// </summary>
    public static void DequantizeQ8_0(ReadOnlySpan<byte> blocks, Span<float> destination)
    {
        if (blocks.Length % Q8_0BlockBytes != 0)
            throw new ArgumentException($"Q8_0 data must be whole {Q8_0BlockBytes}-byte blocks, got {blocks.Length} bytes", nameof(blocks));
        int blockCount = blocks.Length / Q8_0BlockBytes;
        if (destination.Length != blockCount * Q8_0BlockValues)
            throw new ArgumentException($"{blockCount} Q8_0 blocks hold {blockCount * Q8_0BlockValues} values, destination has {destination.Length}", nameof(destination));
        for (int b = 0; b < blockCount; b++)
        {
            var block = blocks.Slice(b * Q8_0BlockBytes, Q8_0BlockBytes);
            float scale = (float)MemoryMarshal.Read<Half>(block);
            var quants = MemoryMarshal.Cast<byte, sbyte>(block[2..]);
            var output = destination.Slice(b * Q8_0BlockValues, Q8_0BlockValues);
            for (int i = 0; i < Q8_0BlockValues; i++) output[i] = scale * quants[i];
        }
    }

    /// <summary>
    /// Quantises float32 values to Q8_0 as ggml's reference quantiser does: per block of 32, scale =
    /// max|x| / 127 stored as fp16, q = round-half-away(x / scale) with the unrounded scale.
    /// </summary>
    public static void QuantizeQ8_0(ReadOnlySpan<float> values, Span<byte> destination)
    {
        if (values.Length % Q8_0BlockValues != 0)
            throw new ArgumentException($"Q8_0 needs a multiple of {Q8_0BlockValues} values, got {values.Length}", nameof(values));
        int blockCount = values.Length / Q8_0BlockValues;
        if (destination.Length != blockCount * Q8_0BlockBytes)
            throw new ArgumentException($"{blockCount} Q8_0 blocks take {blockCount * Q8_0BlockBytes} bytes, destination has {destination.Length}", nameof(destination));
        for (int b = 0; b < blockCount; b++)
        {
            var x = values.Slice(b * Q8_0BlockValues, Q8_0BlockValues);
            var block = destination.Slice(b * Q8_0BlockBytes, Q8_0BlockBytes);
            float amax = System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(x);
            float scale = Math.Abs(amax) / 127f;
            float inverse = scale != 0 ? 1f / scale : 0f;
            MemoryMarshal.Write(block, (Half)scale);
            var quants = MemoryMarshal.Cast<byte, sbyte>(block[2..]);
            for (int i = 0; i < Q8_0BlockValues; i++) quants[i] = (sbyte)MathF.Round(x[i] * inverse, MidpointRounding.AwayFromZero);
        }
    }
}
