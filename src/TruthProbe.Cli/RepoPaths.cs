namespace TruthProbe.Cli;

/// <summary>
/// Where the repository and the read-only reference material (<c>../shared</c> beside the clone) are, for the
/// defaults of the command line, the tests and the benchmarks; the library itself takes every path it reads.
/// TRUTHPROBE_SHARED overrides the shared folder.
/// </summary>
public static class RepoPaths
{
    public static string? RepoRoot(string? start = null)
    {
        for (var dir = new DirectoryInfo(start ?? AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "truthprobe.slnx"))) return dir.FullName;
        return null;
    }

    /// <summary>The shared folder, or null when this checkout has none.</summary>
    public static string? Shared()
    {
        string? env = Environment.GetEnvironmentVariable("TRUTHPROBE_SHARED");
        if (!string.IsNullOrEmpty(env)) return Directory.Exists(env) ? Path.GetFullPath(env) : null;
        string? root = RepoRoot() ?? RepoRoot(Directory.GetCurrentDirectory());
        if (root == null) return null;
        string shared = Path.GetFullPath(Path.Combine(root, "..", "shared"));
        return Directory.Exists(shared) ? shared : null;
    }
}
