using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using TruthProbe.Common;

namespace TruthProbe.Formats;

/// <summary>
/// One tensor of a GGUF file. <see cref="Shape"/> is row-major, outermost first (as safetensors and PyTorch
/// write it); the file itself lists the same dimensions innermost first, see <see cref="Dims"/>.
/// <see cref="Offset"/> is absolute in the file.
/// </summary>
public sealed record GgufTensorInfo(string Name, GgufTensorType Type, long[] Shape, long Offset, long ByteLength)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public long[] Dims => Shape.Reverse().ToArray();
}

/// <summary>
/// A GGUF v3 file (v2 has the same layout and is read too), memory-mapped:
/// <code>
/// "GGUF" u32 version  u64 tensor_count  u64 kv_count
/// kv_count x (string key, u32 value_type, value)          strings are u64 length + UTF-8 bytes
/// tensor_count x (string name, u32 n_dims, u64 dims[n_dims] innermost first, u32 ggml_type, u64 offset)
/// padding to general.alignment (default 32), then the data; each offset is relative to the data start
/// </code>
/// Every count, length and offset is checked against the file before anything is handed out, so a truncated
/// or lying file fails here, naming the file and the tensor or key.
/// </summary>
public sealed unsafe class GgufFile : IDisposable
{
    public const uint Magic = 0x46554747; // "GGUF" read as a little-endian u32
    public const int DefaultAlignment = 32;
    private const int MaxDims = 4; // ggml tensors have at most four dimensions

    private readonly SafeFileHandle _handle;
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly Dictionary<string, GgufTensorInfo> _byName = new(StringComparer.Ordinal);
    private bool _disposed;

