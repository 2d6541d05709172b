using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using TruthProbe.Common;
using TruthProbe.Formats;

namespace TruthProbe.Model;

/// <summary>
/// How a <see cref="RunState"/> stores the keys and values it caches, as llama.cpp's <c>--cache-type-k/v</c>:
/// float32 (the default, exact), or 16 bits a value (bf16 or fp16, rounded to nearest even as they enter the cache
/// and widened back to float32 inside the attention kernels). 16 bits halve the cache: 0.27 GB instead of 0.54 at
/// 512 tokens of a 7B shape, 3.7% of a Q8_0 7B's weight bytes. The hooks (<c>hook_k</c>, <c>hook_rot_k</c>,
/// <c>hook_v</c>) still see the float32 values; attention reads them rounded.
/// </summary>
public enum KvCacheType { F32, BF16, F16 }

public static unsafe class KvCacheTypes
{
    /// <summary>The names users give, in <see cref="KvCacheType"/> order.</summary>
    public static readonly string[] Names = ["f32", "bf16", "f16"];

    public static string Name(this KvCacheType type) => Names[(int)type];

    /// <summary><paramref name="text"/> as a cache type; anything else is a <see cref="UserError"/> naming <paramref name="field"/>.</summary>
    public static KvCacheType Parse(string text, string field)
    {
        int at = Array.IndexOf(Names, text);
        if (at < 0) throw new UserError($"{field}: unknown KV cache type '{text}' (expected {string.Join(", ", Names)})") { Field = field };
        return (KvCacheType)at;
    }

    /// <summary>float32 values into 16-bit cache entries, rounded to nearest even (NaN stays NaN; fp16 overflows to infinity).</summary>
    internal static void Narrow(KvCacheType type, ReadOnlySpan<float> source, Span<ushort> destination)
    {
        if (type == KvCacheType.F16) TensorPrimitives.ConvertToHalf(source, System.Runtime.InteropServices.MemoryMarshal.Cast<ushort, Half>(destination));
        else for (int i = 0; i < source.Length; i++) destination[i] = TensorDTypes.SingleToBFloat16(source[i]);
    }

    /// <summary>n 16-bit cache entries back to float32: exact, so attention on a 16-bit cache is attention on the rounded
    /// values. fp16 goes through the fp16 weights' 8-lane conversion (bit operations: .NET 10 has no F16C), 0.17 ns a
    /// value against bf16's 0.09 (one core, AVX-512 machine).</summary>
    internal static void Widen(KvCacheType type, ushort* source, float* destination, int n)
    {
        if (type == KvCacheType.BF16) { Kernels.WidenBFloat16(source, new Span<float>(destination, n)); return; }
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= n; i += 8) Kernels.Float16x8(source + i).Store(destination + i);
        for (; i < n; i++) destination[i] = (float)BitConverter.UInt16BitsToHalf(source[i]);
    }
}
