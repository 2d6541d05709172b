using System.Text.Json;
using System.Text;
using TruthProbe.Common;

namespace TruthProbe.Evaluation;

/// <summary>One object of a records file and where it came from, so errors can name the file and line.</summary>
public readonly record struct JsonRecord(JsonElement Value, string File, long Line)
{
    public string Where => $"{File}:{Line}";

    /// <summary>The string or integer field <paramref name="name"/> as text, or null when it is absent.</summary>
    public string? Text(string name)
    {
        if (!Value.TryGetProperty(name, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Number => v.GetRawText(),
            JsonValueKind.Null => null,
            _ => throw new UserError($"{Where}: field '{name}' must be a string or a number, got {v.ValueKind}"),
        };
    }

    /// <summary>The string field <paramref name="name"/>, or null when it is absent; a number or anything else is refused
    /// (a caption or reply of 5 is a broken record, not the text "5").</summary>
    public string? String(string name)
    {
        if (!Value.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString()
            : throw new UserError($"{Where}: field '{name}' must be a string, got {JsonFields.Echo(v)}");
    }

    public long Integer(string name)
    {
        if (!Value.TryGetProperty(name, out var v))
            throw new UserError($"{Where}: missing field '{name}'");
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long n)) return n;
        if (v.ValueKind == JsonValueKind.String && long.TryParse(v.GetString(), out n)) return n;
        throw new UserError($"{Where}: field '{name}' must be an integer, got {v.GetRawText()}");
    }
}

/// <summary>
/// Reads the record files that evaluation tools exchange: JSON Lines (one object a line, the usual case),
/// one JSON array of objects (POPE's A-OKVQA/GQA files), or concatenated pretty-printed objects (POPE's
/// Instruction1_llava.json). A malformed record is a <see cref="UserError"/> naming the file and line.
/// </summary>
public static class JsonRecords
{
    public static List<JsonRecord> Read(string path)
    {
        if (!File.Exists(path)) throw new UserError($"{path}: file not found");
        byte[] bytes = File.ReadAllBytes(path);
        int first = 0;
        if (bytes.AsSpan().StartsWith(Encoding.UTF8.Preamble)) first = Encoding.UTF8.Preamble.Length;
        while (first < bytes.Length && IsSpace(bytes[first])) first++;
        if (first == bytes.Length) return [];
        if (bytes[first] == (byte)'[') return ReadArray(bytes, first, path);
        int bom = bytes.AsSpan().StartsWith(Encoding.UTF8.Preamble) ? Encoding.UTF8.Preamble.Length : 0;
        var records = ReadLines(bytes, bom, path, out var lineError) ?? ReadStream(bytes, first, path) ?? throw lineError!;
        foreach (var r in records) JsonText.RequireValidStrings(r.Value, r.Where);
        return records;
    }

    private static List<JsonRecord> ReadArray(byte[] bytes, int start, string path)
    {
        var reader = new Utf8JsonReader(bytes.AsSpan(start));
        JsonDocument doc;
        try { doc = JsonDocument.ParseValue(ref reader); }
        catch (JsonException e) { throw new UserError($"{path}:{(e.LineNumber ?? 0) + 1}: malformed JSON ({FirstSentence(e)})"); }
        // Anything but whitespace after the array makes the reader throw (one value per document), not return true.
        bool more;
        try { more = reader.Read(); }
        catch (JsonException) { more = true; }
        if (more)
            throw new UserError($"{path}:{LineAt(bytes, start + (int)reader.BytesConsumed)}: unexpected content after the JSON array");
        var list = new List<JsonRecord>();
        // Element line numbers are not kept by JsonDocument; the 1-based index is the useful address here.
        int index = 0;
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            index++;
            if (e.ValueKind != JsonValueKind.Object)
                throw new UserError($"{path}: element {index} of the array is {e.ValueKind}, expected an object");
            list.Add(new JsonRecord(e, path, index));
        }
        return list;
    }

    /// <summary>JSON Lines; null (with the first error) when some line is not a complete value.</summary>
    private static List<JsonRecord>? ReadLines(byte[] bytes, int start, string path, out UserError? error)
    {
        error = null;
        var list = new List<JsonRecord>();
        long line = 0;
        int pos = start;
        while (pos < bytes.Length)
        {
            int end = Array.IndexOf(bytes, (byte)'\n', pos);
            if (end < 0) end = bytes.Length;
            line++;
            // Refused outright rather than retried as a pretty-printed stream: no such file has a line this long.
            if (end - pos > JsonText.MaxLineBytes) throw JsonText.LineTooLong(path, line);
            var span = bytes.AsSpan(pos, end - pos);
            pos = end + 1;
            if (span.Trim(" \t\r"u8).IsEmpty) continue;
            try
            {
                using var doc = JsonDocument.Parse(span.ToArray());
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                {
                    error = new UserError($"{path}:{line}: expected a JSON object, got {doc.RootElement.ValueKind}");
                    return null;
                }
                list.Add(new JsonRecord(doc.RootElement.Clone(), path, line));
            }
            catch (JsonException e)
            {
                error = new UserError($"{path}:{line}: malformed JSON line ({FirstSentence(e)})");
                return null;
            }
        }
        return list;
    }

    /// <summary>Concatenated JSON objects with any layout; null when the file is not that either.</summary>
    private static List<JsonRecord>? ReadStream(byte[] bytes, int start, string path)
    {
        var list = new List<JsonRecord>();
        var reader = new Utf8JsonReader(bytes.AsSpan(start), new JsonReaderOptions { AllowMultipleValues = true });
        try
        {
            while (reader.Read())
            {
                long line = LineAt(bytes, start + (int)reader.TokenStartIndex);
                using var doc = JsonDocument.ParseValue(ref reader);
                if (doc.RootElement.ValueKind != JsonValueKind.Object) return null;
                list.Add(new JsonRecord(doc.RootElement.Clone(), path, line));
            }
        }
        catch (JsonException) { return null; }
        return list;
    }

    private static long LineAt(byte[] bytes, int offset) => bytes.AsSpan(0, offset).Count((byte)'\n') + 1;

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n';

    private static string FirstSentence(JsonException e)
    {
        string m = e.Message;
        int cut = m.IndexOf(". ", StringComparison.Ordinal);
        return cut > 0 ? m[..cut] : m.TrimEnd('.');
    }
}
