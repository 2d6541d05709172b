using System.Globalization;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Formats;

/// <summary>
/// Loading a llama GGUF copies q and k into the half-split layout; the mapped originals must not become resident
/// beside the copies (that doubled them in a 7B Q8_0 model's peak memory).
/// </summary>
public class GgufResidencyTests
{
    /// <summary>q and k of 1024 x 1024 Q8_0 (1.1 MB each) dwarf everything else a load touches in the mapping.</summary>
    private static readonly ModelConfig Wide = new()
    {
        Architecture = "llama", Layers = 1, DModel = 1024, Heads = 8, KvHeads = 8, HeadDim = 128, Ffn = 64, Vocab = 300,
        MaxContext = 64, RopeTheta = 10000f, RmsEps = 1e-5f,
    };

    [SkippableFact]
    public void LlamaQ8_0Load_LeavesTheMappedQAndKUntouched()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "per-mapping resident memory is read from /proc/self/smaps (Linux only)");
        using var tmp = new TempDir();
        string gguf = tmp.File("wide.gguf");
        using (var source = GgufModels.Random(tmp, Wide, seed: 3))
            GgufCheckpoint.Write(gguf, Wide, source.Weights, null, GgufTensorType.Q8_0, "wide");
        using var model = Transformer.Load(gguf);
        var layer = model.Weights.Layers[0];
        long qk = layer.Q.ByteLength + layer.K.ByteLength;
        Assert.True(layer.Q.Owner is byte[] && layer.K.Owner is byte[], "q and k are reordered copies");

        long resident = MappedResidentBytes(Path.GetFullPath(gguf));
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
