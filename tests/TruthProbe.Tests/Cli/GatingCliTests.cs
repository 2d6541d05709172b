using TruthProbe.Formats;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Cli;

/// <summary>The gating options reach every verb that runs a model, not only eval and patch.</summary>
public class GatingCliTests
{
    private static float[] Tensor(string file, string name)
    {
        using var f = SafetensorsFile.Open(file);
        return f.ReadSingles(f.Get(name));
    }

    [SkippableFact]
    public void Trace_WithGateZeroOnOneHead_ZeroesExactlyThatHeadsZ_AndOnesChangeNothing()
    {
        string bin = SharedData.Path("models", "stories260K", "stories260K.bin");
        using var tmp = new TempDir();
        // stories260K: 5 layers x 8 query heads, head size 8.
        var gates = Enumerable.Repeat(1.0, 5 * 8).ToArray();
        Npy.WriteFloat64(tmp.File("ones.npy"), gates, 5, 8);
        gates[2 * 8 + 3] = 0;
        Npy.WriteFloat64(tmp.File("ablate.npy"), gates, 5, 8);
        string[] common = ["--token-ids", "1,403,407,261,378", "--hooks", "blocks.2.attn.hook_z,logits"];

        Assert.Equal(0, CliRunner.Run(["trace", bin, .. common, "--out", tmp.File("plain.safetensors")]).ExitCode);
        Assert.Equal(0, CliRunner.Run(["trace", bin, .. common, "--gates", tmp.File("ones.npy"), "--out", tmp.File("ones.safetensors")]).ExitCode);
        var ablated = CliRunner.Run(["trace", bin, .. common, "--gates", tmp.File("ablate.npy"), "--out", tmp.File("ablate.safetensors")]);
        Assert.Equal(0, ablated.ExitCode);

        Assert.Equal(Tensor(tmp.File("plain.safetensors"), "logits"), Tensor(tmp.File("ones.safetensors"), "logits"));
        float[] plainZ = Tensor(tmp.File("plain.safetensors"), "blocks.2.attn.hook_z");
        float[] z = Tensor(tmp.File("ablate.safetensors"), "blocks.2.attn.hook_z");
        for (int t = 0; t < 5; t++)
            for (int h = 0; h < 8; h++)
                for (int d = 0; d < 8; d++)
                {
                    int i = (t * 8 + h) * 8 + d;
                    Assert.Equal(h == 3 ? 0f : plainZ[i], z[i]);
                }
        Assert.NotEqual(Tensor(tmp.File("plain.safetensors"), "logits"), Tensor(tmp.File("ablate.safetensors"), "logits"));
        using var f = SafetensorsFile.Open(tmp.File("ablate.safetensors"));
        Assert.Equal("head", f.Metadata["gating.gate_site"]);
    }

    [SkippableFact]
    public void Generate_WithGatesOfWrongShape_NamesBothShapes()
    {
        string bin = SharedData.Path("models", "stories260K", "stories260K.bin");
        using var tmp = new TempDir();
        Npy.WriteFloat64(tmp.File("g.npy"), new double[4 * 8], 4, 8);
        var r = CliRunner.Run("generate", bin, "--max-new-tokens", "3", "--gates", tmp.File("g.npy"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("4 layers x 8 heads", r.Stderr);
        Assert.Contains("5 layers x 8 query heads", r.Stderr);
    }

    [SkippableFact]
    public void Generate_ContrastGatesFromAScoreMap_ChangeTheGreedyText_Deterministically()
    {
        string bin = SharedData.Path("models", "stories260K", "stories260K.bin");
        using var tmp = new TempDir();
        var scores = Enumerable.Range(0, 40).Select(i => 0.5 + 0.4 * Math.Sin(i)).ToArray();
        Npy.WriteFloat64(tmp.File("s.npy"), scores, 5, 8);
        string[] gated = ["generate", bin, "--max-new-tokens", "30", "--ids", "--scores", tmp.File("s.npy"), "--mode", "contrast", "--lambda", "6"];
        var plain = CliRunner.Run("generate", bin, "--max-new-tokens", "30", "--ids");
        var a = CliRunner.Run(gated);
        var b = CliRunner.Run(gated);
        Assert.Equal(0, a.ExitCode);
        Assert.Equal(a.Stdout, b.Stdout);
        Assert.NotEqual(plain.Stdout, a.Stdout);
        Assert.Contains("mode=contrast", a.Stderr);
    }
}
