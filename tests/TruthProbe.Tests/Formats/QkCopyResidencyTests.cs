using System.Globalization;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Formats;

/// <summary>
/// Loading a llama GGUF or a llama2.c checkpoint copies q and k into the half-split layout; the mapped originals
/// must not become resident beside the copies (that doubled them in a 7B Q8_0 model's peak memory).
/// </summary>
public class QkCopyResidencyTests
{
    /// <summary>q and k of 1024 x 1024 (1.1 MB each in Q8_0, 4 MB in f32) dwarf everything else a load touches in the mapping.</summary>
    private static readonly ModelConfig Wide = new()
    {
        Architecture = "llama", Layers = 1, DModel = 1024, Heads = 8, KvHeads = 8, HeadDim = 128, Ffn = 64, Vocab = 300,
        MaxContext = 64, RopeTheta = 10000f, RmsEps = 1e-5f,
    };

    [SkippableFact]
    public void LlamaQ8_0GgufLoad_LeavesTheMappedQAndKUntouched()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), SmapsOnly);
        using var tmp = new TempDir();
        string gguf = tmp.File("wide.gguf");
        using (var source = GgufModels.Random(tmp, Wide, seed: 3))
            GgufCheckpoint.Write(gguf, Wide, source.Weights, null, GgufTensorType.Q8_0, "wide");
        AssertQAndKAreCopiesOnly(gguf);
    }

    [SkippableFact]
    public void Llama2cLoad_LeavesTheMappedQAndKUntouched()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), SmapsOnly);
        using var tmp = new TempDir();
        // Header (dim, hidden, layers, heads, kv_heads, vocab (positive: tied), seq_len), then the float32 tensors;
        // zeros, since only where the bytes are read from matters here.
        int[] header = [Wide.DModel, Wide.Ffn, 1, Wide.Heads, Wide.KvHeads, Wide.Vocab, Wide.MaxContext];
        long floats = (long)Wide.Vocab * Wide.DModel + 2L * Wide.DModel + 4L * Wide.DModel * Wide.DModel + 3L * Wide.Ffn * Wide.DModel
            + Wide.DModel + (long)Wide.MaxContext * Wide.HeadDim;
        var bytes = new byte[header.Length * 4 + floats * 4];
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(header.AsSpan()).CopyTo(bytes);
        string bin = tmp.File("wide.bin");
        File.WriteAllBytes(bin, bytes);
        AssertQAndKAreCopiesOnly(bin);
    }

    private const string SmapsOnly = "per-mapping resident memory is read from /proc/self/smaps (Linux only)";

    private static void AssertQAndKAreCopiesOnly(string path)
    {
        DropFromPageCache(path);
        using var model = Transformer.Load(path);
        var layer = model.Weights.Layers[0];
        long qk = layer.Q.ByteLength + layer.K.ByteLength;
        Assert.True(layer.Q.Owner is byte[] && layer.K.Owner is byte[], "q and k are reordered copies");
        long resident = MappedResidentBytes(Path.GetFullPath(path));
        Assert.True(resident < qk / 4, $"{resident} bytes of the mapping are resident after the load; q and k hold {qk}, which only the copies should");
    }

    [Fact]
    public void ReadBytes_EqualsTheMappedBytes_AtAnyOffset_AndRefusesBytesOutsideTheTensor()
    {
        using var tmp = new TempDir();
        using (var source = GgufModels.Random(tmp, GgufModels.Llama, seed: 5))
            GgufCheckpoint.Write(tmp.File("m.gguf"), source.Config, source.Weights, null, GgufTensorType.Q8_0, "m");
        using var file = GgufFile.Open(tmp.File("m.gguf"));
        foreach (var t in file.Tensors)
        {
            int at = (int)(t.ByteLength / 3), length = (int)(t.ByteLength - at);
            var read = new byte[length];
            file.ReadBytes(t, at, read);
            Assert.Equal(file.Bytes(t)[at..].ToArray(), read);
        }
        var first = file.Tensors[0];
        Assert.Throws<ArgumentOutOfRangeException>(() => file.ReadBytes(first, 1, new byte[first.ByteLength]));
    }

    /// <summary>
    /// Pages the kernel cached while the test wrote the file can be large folios (2 MB on Linux 6.18), and one touch
    /// maps a whole folio; read back from disk, a touch maps 64 KB, as for a model file opened cold.
    /// </summary>
    private static void DropFromPageCache(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.Flush(flushToDisk: true);
        const int DontNeed = 4;
        Assert.Equal(0, PosixFadvise((int)file.SafeFileHandle.DangerousGetHandle(), 0, 0, DontNeed));
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "posix_fadvise")]
    private static extern int PosixFadvise(int fd, long offset, long length, int advice);

    /// <summary>The Rss of every mapping of <paramref name="path"/> in this process.</summary>
    private static long MappedResidentBytes(string path)
    {
        long kb = 0;
        int mappings = 0;
        bool inside = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            // A mapping's header is "start-end perms offset dev inode [path]"; its fields follow as "Name: value kB".
            string[] fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (fields[0].EndsWith(':'))
            {
                if (inside && fields[0] == "Rss:") kb += long.Parse(fields[1], CultureInfo.InvariantCulture);
                continue;
            }
            inside = fields.Length == 6 && fields[5].Trim() == path;
            if (inside) mappings++;
        }
        Assert.True(mappings > 0, $"{path} is not mapped in this process");
        return kb * 1024;
    }
}