    public string Path { get; }
    public long FileLength { get; }
    public uint Version { get; }
    public int Alignment { get; }
    public long DataStart { get; }
    public GgufMetadata Metadata { get; }
    /// <summary>The tensors in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    private GgufFile(string path)
    {
        Path = path;
        if (!File.Exists(path)) throw new UserError($"{path}: file not found (expected a .gguf file)");
        FileLength = new FileInfo(path).Length;
        if (FileLength < 24) throw new UserError($"{path}: truncated GGUF file ({FileLength} bytes; the 24-byte header alone is longer)");

        _map = PositionalRead.OpenMapped(path, out _handle);
        _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;
        try
        {
            var header = new Cursor(_base, FileLength, path);
            uint magic = header.U32();
            if (magic != Magic)
                throw new UserError($"{path}: not a GGUF file (magic bytes are {Convert.ToHexString(new ReadOnlySpan<byte>(_base, 4))}, expected 47475546 \"GGUF\")");
            Version = header.U32();
            if (Version is not (2 or 3))
                throw new UserError($"{path}: GGUF version {Version} is not supported (expected 3; version 2 is also read)");
            long tensorCount = header.Count("tensor count", minBytesEach: 8 + 4 + 4 + 8);
            long kvCount = header.Count("metadata key count", minBytesEach: 8 + 4);

            Metadata = new GgufMetadata(path);
            for (long i = 0; i < kvCount; i++)
            {
                string key = header.String($"metadata key #{i}");
                var type = (GgufValueType)header.U32();
                Metadata.AddNew(key, header.Value(type, key));
            }

            long alignment = Metadata.IntegerOrNull("general.alignment") ?? DefaultAlignment;
            if (alignment <= 0 || alignment > 1 << 20 || (alignment & (alignment - 1)) != 0)
                throw new UserError($"{path}: general.alignment is {alignment}; it must be a power of two");
            Alignment = (int)alignment;

            var raw = new List<(string Name, GgufTensorType Type, long[] Shape, long Offset)>((int)tensorCount);
            for (long i = 0; i < tensorCount; i++) raw.Add(header.TensorInfo(i));
            DataStart = AlignUp(header.Position, Alignment);
            if (DataStart > FileLength && tensorCount > 0)
                throw new UserError($"{path}: truncated GGUF file: the data section would start at byte {DataStart} but the file has {FileLength}");

            var tensors = new List<GgufTensorInfo>(raw.Count);
            foreach (var (name, type, shape, offset) in raw)
                tensors.Add(Locate(name, type, shape, offset));
            Tensors = tensors;
            RequireTiling(tensors);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static GgufFile Open(string path) => new(path);

    private GgufTensorInfo Locate(string name, GgufTensorType type, long[] shape, long offset)
    {
        long innermost = shape.Length == 0 ? 1 : shape[^1];
        if (type == GgufTensorType.Q8_0 && innermost % GgufTensorTypes.Q8_0BlockValues != 0)
            throw new UserError($"{Path}: tensor '{name}' is Q8_0 with a row of {innermost} values; Q8_0 rows are whole blocks of {GgufTensorTypes.Q8_0BlockValues}");
        long bytes = type.ByteLength(shape);
        if (offset % Alignment != 0)
            throw new UserError($"{Path}: tensor '{name}' has data offset {offset}, which is not a multiple of the alignment {Alignment}");
        long dataLength = FileLength - DataStart;
        if (offset > dataLength || bytes > dataLength - offset)
            throw new UserError($"{Path}: tensor '{name}' ({type} [{string.Join(", ", shape)}], {bytes} bytes at data offset {offset}) ends past the end of the file, whose data section has {dataLength} bytes (file truncated or offsets wrong)");
        if (!_byName.TryAdd(name, null!))
            throw new UserError($"{Path}: tensor '{name}' appears twice");
        var info = new GgufTensorInfo(name, type, shape, DataStart + offset, bytes);
        _byName[name] = info;
        return info;
    }

    /// <summary>
    /// GGUF writers (llama.cpp, gguf-py, ours) lay tensors out back to back, each padded to the alignment. A tensor
    /// that overlaps another, a gap longer than the padding, or more than padding after the last means the header
    /// lies: F32 data relabelled F16 or BF16 (half the bytes), a changed alignment (a shifted data start), or an
    /// offset pointing into another tensor. Each would otherwise load as garbage.
    /// </summary>
    private void RequireTiling(List<GgufTensorInfo> tensors)
    {
        long expected = DataStart;
        GgufTensorInfo? previous = null;
        foreach (var t in tensors.OrderBy(t => t.Offset))
        {
            if (t.Offset != expected)
                throw new UserError(t.Offset < expected
                    ? $"{Path}: tensor '{t.Name}' (data offset {t.Offset - DataStart}) overlaps tensor '{previous!.Name}', which ends at data offset {expected - DataStart}; the header's offsets, types or shapes are wrong"
                    : $"{Path}: tensor '{t.Name}' starts at data offset {t.Offset - DataStart}, but the tensor before it{(previous == null ? "" : $" ('{previous.Name}')")} ends at {expected - DataStart} (padded to {Alignment}); the header's types, shapes or general.alignment do not match the data");
            expected = AlignUp(t.Offset + t.ByteLength, Alignment);
            previous = t;
        }
        // The file ends at the last tensor's end, or (as every writer pads) at that end padded to the alignment.
        if (previous != null && FileLength != expected && FileLength != previous.Offset + previous.ByteLength)
            throw new UserError($"{Path}: the file has {FileLength - (previous.Offset + previous.ByteLength)} bytes after the last tensor ('{previous.Name}'), not 0 or the padding to {Alignment}; the header's types, shapes or general.alignment do not match the data");
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public GgufTensorInfo Get(string name) =>
        _byName.TryGetValue(name, out var t) ? t : throw new UserError($"{Path}: no tensor named '{name}'");

    /// <summary>The tensor's bytes, straight from the mapping (no copy). Valid until the file is disposed.</summary>
    public ReadOnlySpan<byte> Bytes(GgufTensorInfo t)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (t.ByteLength > int.MaxValue) throw new NotSupportedException($"{Path}: tensor '{t.Name}' exceeds 2 GiB; use Pointer()");
        return new ReadOnlySpan<byte>(_base + t.Offset, (int)t.ByteLength);
    }

    public byte* Pointer(GgufTensorInfo t)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _base + t.Offset;
    }

    /// <summary>
    /// Copies the tensor's bytes [<paramref name="at"/>, at + destination.Length) with file reads, not through the
    /// mapping (see <see cref="PositionalRead"/>): for tensors the loader copies anyway.
    /// </summary>
    public void ReadBytes(GgufTensorInfo t, long at, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (at < 0 || at + destination.Length > t.ByteLength)
            throw new ArgumentOutOfRangeException(nameof(at), $"bytes {at}..{at + destination.Length} of tensor '{t.Name}', which has {t.ByteLength}");
        PositionalRead.Exactly(_handle, t.Offset + at, destination, Path);
    }

    /// <summary>A float32 copy of any tensor (F16 and BF16 widened, Q8_0 dequantised), read with
    /// <see cref="ReadBytes"/>: a copy leaves the mapping untouched.</summary>
    public float[] ReadSingles(GgufTensorInfo t)
    {
        if (t.ByteLength > int.MaxValue) throw new NotSupportedException($"{Path}: tensor '{t.Name}' exceeds 2 GiB; use Pointer()");
        var result = new float[t.ElementCount];
        if (t.Type == GgufTensorType.F32)
        {
            ReadBytes(t, 0, MemoryMarshal.AsBytes(result.AsSpan()));
            return result;
        }
        byte[] bytes = GC.AllocateUninitializedArray<byte>((int)t.ByteLength);
        ReadBytes(t, 0, bytes);
        switch (t.Type)
        {
            case GgufTensorType.F16: System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(bytes), result); break;
            case GgufTensorType.BF16:
                var bf = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (int i = 0; i < bf.Length; i++) result[i] = TensorDTypes.BFloat16ToSingle(bf[i]);
                break;
            case GgufTensorType.Q8_0: GgufTensorTypes.DequantizeQ8_0(bytes, result); break;
        }
        return result;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }

