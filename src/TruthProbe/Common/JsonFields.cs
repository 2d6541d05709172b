using System.Text.Json;

namespace TruthProbe.Common;

/// <summary>
/// Type-checked reads of JSON values from files a user supplies. System.Text.Json's getters throw
/// InvalidOperationException or FormatException on a wrong type; these throw one <see cref="UserError"/>
/// naming <c>where</c> (file and field), what was expected, and the offending value, truncated.
/// </summary>
public static class JsonFields
{
    private const int EchoLimit = 60;

    /// <summary>The value's JSON text, cut to a length that keeps an error message on one line.</summary>
    public static string Echo(JsonElement v)
    {
        string raw = v.GetRawText();
        return raw.Length <= EchoLimit ? raw : raw[..EchoLimit] + "...";
    }

    private static UserError Wrong(JsonElement v, string where, string expected) =>
        new($"{where} must be {expected}, got {Echo(v)}");

    /// <summary>The field's value, or false when it is absent or null (JSON configs use null for "not set").</summary>
    public static bool TryGet(JsonElement obj, string field, out JsonElement value) =>
        obj.TryGetProperty(field, out value) && value.ValueKind != JsonValueKind.Null;

    /// <summary>The field's value; absent or null is a <see cref="UserError"/> naming <paramref name="where"/>, followed by <paramref name="fix"/> when given.</summary>
    public static JsonElement Required(JsonElement obj, string field, string where, string? fix = null) =>
        TryGet(obj, field, out var value) ? value : throw new UserError($"{where}: missing field '{field}'{(fix == null ? "" : "; " + fix)}");

    /// <summary>An integer in [min, max]; 4.0, 4.5, "4" and 1e30 are refused.</summary>
    public static long Int64(JsonElement v, string where, long min = long.MinValue, long max = long.MaxValue)
    {
        string range = min == long.MinValue && max == long.MaxValue ? "an integer" : $"an integer in [{min}, {max}]";
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long x) || x < min || x > max) throw Wrong(v, where, range);
        return x;
    }

    public static int Int32(JsonElement v, string where, int min = int.MinValue, int max = int.MaxValue) =>
        (int)Int64(v, where, min, max);

    /// <summary>A finite number.</summary>
    public static double Number(JsonElement v, string where)
    {
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double x) || !double.IsFinite(x)) throw Wrong(v, where, "a finite number");
        return x;
    }

    public static string String(JsonElement v, string where)
    {
        if (v.ValueKind != JsonValueKind.String) throw Wrong(v, where, "a string");
        try { return v.GetString()!; }
        catch (InvalidOperationException) { throw new UserError($"{where} is not valid UTF-8/UTF-16 text"); }
    }

    public static bool Bool(JsonElement v, string where) => v.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw Wrong(v, where, "true or false"),
    };

    public static JsonElement Object(JsonElement v, string where) =>
        v.ValueKind == JsonValueKind.Object ? v : throw Wrong(v, where, "a JSON object");

    public static JsonElement Array(JsonElement v, string where) =>
        v.ValueKind == JsonValueKind.Array ? v : throw Wrong(v, where, "a JSON array");
}
