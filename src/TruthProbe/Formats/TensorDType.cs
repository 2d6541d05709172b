using TruthProbe.Common;

namespace TruthProbe.Formats;

/// <summary>Element types of tensors as safetensors names them.</summary>
public enum TensorDType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool }

public static class TensorDTypes
{
    public static int Size(this TensorDType t) => t switch
    {
        TensorDType.F64 or TensorDType.I64 => 8,
        TensorDType.F32 or TensorDType.I32 => 4,
        TensorDType.F16 or TensorDType.BF16 or TensorDType.I16 => 2,
        _ => 1,
    };

    public static string SafetensorsName(this TensorDType t) => t == TensorDType.Bool ? "BOOL" : t.ToString();

    public static TensorDType ParseSafetensors(string name, string file) => name switch
    {
        "F64" => TensorDType.F64,
        "F32" => TensorDType.F32,
        "F16" => TensorDType.F16,
        "BF16" => TensorDType.BF16,
        "I64" => TensorDType.I64,
        "I32" => TensorDType.I32,
        "I16" => TensorDType.I16,
        "I8" => TensorDType.I8,
        "U8" => TensorDType.U8,
        "BOOL" => TensorDType.Bool,
        _ => throw new UserError($"{file}: unsupported tensor dtype '{name}' (expected F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL)"),
    };

    /// <summary>bf16 is the top half of an fp32: widening is a 16-bit shift.</summary>
    public static float BFloat16ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Round-to-nearest-even, as PyTorch converts fp32 to bf16; NaN stays NaN.</summary>
    public static ushort SingleToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }
}
