using TruthProbe.Common;

namespace TruthProbe.Tests.Common;

public class DirectorySyncTests
{
    [Fact]
    public void Flush_AFolderAfterARename_Succeeds_AndAMissingFolderIsAnIOErrorNamingIt()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.File("a.partial"), "x");
        File.Move(tmp.File("a.partial"), tmp.File("a"));
        DirectorySync.Flush(tmp.Path);
        Assert.Equal("x", File.ReadAllText(tmp.File("a")));
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;   // elsewhere Flush does nothing by design
        string missing = tmp.File("gone");
        var e = Assert.Throws<IOException>(() => DirectorySync.Flush(missing));
        Assert.Contains(missing, e.Message);
        Assert.Contains("errno 2", e.Message);   // ENOENT: open itself failed, so the call really reached the OS
    }
}
