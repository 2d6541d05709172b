using TruthProbe.Cli;
using TruthProbe.Common;

namespace TruthProbe.Tests.Common;

/// <summary>
/// Paths into ../shared for tests. A test that needs the real models or data calls <see cref="Path"/>,
/// which skips the test with a clear message when the shared folder (or that file) is absent.
/// </summary>
public static class SharedData
{
    public static string Path(params string[] parts)
    {
        string? root = RepoPaths.Shared();
        Skip.If(root == null, "../shared is not present beside this checkout: test needs the real reference models/data");
        string path = System.IO.Path.Combine([root!, .. parts]);
        Skip.IfNot(File.Exists(path) || Directory.Exists(path), $"../shared has no {string.Join('/', parts)}");
        return path;
    }
}