    internal static long AlignUp(long position, int alignment) => (position + alignment - 1) / alignment * alignment;

    /// <summary>Reads the header fields in order, each read checked against the end of the file.</summary>
    private sealed class Cursor(byte* start, long length, string path)
    {
        public long Position { get; private set; }

        private ReadOnlySpan<byte> Take(long count, string what)
        {
            if (count < 0 || count > length - Position)
                throw new UserError($"{path}: truncated GGUF header: {what} needs {count} bytes at byte {Position}, but the file has {length}");
            var span = new ReadOnlySpan<byte>(start + Position, checked((int)count));
            Position += count;
            return span;
        }

        public uint U32(string what = "a 32-bit field") => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what));
        public ulong U64(string what = "a 64-bit field") => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));

        /// <summary>A u64 count, which cannot exceed what the rest of the file could hold.</summary>
        public long Count(string what, int minBytesEach)
        {
            ulong n = U64(what);
            if (n > (ulong)((length - Position) / minBytesEach))
                throw new UserError($"{path}: GGUF {what} is {n}, more than the {length}-byte file can hold (corrupt or truncated)");
            return (long)n;
        }

        public string String(string what)
        {
            ulong n = U64(what);
            if (n > (ulong)(length - Position))
                throw new UserError($"{path}: truncated GGUF header: {what} claims a {n}-byte string at byte {Position}, but the file has {length}");
            return Encoding.UTF8.GetString(Take((long)n, what));
        }

        public GgufValue Value(GgufValueType type, string key)
        {
            if (type == GgufValueType.Array)
            {
                var elementType = (GgufValueType)U32(key);
                if (elementType == GgufValueType.Array)
                    throw new UserError($"{path}: GGUF metadata key '{key}' is an array of arrays, which GGUF readers do not support");
                long n = Count($"length of metadata array '{key}'", Math.Max(1, ScalarSize(elementType, key)));
                return new GgufValue(type, Array(elementType, (int)Math.Min(n, int.MaxValue), key), elementType);
            }
            return new GgufValue(type, Scalar(type, key));
        }

        private object Scalar(GgufValueType type, string key) => type switch
        {
            GgufValueType.UInt8 => Take(1, key)[0],
            GgufValueType.Int8 => (sbyte)Take(1, key)[0],
            GgufValueType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, key)),
            GgufValueType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(Take(2, key)),
            GgufValueType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, key)),
            GgufValueType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(Take(4, key)),
            GgufValueType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(Take(4, key)),
            GgufValueType.Bool => Take(1, key)[0] != 0,
            GgufValueType.String => String($"metadata string '{key}'"),
            GgufValueType.UInt64 => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, key)),
            GgufValueType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(Take(8, key)),
            GgufValueType.Float64 => BinaryPrimitives.ReadDoubleLittleEndian(Take(8, key)),
            _ => throw new UserError($"{path}: GGUF metadata key '{key}' has unknown value type {(uint)type} (expected 0-12)"),
        };

        private Array Array(GgufValueType elementType, int n, string key)
        {
            if (elementType == GgufValueType.String)
            {
                var strings = new string[n];
                for (int i = 0; i < n; i++) strings[i] = String($"element {i} of metadata array '{key}'");
                return strings;
            }
            // Fixed-width elements: one bounds check, then a bulk copy of the little-endian bytes.
            int size = ScalarSize(elementType, key);
            var bytes = Take((long)n * size, $"metadata array '{key}'");
            return elementType switch
            {
                GgufValueType.UInt8 => bytes.ToArray(),
                GgufValueType.Int8 => MemoryMarshal.Cast<byte, sbyte>(bytes).ToArray(),
                GgufValueType.UInt16 => MemoryMarshal.Cast<byte, ushort>(bytes).ToArray(),
                GgufValueType.Int16 => MemoryMarshal.Cast<byte, short>(bytes).ToArray(),
                GgufValueType.UInt32 => MemoryMarshal.Cast<byte, uint>(bytes).ToArray(),
                GgufValueType.Int32 => MemoryMarshal.Cast<byte, int>(bytes).ToArray(),
                GgufValueType.Float32 => MemoryMarshal.Cast<byte, float>(bytes).ToArray(),
                GgufValueType.Bool => bytes.ToArray().Select(b => b != 0).ToArray(),
                GgufValueType.UInt64 => MemoryMarshal.Cast<byte, ulong>(bytes).ToArray(),
                GgufValueType.Int64 => MemoryMarshal.Cast<byte, long>(bytes).ToArray(),
                _ => MemoryMarshal.Cast<byte, double>(bytes).ToArray(),
            };
        }

        private int ScalarSize(GgufValueType type, string key) => type switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
            GgufValueType.String => 8, // at least the length field
            _ => throw new UserError($"{path}: GGUF metadata array '{key}' has unknown element type {(uint)type} (expected 0-12)"),
        };

        public (string, GgufTensorType, long[], long) TensorInfo(long index)
        {
            string name = String($"name of tensor #{index}");
            uint nDims = U32($"dimension count of tensor '{name}'");
            if (nDims > MaxDims)
                throw new UserError($"{path}: tensor '{name}' claims {nDims} dimensions; GGUF tensors have at most {MaxDims}");
            var shape = new long[nDims];
            double elements = 1;
            for (int d = 0; d < nDims; d++)
            {
                ulong dim = U64($"dimensions of tensor '{name}'");
                shape[nDims - 1 - d] = (long)Math.Min(dim, long.MaxValue); // the file lists the innermost dimension first
                elements *= dim;
            }
            // Every supported type takes at least one byte per element (Q8_0: 34 per 32), so more elements than bytes cannot fit.
            if (elements > length)
                throw new UserError($"{path}: tensor '{name}' claims dimensions [{string.Join(", ", shape)}], more elements than the {length}-byte file can hold");
            uint rawType = U32($"type of tensor '{name}'");
            if (!GgufTensorTypes.IsSupported(rawType))
                throw new UserError($"{path}: tensor '{name}' is stored as {GgufTensorTypes.GgmlName(rawType)}, which truthprobe does not read (supported: F32, F16, BF16, Q8_0); re-export the model in one of those");
            ulong offset = U64($"data offset of tensor '{name}'");
            if (offset > (ulong)length)
                throw new UserError($"{path}: tensor '{name}' has data offset {offset}, past the end of the {length}-byte file");
            return (name, (GgufTensorType)rawType, shape, (long)offset);
        }
    }
}

