using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;

namespace TruthProbe.Tests.Fuzz;

/// <summary>Generators of malformed variants, shared by the formats: truncations, integer extremes, JSON type confusions, byte flips.</summary>
public static class Mutations
{
    /// <summary>The file cut at each offset (0 and the full length excluded: the empty file is its own variant).</summary>
    public static IEnumerable<FuzzVariant> Truncations(byte[] seed, IEnumerable<long> offsets, string what = "truncated") =>
        offsets.Where(o => o > 0 && o < seed.Length).Distinct().Order()
            .Select(o => new FuzzVariant($"{what} at {o}", seed[..(int)o]))
            .Prepend(new FuzzVariant("empty file", []));

    /// <summary>Values a count, length, id or offset field should refuse or survive: zero, one, the sign bits, the maxima.</summary>
    public static readonly ulong[] Extremes = [0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, ulong.MaxValue];

    /// <summary>The little-endian integer field of <paramref name="size"/> bytes at <paramref name="offset"/> set to each extreme it can hold and differs from.</summary>
    public static IEnumerable<FuzzVariant> IntegerExtremes(byte[] seed, long offset, int size, string field, bool mayPass = false)
    {
        ulong current = Read(seed, offset, size);
        foreach (ulong value in Extremes.Select(v => size == 8 ? v : v & (size == 4 ? 0xFFFF_FFFFUL : size == 2 ? 0xFFFFUL : 0xFFUL)).Distinct())
        {
            if (value == current) continue;
            yield return new FuzzVariant($"{field} = {value}", WithInteger(seed, offset, size, value), mayPass);
        }
    }

