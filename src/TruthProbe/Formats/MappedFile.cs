using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;
using TruthProbe.Common;

namespace TruthProbe.Formats;

/// <summary>A whole file mapped read-only into memory; pages are read from disk only when touched.</summary>
public sealed unsafe class MappedFile : IDisposable
{
    private readonly SafeFileHandle? _handle;
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private bool _disposed;

    public string Path { get; }
    public long Length { get; }
    private readonly byte* _base;

    public MappedFile(string path)
    {
        Path = path;
        if (!File.Exists(path)) throw new UserError($"{path}: file not found");
        Length = new FileInfo(path).Length;
        if (Length == 0) return;
        _map = PositionalRead.OpenMapped(path, out _handle);
        _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;
    }

    /// <summary>Pointer to byte <paramref name="offset"/>, after checking that <paramref name="length"/> bytes follow it.</summary>
    public byte* At(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (offset < 0 || length < 0 || offset + length > Length)
            throw new UserError($"{Path}: needs bytes {offset}..{offset + length} but the file has {Length} (truncated?)");
        return _base + offset;
    }

    /// <summary>Copies bytes [offset, offset + destination.Length) with file reads, not through the mapping (see <see cref="PositionalRead"/>).</summary>
    public void ReadBytes(long offset, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (offset < 0 || offset + destination.Length > Length)
            throw new UserError($"{Path}: needs bytes {offset}..{offset + destination.Length} but the file has {Length} (truncated?)");
        PositionalRead.Exactly(_handle!, offset, destination, Path);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_view != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }
}
