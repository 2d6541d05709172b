using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;
using TruthProbe.Common;

namespace TruthProbe.Formats;

/// <summary>
/// Reads at a file offset with ordinary reads (pread), for copies of a mapped file's bytes that must not go
/// through the mapping: mapped pages, once touched, count in the process's resident memory until the mapping goes,
/// whereas pages read this way stay in the shared page cache only.
/// </summary>
internal static class PositionalRead
{
    /// <summary>The file opened for reading and mapped read-only through that one handle (disposing the map closes
    /// it), so that reads at an offset and the mapping see the same file.</summary>
    public static MemoryMappedFile OpenMapped(string path, out SafeFileHandle handle)
    {
        handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try { return MemoryMappedFile.CreateFromFile(handle, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false); }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public static void Exactly(SafeFileHandle handle, long offset, Span<byte> destination, string path)
    {
        while (!destination.IsEmpty)
        {
            int read = RandomAccess.Read(handle, destination, offset);
            if (read == 0) throw new UserError($"{path}: the file ended at byte {offset} while reading it (truncated while open?)");
            destination = destination[read..];
            offset += read;
        }
    }
}