/// <summary>A tensor to write: its bytes are produced by <see cref="WriteData"/> when the writer reaches it,
/// so large tensors can be streamed from another file without being held twice. <see cref="Shape"/> is
/// row-major (outermost first); the writer lists it innermost first as the format wants.</summary>
public sealed record GgufTensorToWrite(string Name, GgufTensorType Type, long[] Shape, Action<Stream> WriteData)
{
    public long ByteLength => Type.ByteLength(Shape);

    public static GgufTensorToWrite FromSingles(string name, long[] shape, float[] data) =>
        new(name, GgufTensorType.F32, shape, s => s.Write(MemoryMarshal.AsBytes(data.AsSpan())));
}

public static class GgufWriter
{
    /// <summary>
    /// Writes a GGUF v3 file atomically: header, metadata in the given order, tensor infos, then each tensor's
    /// data padded to the alignment (<c>general.alignment</c> when the metadata sets it, else 32), which is
    /// where llama.cpp expects every tensor to start. A tensor writer that produces the wrong number of bytes
    /// aborts the whole file.
    /// </summary>
    public static void Write(string path, GgufMetadata metadata, IReadOnlyList<GgufTensorToWrite> tensors)
    {
        int alignment = (int)(metadata.IntegerOrNull("general.alignment") ?? GgufFile.DefaultAlignment);
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0)
            throw new ArgumentException($"general.alignment must be a power of two, got {alignment}");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in tensors)
        {
            if (!names.Add(t.Name)) throw new ArgumentException($"duplicate tensor name '{t.Name}'");
            if (t.Shape.Length is 0 or > 4) throw new ArgumentException($"tensor '{t.Name}' has {t.Shape.Length} dimensions; GGUF takes 1 to 4");
            if (t.Type == GgufTensorType.Q8_0 && t.Shape[^1] % GgufTensorTypes.Q8_0BlockValues != 0)
                throw new ArgumentException($"tensor '{t.Name}': Q8_0 rows must be multiples of {GgufTensorTypes.Q8_0BlockValues}");
        }

        AtomicFile.Write(path, stream =>
        {
            var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            w.Write(GgufFile.Magic);
            w.Write(3u);
            w.Write((ulong)tensors.Count);
            w.Write((ulong)metadata.Count);
            foreach (var (key, value) in metadata)
            {
                WriteString(w, key);
                w.Write((uint)value.Type);
                WriteValue(w, value);
            }
            long offset = 0;
            foreach (var t in tensors)
            {
                WriteString(w, t.Name);
                w.Write((uint)t.Shape.Length);
                for (int d = t.Shape.Length - 1; d >= 0; d--) w.Write((ulong)t.Shape[d]);
                w.Write((uint)t.Type);
                w.Write((ulong)offset);
                offset = GgufFile.AlignUp(offset + t.ByteLength, alignment);
            }
            w.Flush();
            Pad(stream, alignment);
            foreach (var t in tensors)
            {
                long before = stream.Position;
                t.WriteData(stream);
                if (stream.Position - before != t.ByteLength)
                    throw new InvalidOperationException($"tensor '{t.Name}' wrote {stream.Position - before} bytes, expected {t.ByteLength}");
                Pad(stream, alignment);
            }
        });
    }

    /// <summary>Zero bytes up to the next multiple of the alignment; the data section starts aligned, so
    /// aligning absolute positions aligns the offsets relative to it too.</summary>
    private static void Pad(Stream stream, int alignment)
    {
        long padding = GgufFile.AlignUp(stream.Position, alignment) - stream.Position;
        for (long i = 0; i < padding; i++) stream.WriteByte(0);
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, GgufValue value)
    {
        if (value.Type != GgufValueType.Array)
        {
            WriteScalar(w, value.Type, value.Value);
            return;
        }
        var array = (Array)value.Value;
        w.Write((uint)value.ElementType);
        w.Write((ulong)array.Length);
        foreach (object element in array) WriteScalar(w, value.ElementType, element);
    }

    private static void WriteScalar(BinaryWriter w, GgufValueType type, object v)
    {
        switch (type)
        {
            case GgufValueType.UInt8: w.Write((byte)v); break;
            case GgufValueType.Int8: w.Write((sbyte)v); break;
            case GgufValueType.UInt16: w.Write((ushort)v); break;
            case GgufValueType.Int16: w.Write((short)v); break;
            case GgufValueType.UInt32: w.Write((uint)v); break;
            case GgufValueType.Int32: w.Write((int)v); break;
            case GgufValueType.Float32: w.Write((float)v); break;
            case GgufValueType.Bool: w.Write((bool)v); break;
            case GgufValueType.String: WriteString(w, (string)v); break;
            case GgufValueType.UInt64: w.Write((ulong)v); break;
            case GgufValueType.Int64: w.Write((long)v); break;
            case GgufValueType.Float64: w.Write((double)v); break;
            default: throw new ArgumentException($"cannot write a GGUF value of type {type}");
        }
    }
}
