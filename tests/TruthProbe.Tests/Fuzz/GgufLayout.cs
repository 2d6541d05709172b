using System.Text;
using static TruthProbe.Tests.Fuzz.Mutations;

namespace TruthProbe.Tests.Fuzz;

/// <summary>
/// Where each structural integer of a valid GGUF file lies (written here from the GGUF spec, independently of the
/// reader under test), so that the fuzzer can set each to its extremes and cut the file at each boundary.
/// </summary>
public sealed class GgufLayout
{
    public sealed record Field(string Name, long Offset, int Size, bool IsValue);

    public List<Field> Fields { get; } = [];
    public long DataStart { get; private set; }

    // Value sizes by GGUF value type: u8 i8 u16 i16 u32 i32 f32 bool string array u64 i64 f64.
    private static readonly int[] Sizes = [1, 1, 2, 2, 4, 4, 4, 1, -1, -1, 8, 8, 8];
    private const int StringType = 8, ArrayType = 9;
    /// <summary>Per key, arrays and tensors: only the first few and the last get their fields recorded (the rest repeat them).</summary>
    private const int Sampled = 3;

    public static GgufLayout Parse(byte[] file)
    {
        var layout = new GgufLayout();
        long at = 4;
        layout.Add("version", ref at, 4);
        long tensors = (long)Read(file, at, 8);
        layout.Add("tensor_count", ref at, 8);
        long kvs = (long)Read(file, at, 8);
        layout.Add("kv_count", ref at, 8);
        for (long i = 0; i < kvs; i++)
        {
            bool record = i < Sampled || i == kvs - 1;
            string key = layout.String(file, ref at, $"key #{i}", record);
            uint type = (uint)Read(file, at, 4);
            layout.Add($"{key}.type", ref at, 4, record);
            layout.Value(file, ref at, type, key, record);
        }
        int alignment = 32;
        for (long i = 0; i < tensors; i++)
        {
            bool record = i < Sampled || i == tensors - 1;
            string name = layout.String(file, ref at, $"tensor #{i} name", record);
            uint dims = (uint)Read(file, at, 4);
            layout.Add($"tensor {name}.n_dims", ref at, 4, record);
            for (int d = 0; d < dims; d++) layout.Add($"tensor {name}.dim{d}", ref at, 8, record);
            layout.Add($"tensor {name}.type", ref at, 4, record);
            layout.Add($"tensor {name}.offset", ref at, 8, record);
        }
        layout.DataStart = (at + alignment - 1) / alignment * alignment;
        return layout;
    }

    /// <summary>The file with a general.alignment (u32) key inserted first, and the key count raised by one.</summary>
    public byte[] WithAlignment(byte[] file, uint alignment)
    {
        byte[] key = Encoding.UTF8.GetBytes("general.alignment");
        byte[] kv = [.. BitConverter.GetBytes((ulong)key.Length), .. key, .. BitConverter.GetBytes(4u), .. BitConverter.GetBytes(alignment)];
        byte[] raised = WithInteger(file, 16, 8, Read(file, 16, 8) + 1);
        return [.. raised[..24], .. kv, .. raised[24..]];
    }

    private void Add(string name, ref long at, int size, bool record = true, bool isValue = false)
    {
        if (record) Fields.Add(new Field(name, at, size, isValue));
        at += size;
    }

    private string String(byte[] file, ref long at, string name, bool record)
    {
        long length = (long)Read(file, at, 8);
        Add($"{name} length", ref at, 8, record);
        string text = Encoding.UTF8.GetString(file, (int)at, (int)length);
        at += length;
        return text;
    }

    private void Value(byte[] file, ref long at, uint type, string key, bool record)
    {
        if (type == StringType) String(file, ref at, $"{key} value", record);
        else if (type == ArrayType)
        {
            uint element = (uint)Read(file, at, 4);
            Add($"{key} element type", ref at, 4, record);
            long count = (long)Read(file, at, 8);
            Add($"{key} count", ref at, 8, record);
            for (long i = 0; i < count; i++) Value(file, ref at, element, $"{key}[{i}]", record && (i < Sampled || i == count - 1));
        }
        else
        {
            int size = Sizes[type];
            // Integer values (block counts, context lengths, ids) get extremes too; they may be valid, so only crashes count.
            Add($"{key} value", ref at, size, record && type is not (6 or 12), isValue: true);
        }
    }
}
