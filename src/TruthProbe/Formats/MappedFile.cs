using System.IO.MemoryMappedFiles;
using TruthProbe.Common;

namespace TruthProbe.Formats;

/// <summary>A whole file mapped read-only into memory; pages are read from disk only when touched.</summary>
public sealed unsafe class MappedFile : IDisposable
{
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
        _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
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
