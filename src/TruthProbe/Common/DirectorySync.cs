using System.Runtime.InteropServices;

namespace TruthProbe.Common;

/// <summary>
/// Makes a folder's entries durable. A rename, or a new file, changes the folder, not the file: fsync on the file
/// leaves the new name in the page cache, and a power cut can bring back the old name or lose the new file. Only an
/// fsync of the folder itself writes it, and .NET has no API for that (it refuses to open a folder as a file).
/// </summary>
public static class DirectorySync
{
    private const int ReadOnly = 0, InvalidArgument = 22;

    /// <summary>
    /// Flushes <paramref name="folder"/>'s entries to disk on Linux and macOS; elsewhere nothing (NTFS journals a rename
    /// with its metadata). A filesystem that cannot sync a folder (EINVAL) is left as it is.
    /// </summary>
    public static void Flush(string folder)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        int fd = open(folder, ReadOnly);
        if (fd < 0) throw new IOException($"{folder}: cannot open the folder to flush its entries to disk (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (fsync(fd) != 0 && Marshal.GetLastPInvokeError() is var errno && errno != InvalidArgument)
                throw new IOException($"{folder}: flushing the folder's entries to disk failed (errno {errno})");
        }
        finally
        {
            close(fd);
        }
    }

#pragma warning disable SYSLIB1054, CA2101 // three plain libc calls; LibraryImport would need unsafe code in the project
    [DllImport("libc", SetLastError = true)]
    private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int fsync(int fd);

    [DllImport("libc")]
    private static extern int close(int fd);
#pragma warning restore SYSLIB1054, CA2101
}
