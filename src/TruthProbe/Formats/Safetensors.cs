using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text;
using TruthProbe.Common;

namespace TruthProbe.Formats;

/// <summary>One tensor of a safetensors file: where its bytes are (absolute file offset) and what they hold.</summary>
public sealed record SafetensorInfo(string Name, TensorDType DType, long[] Shape, long Offset, long ByteLength)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// A safetensors file, memory-mapped: an 8-byte little-endian header length, a JSON header mapping tensor
/// names to dtype, shape and data offsets (relative to the end of the header), then the raw row-major data.
/// The header is checked against the file before any tensor is handed out, so a lying or truncated file
/// fails here with its name rather than later as garbage numbers.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly MappedFile _file;

    public string Path { get; }
    public IReadOnlyDictionary<string, SafetensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public long FileLength { get; }

    private SafetensorsFile(string path)
    {
        Path = path;
        if (!File.Exists(path)) throw new UserError($"{path}: file not found (expected a .safetensors file)");
        FileLength = new FileInfo(path).Length;
        if (FileLength < 8) throw new UserError($"{path}: truncated safetensors file ({FileLength} bytes; the 8-byte header length is missing)");

        Span<byte> lengthBytes = stackalloc byte[8];
        using (var fs = File.OpenRead(path)) fs.ReadExactly(lengthBytes);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > (ulong)(FileLength - 8) || headerLength > 100_000_000)
            throw new UserError($"{path}: safetensors header claims {headerLength} bytes but the file has {FileLength - 8} after the length field (truncated or not a safetensors file)");

        byte[] headerBytes = new byte[headerLength];
        using (var fs = File.OpenRead(path)) { fs.Position = 8; fs.ReadExactly(headerBytes); }
        long dataStart = 8 + (long)headerLength;
        (Tensors, Metadata) = ParseHeader(headerBytes, dataStart, FileLength, path);

        _file = new MappedFile(path);
    }

    public static SafetensorsFile Open(string path) => new(path);

    private static (Dictionary<string, SafetensorInfo>, Dictionary<string, string>) ParseHeader(
        byte[] header, long dataStart, long fileLength, string path)
    {
        var tensors = new Dictionary<string, SafetensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e) { throw new UserError($"{path}: safetensors header is not valid JSON ({e.Message})"); }
        using (doc)
        {
            JsonFields.Object(doc.RootElement, $"{path}: the safetensors header");
            long dataLength = fileLength - dataStart;
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                string name = PropertyName(entry, path);
                if (name == "__metadata__")
                {
                    if (entry.Value.ValueKind == JsonValueKind.Object)
                        foreach (var m in entry.Value.EnumerateObject())
                            metadata[PropertyName(m, path)] = m.Value.ValueKind == JsonValueKind.String ? JsonFields.String(m.Value, $"{path}: __metadata__ '{m.Name}'") : m.Value.GetRawText();
                    continue;
                }
                // JSON allows repeated keys; the second would silently replace the first tensor.
                if (!tensors.TryAdd(name, ParseTensor(name, entry.Value, dataStart, dataLength, path)))
                    throw new UserError($"{path}: tensor '{name}' appears twice in the header");
            }
            CheckTiling(tensors.Values, dataStart, dataLength, path);
        }
        return (tensors, metadata);
    }

    private static string PropertyName(JsonProperty p, string path)
    {
        try { return p.Name; }
        catch (InvalidOperationException) { throw new UserError($"{path}: a name in the safetensors header is not valid UTF-8/UTF-16 text"); }
    }

    private static SafetensorInfo ParseTensor(string name, JsonElement e, long dataStart, long dataLength, string path)
    {
        string where = $"{path}: tensor '{name}'";
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("dtype", out var dt) || !e.TryGetProperty("shape", out var sh)
            || !e.TryGetProperty("data_offsets", out var off))
            throw new UserError($"{where} needs dtype, shape and data_offsets [begin, end] in the header");
        var dtype = TensorDTypes.ParseSafetensors(JsonFields.String(dt, $"{where} field 'dtype'"), path);
        JsonFields.Array(sh, $"{where} field 'shape'");
        var shape = new long[sh.GetArrayLength()];
        long expected = dtype.Size();
        for (int i = 0; i < shape.Length; i++)
        {
            shape[i] = JsonFields.Int64(sh[i], $"{where} field 'shape'", 0, long.MaxValue);
            // Saturates just past the data section (any such size is wrong already), so no multiply can overflow.
            expected = shape[i] == 0 ? 0 : expected <= (dataLength + 1) / shape[i] ? expected * shape[i] : dataLength + 1;
        }
        if (JsonFields.Array(off, $"{where} field 'data_offsets'").GetArrayLength() != 2)
            throw new UserError($"{where} field 'data_offsets' must be [begin, end], got {JsonFields.Echo(off)}");
        long begin = JsonFields.Int64(off[0], $"{where} field 'data_offsets' begin", 0, long.MaxValue);
        long end = JsonFields.Int64(off[1], $"{where} field 'data_offsets' end", begin, long.MaxValue);
        if (end > dataLength)
            throw new UserError($"{where} ends at byte {end} of the data section, which has only {dataLength} bytes (file truncated?)");
        if (end - begin != expected)
            throw new UserError(expected > dataLength
                ? $"{where} has shape [{string.Join(", ", shape)}] of {dtype}, more bytes than the whole data section ({dataLength})"
                : $"{where} has shape [{string.Join(", ", shape)}] of {dtype} = {expected} bytes, but its data_offsets span {end - begin} bytes");
        return new SafetensorInfo(name, dtype, shape, dataStart + begin, expected);
    }

    /// <summary>
    /// As the reference implementation requires, the tensors tile the data section exactly: no gaps, no
    /// overlaps, nothing after the last. A header length off by one byte or shifted offsets break the tiling,
    /// where they would otherwise load every tensor from the wrong bytes.
    /// </summary>
    private static void CheckTiling(IEnumerable<SafetensorInfo> tensors, long dataStart, long dataLength, string path)
    {
        long covered = 0;
        string previous = "the start of the data section";
        foreach (var t in tensors.OrderBy(t => t.Offset).ThenBy(t => t.ByteLength))
        {
            long begin = t.Offset - dataStart;
            if (begin != covered)
                throw new UserError(begin < covered
                    ? $"{path}: tensor '{t.Name}' starts at byte {begin} of the data section, inside {previous} (which ends at {covered}); tensors must not overlap"
                    : $"{path}: tensor '{t.Name}' starts at byte {begin} of the data section, but {previous} ends at {covered}; the data_offsets leave a gap (header length or offsets wrong)");
            covered = begin + t.ByteLength;
            previous = $"tensor '{t.Name}'";
        }
        if (covered != dataLength)
            throw new UserError($"{path}: the tensors cover {covered} bytes of the data section but it holds {dataLength} (header length or offsets wrong, or bytes appended)");
    }

    public SafetensorInfo Get(string name) =>
        Tensors.TryGetValue(name, out var t) ? t : throw new UserError($"{Path}: no tensor named '{name}'");

    /// <summary>The tensor's bytes, straight from the mapping (no copy). Valid until the file is disposed.</summary>
    public ReadOnlySpan<byte> Bytes(SafetensorInfo t)
    {
        if (t.ByteLength > int.MaxValue) throw new NotSupportedException($"{Path}: tensor '{t.Name}' exceeds 2 GiB; use Pointer()");
        return new ReadOnlySpan<byte>(_file.At(t.Offset, t.ByteLength), (int)t.ByteLength);
    }

    public byte* Pointer(SafetensorInfo t) => _file.At(t.Offset, t.ByteLength);

    /// <summary>A float32 copy of a floating-point tensor (F32, F16 or BF16 widened; F64 narrowed).</summary>
    public float[] ReadSingles(SafetensorInfo t)
    {
        var bytes = Bytes(t);
        var result = new float[t.ElementCount];
        switch (t.DType)
        {
            case TensorDType.F32: MemoryMarshal.Cast<byte, float>(bytes).CopyTo(result); break;
            case TensorDType.F16: System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(bytes), result); break;
            case TensorDType.BF16:
                var bf = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (int i = 0; i < bf.Length; i++) result[i] = TensorDTypes.BFloat16ToSingle(bf[i]);
                break;
            case TensorDType.F64:
                var d = MemoryMarshal.Cast<byte, double>(bytes);
                for (int i = 0; i < d.Length; i++) result[i] = (float)d[i];
                break;
            default: throw new UserError($"{Path}: tensor '{t.Name}' is {t.DType}, expected a floating-point tensor");
        }
        return result;
    }

    public void Dispose() => _file.Dispose();
}

