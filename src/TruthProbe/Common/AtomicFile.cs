namespace TruthProbe.Common;

/// <summary>
/// Writes files so that a reader never sees half of one: the content goes to a temporary file in the
/// same folder, which is renamed over the target only once it is complete.
/// </summary>
public static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: false);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch (IOException e) when (IsDiskFull(e))
        {
            TryDelete(tmp);
            throw DiskFull(full, e);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    /// <summary>ENOSPC or EDQUOT (Linux/macOS errno, which .NET puts in HResult), or Windows' disk-full codes.</summary>
    public static bool IsDiskFull(IOException e) => (e.HResult & 0xFFFF) is 28 or 122 or 69 or 112 or 39;

    /// <summary>The one error a full disk gives, naming the file being written; the run's earlier outputs are complete files.</summary>
    public static UserError DiskFull(string path, IOException e) =>
        new($"{path}: the disk is full ({e.Message.TrimEnd('.')}); free space there or write the output elsewhere, then rerun", e);

    public static void WriteAllText(string path, string text) =>
        Write(path, s => { var bytes = new System.Text.UTF8Encoding(false).GetBytes(text); s.Write(bytes); });

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        byte[] copy = bytes.ToArray();
        Write(path, s => s.Write(copy));
    }

    /// <summary>Deletes a file that may be gone already or not ours to delete: a best-effort cleanup.</summary>
    internal static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
