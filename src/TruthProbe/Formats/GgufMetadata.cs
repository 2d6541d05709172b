using System.Collections;
using TruthProbe.Common;

namespace TruthProbe.Formats;

/// <summary>
/// One GGUF metadata value. Scalars are held as their exact CLR type (<c>uint</c> for UInt32, ...), arrays as a
/// typed CLR array (<c>string[]</c>, <c>float[]</c>, <c>int[]</c>, ...) with <see cref="ElementType"/> set.
/// </summary>
public sealed record GgufValue(GgufValueType Type, object Value, GgufValueType ElementType = GgufValueType.UInt8)
{
    public static GgufValue Of(string v) => new(GgufValueType.String, v);
    public static GgufValue Of(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue Of(int v) => new(GgufValueType.Int32, v);
    public static GgufValue Of(ulong v) => new(GgufValueType.UInt64, v);
    public static GgufValue Of(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Of(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue Of(string[] v) => new(GgufValueType.Array, v, GgufValueType.String);
    public static GgufValue Of(float[] v) => new(GgufValueType.Array, v, GgufValueType.Float32);
    public static GgufValue Of(int[] v) => new(GgufValueType.Array, v, GgufValueType.Int32);

    public override string ToString() => Type == GgufValueType.Array
        ? $"[{ElementType} x {((Array)Value).Length}]"
        : Convert.ToString(Value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
}

/// <summary>
/// The key/value metadata of a GGUF file, in file order. Typed getters accept any integer width for integers
/// (files written by different tools differ) and fail with a <see cref="UserError"/> naming the file and key.
/// </summary>
public sealed class GgufMetadata : IEnumerable<KeyValuePair<string, GgufValue>>
{
    private readonly List<string> _order = [];
    private readonly Dictionary<string, GgufValue> _values = new(StringComparer.Ordinal);

    /// <summary>The file (or model) these values came from, for error messages.</summary>
    public string Source { get; }

    public GgufMetadata(string source) => Source = source;

    public int Count => _order.Count;
    public bool Contains(string key) => _values.ContainsKey(key);
    public bool TryGet(string key, out GgufValue value) => _values.TryGetValue(key, out value!);

    public GgufValue this[string key]
    {
        get => _values.TryGetValue(key, out var v) ? v : throw new UserError($"{Source}: GGUF metadata key '{key}' is missing");
        set
        {
            if (!_values.ContainsKey(key)) _order.Add(key);
            _values[key] = value;
        }
    }

    /// <summary>Adds a key that must not exist yet (the file format forbids duplicates).</summary>
    internal void AddNew(string key, GgufValue value)
    {
        if (_values.ContainsKey(key)) throw new UserError($"{Source}: GGUF metadata key '{key}' appears twice");
        this[key] = value;
    }

    public string String(string key) => StringOrNull(key) ?? throw Missing(key, "a string");
    public string? StringOrNull(string key) => Scalar(key, "a string") switch
    {
        null => null,
        string s => s,
        _ => throw WrongType(key, "a string"),
    };

    public long Integer(string key) => IntegerOrNull(key) ?? throw Missing(key, "an integer");
    public long? IntegerOrNull(string key)
    {
        object? v = Scalar(key, "an integer");
        if (v == null) return null;
        if (v is ulong big) return big <= long.MaxValue ? (long)big : throw WrongType(key, "an integer below 2^63");
        return v switch
        {
            byte or sbyte or ushort or short or uint or int or long => Convert.ToInt64(v),
            _ => throw WrongType(key, "an integer"),
        };
    }

    public double Float(string key) => FloatOrNull(key) ?? throw Missing(key, "a number");
    public double? FloatOrNull(string key) => Scalar(key, "a number") switch
    {
        null => null,
        float f => f,
        double d => d,
        bool or string => throw WrongType(key, "a number"),
        _ => IntegerOrNull(key),
    };

    public bool? BoolOrNull(string key) => Scalar(key, "a boolean") switch
    {
        null => null,
        bool b => b,
        _ => throw WrongType(key, "a boolean"),
    };

    public string[]? StringsOrNull(string key) => ArrayOrNull(key, "an array of strings") switch
    {
        null => null,
        string[] s => s,
        _ => throw WrongType(key, "an array of strings"),
    };

    public float[]? FloatsOrNull(string key) => ArrayOrNull(key, "an array of float32") switch
    {
        null => null,
        float[] f => f,
        _ => throw WrongType(key, "an array of float32"),
    };

    /// <summary>An integer array of any element width, as int32 (token types, ids).</summary>
    public int[]? IntsOrNull(string key)
    {
        var array = ArrayOrNull(key, "an array of integers");
        if (array == null) return null;
        if (array is int[] ints) return ints;
        if (array is string[] or float[] or double[] or bool[]) throw WrongType(key, "an array of integers");
        var result = new int[array.Length];
        for (int i = 0; i < result.Length; i++)
        {
            long v = Convert.ToInt64(array.GetValue(i));
            if (v is < int.MinValue or > int.MaxValue) throw WrongType(key, "an array of 32-bit integers");
            result[i] = (int)v;
        }
        return result;
    }

    private object? Scalar(string key, string expected)
    {
        if (!_values.TryGetValue(key, out var v)) return null;
        if (v.Type == GgufValueType.Array) throw WrongType(key, expected);
        return v.Value;
    }

    private Array? ArrayOrNull(string key, string expected)
    {
        if (!_values.TryGetValue(key, out var v)) return null;
        if (v.Type != GgufValueType.Array) throw WrongType(key, expected);
        return (Array)v.Value;
    }

    private UserError Missing(string key, string expected) =>
        new($"{Source}: GGUF metadata key '{key}' is missing (expected {expected})");

    private UserError WrongType(string key, string expected) =>
        new($"{Source}: GGUF metadata key '{key}' holds {_values[key].Type}{(_values[key].Type == GgufValueType.Array ? " of " + _values[key].ElementType : "")}, expected {expected}");

    public IEnumerator<KeyValuePair<string, GgufValue>> GetEnumerator() =>
        _order.Select(k => new KeyValuePair<string, GgufValue>(k, _values[k])).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
