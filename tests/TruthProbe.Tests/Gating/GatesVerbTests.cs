using System.Text.Json;
using TruthProbe.Formats;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Gating;

public class GatesVerbTests
{
    [SkippableFact]
    public void VicunaContrast45_MatchesThePublishedGateRange()
    {
        // numpy on the paper's vicuna map (docs/design.md §8): min -0.4727, max 2.0750, 17 of 1024 negative (not clamped).
        using var tmp = new TempDir();
        string scores = SharedData.Path("truth_scores", "vicuna_halueval_292.npy");
        var r = CliRunner.Run("gates", "--scores", scores, "--mode", "contrast", "--lambda", "4.5", "--out", tmp.File("gates.npy"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("min -0.4727  max 2.0750", r.Stdout);
        Assert.Contains("negative 17 of 1024", r.Stdout);

        var gates = Npy.Read(tmp.File("gates.npy"));
        Assert.Equal([32, 32], gates.Shape);
        Assert.Equal("<f8", gates.DType);
        Assert.Equal(-0.4727, gates.Data.Min(), 4);
        Assert.Equal(2.0750, gates.Data.Max(), 4);
        Assert.Equal(17, gates.Data.Count(g => g < 0));

        using var sidecar = JsonDocument.Parse(File.ReadAllText(tmp.File("gates.json")));
        Assert.Equal("contrast", sidecar.RootElement.GetProperty("mode").GetString());
        Assert.Equal(4.5, sidecar.RootElement.GetProperty("lambda").GetDouble());
        Assert.Equal(TruthProbe.Common.Hashing.Sha256File(scores), sidecar.RootElement.GetProperty("source_sha256").GetString());
        ProvenanceAssert.In(tmp.File("gates.json"), [], [("scores", scores)]);
    }

    [Fact]
    public void RandomMode_RecordsTheSeed_AndReproducesByIt()
    {
        using var tmp = new TempDir();
        Npy.WriteFloat64(tmp.File("s.npy"), [0.6, 0.8, 1.0, 0.5], 2, 2);
        Assert.Equal(0, CliRunner.Run("gates", "--scores", tmp.File("s.npy"), "--mode", "random", "--gate-seed", "5", "--out", tmp.File("a.npy")).ExitCode);
        Assert.Equal(0, CliRunner.Run("gates", "--scores", tmp.File("s.npy"), "--mode", "random", "--gate-seed", "5", "--out", tmp.File("b.npy")).ExitCode);
        Assert.Equal(0, CliRunner.Run("gates", "--scores", tmp.File("s.npy"), "--mode", "random", "--gate-seed", "6", "--out", tmp.File("c.npy")).ExitCode);
        Assert.Equal(Npy.Read(tmp.File("a.npy")).Data, Npy.Read(tmp.File("b.npy")).Data);
        Assert.NotEqual(Npy.Read(tmp.File("a.npy")).Data, Npy.Read(tmp.File("c.npy")).Data);
        using var sidecar = JsonDocument.Parse(File.ReadAllText(tmp.File("a.json")));
        Assert.Equal(5UL, sidecar.RootElement.GetProperty("seed").GetUInt64());
        ProvenanceAssert.In(tmp.File("a.json"), [("gate", 5)], [("scores", tmp.File("s.npy"))]);
    }

    [Fact]
    public void BadInput_IsOneClearErrorAndWritesNothing()
    {
        using var tmp = new TempDir();
        Npy.WriteFloat64(tmp.File("s.npy"), [0.6, 0.8, 1.0, 0.5], 2, 2);
        Npy.WriteFloat64(tmp.File("nan.npy"), [0.6, double.NaN, 1.0, 0.5], 2, 2);
        File.WriteAllText(tmp.File("partial.csv"), "layer,head,accuracy\n0,0,0.5\n0,1,0.6\n1,0,0.7\n");

        void Fails(string expected, params string[] argv)
        {
            var r = CliRunner.Run(["gates", .. argv, "--out", tmp.File("g.npy")]);
            Assert.Equal(2, r.ExitCode);
            Assert.Contains(expected, r.Stderr);
            Assert.False(File.Exists(tmp.File("g.npy")));
        }

        Fails("--lambda must be a finite number, got 'four'", "--scores", tmp.File("s.npy"), "--mode", "contrast", "--lambda", "four");
        Fails("nan.npy: gating needs a score for every head; layer 0, head 1 is NaN", "--scores", tmp.File("nan.npy"), "--mode", "contrast", "--lambda", "1");
        Fails("partial.csv: gating needs a score for every head; layer 1, head 1 is NaN", "--scores", tmp.File("partial.csv"), "--mode", "raw");
        Fails("gate mode must be contrast, minmax, plain, raw, random or inverse, got 'clamp' (--mode)", "--scores", tmp.File("s.npy"), "--mode", "clamp");
        Fails("gate mode contrast needs lambda (the amplifying factor) (--lambda)", "--scores", tmp.File("s.npy"), "--mode", "contrast");
        Fails("--gate-seed must be a non-negative integer", "--scores", tmp.File("s.npy"), "--mode", "random", "--gate-seed", "-3");
        Fails("Option '--scores' is required", "--mode", "raw");
    }
}
