using TruthProbe.Common;

namespace TruthProbe.Tests.Common;

public class AtomicFileTests
{
    [Fact]
    public void FailingWriter_LeavesNoFileAndNoTemporary()
    {
        using var tmp = new TempDir();
        string target = tmp.File("out.csv");
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(target, s =>
        {
            s.Write("half"u8);
            throw new InvalidOperationException("boom");
        }));
        Assert.Empty(Directory.GetFileSystemEntries(tmp.Path));
    }

    [Fact]
    public void FailingWriter_KeepsThePreviousVersionIntact()
    {
        using var tmp = new TempDir();
        string target = tmp.File("out.csv");
        AtomicFile.WriteAllText(target, "old");
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(target, _ => throw new InvalidOperationException()));
        Assert.Equal("old", File.ReadAllText(target));
        Assert.Single(Directory.GetFileSystemEntries(tmp.Path));
    }
}