/// <summary>A tensor to write: its bytes are produced by <see cref="WriteData"/> when the writer reaches it,
/// so large tensors can be streamed from another file without being held twice.</summary>
public sealed record SafetensorToWrite(string Name, TensorDType DType, long[] Shape, Action<Stream> WriteData)
{
    public long ByteLength => Shape.Aggregate(1L, (a, b) => a * b) * DType.Size();

    public static SafetensorToWrite FromSingles(string name, long[] shape, float[] data) =>
        new(name, TensorDType.F32, shape, s => s.Write(MemoryMarshal.AsBytes(data.AsSpan())));

    public static SafetensorToWrite FromBytes(string name, TensorDType dtype, long[] shape, ReadOnlyMemory<byte> data) =>
        new(name, dtype, shape, s => s.Write(data.Span));
}

public static class SafetensorsWriter
{
    /// <summary>
    /// Writes tensors in the given order, header padded with spaces to an 8-byte boundary as the reference
    /// implementation does. Each tensor's writer must produce exactly its byte length, or nothing is written.
    /// </summary>
    public static void Write(string path, IReadOnlyList<SafetensorToWrite> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        byte[] header = Header(tensors, metadata);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            foreach (var t in tensors)
            {
                long before = stream.Position;
                t.WriteData(stream);
                if (stream.Position - before != t.ByteLength)
                    throw new InvalidOperationException($"tensor '{t.Name}' wrote {stream.Position - before} bytes, expected {t.ByteLength}");
            }
        });
    }

    private static byte[] Header(IReadOnlyList<SafetensorToWrite> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var t in tensors)
            {
                if (!seen.Add(t.Name)) throw new ArgumentException($"duplicate tensor name '{t.Name}'");
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", t.DType.SafetensorsName());
                json.WriteStartArray("shape");
                foreach (long d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.ByteLength);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.ByteLength;
            }
            json.WriteEndObject();
        }
        int padded = (int)((buffer.Length + 7) / 8 * 8);
        while (buffer.Length < padded) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }
}
