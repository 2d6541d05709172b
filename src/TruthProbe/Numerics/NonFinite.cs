using System.Numerics;
using System.Runtime.InteropServices;

namespace TruthProbe.Numerics;

/// <summary>
/// Finds the first NaN or infinity in float32, float16 and bfloat16 data by its bits: a non-finite value is one whose
/// exponent bits are all ones. Vectorised with <see cref="Vector{T}"/>: the scan is bound by memory bandwidth, not
/// by the vector width, so it does not follow <see cref="SimdWidth"/>.
/// </summary>
public static class NonFinite
{
    private const uint SingleExponent = 0x7F80_0000;
    private const ushort HalfExponent = 0x7C00, BFloat16Exponent = 0x7F80;

    /// <summary>Index of the first NaN or ±Inf, or -1.</summary>
    public static int IndexOf(ReadOnlySpan<float> values) => IndexOfAllOnes(MemoryMarshal.Cast<float, uint>(values), SingleExponent);

    /// <summary>The same over IEEE float16 bit patterns.</summary>
    public static int IndexOfHalf(ReadOnlySpan<ushort> bits) => IndexOfAllOnes(bits, HalfExponent);

    /// <summary>The same over bfloat16 bit patterns (the top half of a float32).</summary>
    public static int IndexOfBFloat16(ReadOnlySpan<ushort> bits) => IndexOfAllOnes(bits, BFloat16Exponent);

    private static int IndexOfAllOnes<T>(ReadOnlySpan<T> bits, T mask) where T : unmanaged, IBinaryInteger<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && bits.Length >= Vector<T>.Count)
        {
            var m = new Vector<T>(mask);
            // Whole vectors until one holds a non-finite lane; the scalar loop below then finds which.
            for (; i <= bits.Length - Vector<T>.Count; i += Vector<T>.Count)
                if (Vector.EqualsAny(new Vector<T>(bits[i..]) & m, m)) break;
        }
        for (; i < bits.Length; i++)
            if ((bits[i] & mask) == mask) return i;
        return -1;
    }
}
