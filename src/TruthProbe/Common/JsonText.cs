using System.Text;
using System.Text.Json;

namespace TruthProbe.Common;

/// <summary>
/// Guards shared by the JSON Lines readers: a bound on a line's length (a line is parsed whole, and parsing costs
/// many times its size, so one 50 MB line took gigabytes), and a check that every string of a parsed value decodes
/// (System.Text.Json parses invalid UTF-8 and lone <c>\uD800</c> escapes, then throws when the string is read).
/// </summary>
public static class JsonText
{
    /// <summary>Longest line accepted, in bytes: far above any record of the evaluation and probing sets (a few KB).</summary>
    public const int MaxLineBytes = 1 << 20;

    public static UserError LineTooLong(string path, long lineNumber) =>
        new($"{path}:{lineNumber}: line is longer than {MaxLineBytes:N0} bytes; expected one JSON record per line");

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The lines of a UTF-8 text file (a BOM is skipped, a trailing CR dropped), refusing a line over
    /// <see cref="MaxLineBytes"/> before it is held whole, and invalid UTF-8 (which would otherwise become U+FFFD
    /// silently).</summary>
    public static IEnumerable<string> ReadLines(string path)
    {
        using var stream = File.OpenRead(path);
        var line = new MemoryStream();
        var buffer = new byte[16384];
        long lineNumber = 1;
        int read;
        bool first = true;
        while ((read = stream.Read(buffer)) > 0)
        {
            int start = first && buffer.AsSpan(0, read).StartsWith(Encoding.UTF8.Preamble) ? Encoding.UTF8.Preamble.Length : 0;
            first = false;
            for (int end; (end = Array.IndexOf(buffer, (byte)'\n', start, read - start)) >= 0; start = end + 1)
            {
                Append(line, buffer.AsSpan(start, end - start), path, lineNumber);
                yield return TakeLine(line, path, lineNumber++);
            }
            Append(line, buffer.AsSpan(start, read - start), path, lineNumber);
        }
        if (line.Length > 0) yield return TakeLine(line, path, lineNumber);
    }

    private static void Append(MemoryStream line, ReadOnlySpan<byte> part, string path, long lineNumber)
    {
        if (line.Length + part.Length > MaxLineBytes) throw LineTooLong(path, lineNumber);
        line.Write(part);
    }

    private static string TakeLine(MemoryStream line, string path, long lineNumber)
    {
        var bytes = line.GetBuffer().AsSpan(0, (int)line.Length);
        if (bytes.EndsWith((byte)'\r')) bytes = bytes[..^1];
        line.SetLength(0);
        try { return StrictUtf8.GetString(bytes); }
        catch (DecoderFallbackException)
        {
            throw new UserError($"{path}:{lineNumber}: invalid UTF-8; expected UTF-8 text");
        }
    }

    /// <summary>Throws a <see cref="UserError"/> at <paramref name="where"/> naming the first property name or
    /// string in <paramref name="value"/> that is not valid text.</summary>
    public static void RequireValidStrings(JsonElement value, string where, string field = "")
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in value.EnumerateObject())
                {
                    string name = Decode(() => p.Name, where, field);
                    RequireValidStrings(p.Value, where, field.Length == 0 ? name : $"{field}.{name}");
                }
                break;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in value.EnumerateArray()) RequireValidStrings(item, where, $"{field}[{i++}]");
                break;
            case JsonValueKind.String:
                Decode(value.GetString, where, field);
                break;
        }
    }

    /// <summary><paramref name="doc"/> once <see cref="RequireValidStrings"/> passes; disposed when it does not.</summary>
    public static JsonDocument WithValidStrings(JsonDocument doc, string where)
    {
        try { RequireValidStrings(doc.RootElement, where); }
        catch { doc.Dispose(); throw; }
        return doc;
    }

    private static string Decode(Func<string?> get, string where, string field)
    {
        try { return get() ?? ""; }
        catch (InvalidOperationException)
        {
            throw new UserError($"{where}: {(field.Length == 0 ? "a property name" : $"field '{field}'")} holds invalid UTF-8 or a lone UTF-16 surrogate (\\uD800-\\uDFFF); expected valid Unicode text");
        }
    }
}