    public static ulong Read(byte[] bytes, long offset, int size) => size switch
    {
        1 => bytes[offset],
        2 => BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan((int)offset)),
        4 => BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)offset)),
        _ => BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan((int)offset)),
    };

    public static byte[] WithInteger(byte[] seed, long offset, int size, ulong value)
    {
        byte[] copy = (byte[])seed.Clone();
        for (int i = 0; i < size; i++) copy[offset + i] = (byte)(value >> (8 * i));
        return copy;
    }

    public static byte[] WithFloat(byte[] seed, long offset, float value) =>
        WithInteger(seed, offset, 4, BitConverter.SingleToUInt32Bits(value));

    /// <summary>
    /// Seeded single-byte flips anywhere in the file: each may still be a valid file (a changed weight), so they
    /// are only checked for crashes, hangs and memory.
    /// </summary>
    public static IEnumerable<FuzzVariant> ByteFlips(byte[] seed, int count, ulong rngSeed, int from = 0)
    {
        var random = new Random((int)rngSeed);
        for (int i = 0; i < count && seed.Length > from; i++)
        {
            int at = random.Next(from, seed.Length);
            byte[] copy = (byte[])seed.Clone();
            copy[at] ^= (byte)(1 << random.Next(8));
            yield return new FuzzVariant($"bit flip at {at}", copy, MayPass: true);
        }
    }

    // Stand-ins for what System.Text.Json refuses to write; swapped for the raw bytes after serialising.
    private const string LoneSurrogate = "@@LONE-SURROGATE@@", InvalidUtf8 = "@@INVALID-UTF8@@";

    /// <summary>
    /// Every value of a JSON document replaced by values of the wrong type (must fail), by extremes, null, or
    /// removed (may be valid: an optional field, a number in range). Objects of more than 32 keys and arrays of more
    /// than 6 items have only their first three entries and last mutated. Keys in <paramref name="ignored"/> (the readers do not read them) may take anything;
    /// variants named in <paramref name="valid"/> ("eos_token_id = []") are valid files of the format.
    /// </summary>
    public static IEnumerable<FuzzVariant> Json(JsonNode root, ISet<string>? ignored = null, Func<string, byte[]>? wrap = null, ISet<string>? valid = null)
    {
        wrap ??= Encoding.UTF8.GetBytes;
        foreach (var (steps, node) in Walk(root, []))
        {
            string path = string.Concat(steps.Select((s, i) => s is int n ? $"[{n}]" : i == 0 ? $"{s}" : $".{s}"));
            bool free = ignored != null && steps.OfType<string>().Any(ignored.Contains);
            foreach (var (label, replacement, mayPass) in Replacements(node))
                yield return new FuzzVariant($"{path} = {label}", Serialise(Replace(root, steps, replacement), wrap),
                    mayPass || free || valid?.Contains($"{path} = {label}") == true);
            if (steps.Count > 0 && steps[^1] is string)
                yield return new FuzzVariant($"{path} removed", Serialise(Replace(root, steps, null, remove: true), wrap), MayPass: true);
        }
    }

    /// <summary>The JSON text with the stand-ins for a lone surrogate (as a \uD800 escape) and invalid UTF-8 (raw 0xC3 0x28) substituted.</summary>
    private static byte[] Serialise(JsonNode? root, Func<string, byte[]> wrap)
    {
        string text = root?.ToJsonString() ?? "null";
        text = text.Replace(LoneSurrogate, "\\ud800");
        byte[] bytes = wrap(text);
        byte[] marker = Encoding.UTF8.GetBytes(InvalidUtf8);
        int at = bytes.AsSpan().IndexOf(marker);
        return at < 0 ? bytes : [.. bytes[..at], 0xC3, 0x28, .. bytes[(at + marker.Length)..]];
    }

    /// <summary>Every value with its path: object keys as strings, array indices as ints.</summary>
    private static IEnumerable<(List<object> Steps, JsonNode? Node)> Walk(JsonNode? node, List<object> steps)
    {
        yield return (steps, node);
        var children = node switch
        {
            JsonObject obj => Sample(obj.Select(e => ((object)e.Key, e.Value)).ToList(), 32),
            JsonArray array => Sample(array.Select((child, i) => ((object)i, child)).ToList(), 6),
            _ => [],
        };
        foreach (var (step, child) in children)
            foreach (var inner in Walk(child, [.. steps, step]))
                yield return inner;
    }

    /// <summary>All of a small object or array; of a large one (a vocabulary, a tensor list) the first three and the last.</summary>
    private static IEnumerable<T> Sample<T>(List<T> items, int all) => items.Count <= all ? items : items.Take(3).Append(items[^1]);

    private static IEnumerable<(string Label, JsonNode? Value, bool MayPass)> Replacements(JsonNode? node)
    {
        var kind = node?.GetValueKind();
        bool isInteger = kind == System.Text.Json.JsonValueKind.Number && double.IsInteger(node!.GetValue<double>());
        if (kind != System.Text.Json.JsonValueKind.Null) yield return ("null", null, true);
        switch (kind)
        {
            case System.Text.Json.JsonValueKind.Number:
                yield return ("\"7\"", JsonValue.Create("7"), false);
                yield return ("true", JsonValue.Create(true), false);
                yield return ("[]", new JsonArray(), false);
                if (isInteger)
                {
                    yield return ("1.5", JsonValue.Create(1.5), false);
                    yield return ("-1", JsonValue.Create(-1), true);
                    yield return ("0", JsonValue.Create(0), true);
                    yield return ("2147483648", JsonValue.Create(2147483648L), true);
                    yield return ("1e10", JsonValue.Create(1e10), true);
                    yield return ("-9223372036854775808", JsonValue.Create(long.MinValue), true);
                }
                else
                {
                    yield return ("-1.0", JsonValue.Create(-1.0), true);
                    yield return ("0.0", JsonValue.Create(0.0), true);
                    yield return ("1e300", JsonValue.Create(1e300), true);
                }
                break;
            case System.Text.Json.JsonValueKind.String:
                yield return ("5", JsonValue.Create(5), false);
                yield return ("[]", new JsonArray(), false);
                yield return ("lone surrogate", JsonValue.Create(node!.GetValue<string>() + LoneSurrogate), false);
                yield return ("invalid UTF-8", JsonValue.Create(node!.GetValue<string>() + InvalidUtf8), false);
                yield return ("\"\"", JsonValue.Create(""), true);
                yield return ("100k chars", JsonValue.Create(new string('x', 100_000)), true);
                break;
            case System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False:
                yield return ("1", JsonValue.Create(1), false);
                yield return ("\"true\"", JsonValue.Create("true"), false);
                break;
            case System.Text.Json.JsonValueKind.Array:
                yield return ("{}", new JsonObject(), false);
                yield return ("\"x\"", JsonValue.Create("x"), false);
                yield return ("[]", new JsonArray(), true);
                break;
            case System.Text.Json.JsonValueKind.Object:
                yield return ("[]", new JsonArray(), false);
                yield return ("\"x\"", JsonValue.Create("x"), false);
                yield return ("{}", new JsonObject(), true);
                break;
        }
    }

    /// <summary>A copy of the document with the value at <paramref name="steps"/> replaced (or removed).</summary>
    private static JsonNode? Replace(JsonNode root, List<object> steps, JsonNode? value, bool remove = false)
    {
        if (steps.Count == 0) return value;
        var copy = root.DeepClone();
        JsonNode? parent = copy;
        foreach (object step in steps[..^1]) parent = step is int i ? parent![i] : parent![(string)step];
        if (steps[^1] is int index) ((JsonArray)parent!)[index] = value;
        else if (remove) ((JsonObject)parent!).Remove((string)steps[^1]);
        else ((JsonObject)parent!)[(string)steps[^1]] = value;
        return copy;
    }
}
