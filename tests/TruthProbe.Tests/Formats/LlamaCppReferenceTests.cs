namespace TruthProbe.Tests.Formats;

public class LlamaCppReferenceTests
{
    [Fact]
    public void NativeBackend_LoadsInTheTestProcess()
    {
        LlamaCppReference.EnsureLoaded();
        Assert.True(LLama.Native.NativeLibraryConfig.LLama.LibraryHasLoaded);
    }
}
