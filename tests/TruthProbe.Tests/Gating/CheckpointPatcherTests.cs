using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Gating;
using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Gating;

public class CheckpointPatcherTests
{
    private static readonly int[] Prompt = [1, 5, 17, 9, 33, 3, 8];

    /// <summary>Logits after prefilling the prompt and after two decode steps, concatenated.</summary>
    private static float[] Logits(Transformer model, Interventions? gates)
    {
        var state = model.NewState();
        var result = new List<float>(model.Forward(state, Prompt, interventions: gates).ToArray());
        result.AddRange(model.Forward(state, [12], interventions: gates).ToArray());
        result.AddRange(model.Forward(state, [40], interventions: gates).ToArray());
        return [.. result];
    }

    private static double MaxAbsDiff(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();

    private static GateFold Fold(float[,] gates, GateSite site) => new(gates, site, new Dictionary<string, string> { ["source"] = "test" });

    [Theory]
    [InlineData("qwen2", GateSite.Head)]
    [InlineData("qwen2", GateSite.OProjOut)]
    [InlineData("llama", GateSite.Head)]       // llama with attention_bias: o_proj has a bias to fold
    [InlineData("llama", GateSite.OProjOut)]
    public void RandomModel_PatchedLogits_EqualGatedRunLogits(string architecture, GateSite site)
    {
        using var tmp = new TempDir();
        var config = RandomCheckpoint.Config(architecture);
        string source = RandomCheckpoint.Write(tmp.File("model"), config, seed: 7);
        var gates = RandomCheckpoint.Gates(config.Layers, config.Heads, seed: 3);
        CheckpointPatcher.Patch(source, tmp.File("patched"), Fold(gates, site));

        using var original = Transformer.Load(source);
        using var patched = Transformer.Load(tmp.File("patched"));
        float[] gated = Logits(original, new Interventions(original.Config).Gate(gates, site));
        float[] folded = Logits(patched, null);
        float[] vanilla = Logits(original, null);
        Assert.True(MaxAbsDiff(gated, folded) <= 1e-5, $"max |gated - patched| = {MaxAbsDiff(gated, folded):E2}");
        Assert.True(MaxAbsDiff(gated, vanilla) > 1e-2, "the gates should change the logits, or the test proves nothing");
    }

    [SkippableFact]
    public void Stories260K_PatchedBin_LogitsEqualGatedRun_BothSites()
    {
        string bin = SharedData.Path("models", "stories260K", "stories260K.bin");
        using var original = Transformer.Load(bin);
        var gates = RandomCheckpoint.Gates(original.Config.Layers, original.Config.Heads, seed: 11);
        foreach (var site in new[] { GateSite.Head, GateSite.OProjOut })
        {
            using var tmp = new TempDir();
            CheckpointPatcher.Patch(bin, tmp.File("out"), Fold(gates, site));
            Assert.True(File.Exists(tmp.File("out/tok512.bin")), "the tokenizer beside the .bin is copied");
            using var patched = Transformer.Load(tmp.File("out/stories260K.bin"));
            float[] gated = Logits(original, new Interventions(original.Config).Gate(gates, site));
            float[] folded = Logits(patched, null);
            Assert.True(MaxAbsDiff(gated, folded) <= 1e-5, $"{site}: max |gated - patched| = {MaxAbsDiff(gated, folded):E2}");
            Assert.True(MaxAbsDiff(gated, Logits(original, null)) > 1e-2);
            Assert.Contains("\"gate_site\"", File.ReadAllText(tmp.File("out/" + CheckpointPatcher.ManifestName)));
        }
    }

    [Fact]
    public void Bf16Checkpoint_StaysBf16_WithGatesAndSourceInMetadata()
    {
        using var tmp = new TempDir();
        var config = RandomCheckpoint.Config("qwen2");
        string fp32 = RandomCheckpoint.Write(tmp.File("fp32"), config, seed: 5);
        using (var m = Transformer.Load(fp32)) HfCheckpoint.Write(tmp.File("bf16"), m.Config, m.Weights, WeightDType.BF16);
        var gates = RandomCheckpoint.Gates(config.Layers, config.Heads, seed: 2);
        CheckpointPatcher.Patch(tmp.File("bf16"), tmp.File("out"), Fold(gates, GateSite.Head));

        using var before = SafetensorsFile.Open(tmp.File("bf16/model.safetensors"));
        using var after = SafetensorsFile.Open(tmp.File("out/model.safetensors"));
        Assert.All(after.Tensors.Values, t => Assert.Equal(TensorDType.BF16, t.DType));
        Assert.Equal(before.Tensors.Keys.Order(), after.Tensors.Keys.Order());
        // Untouched tensors are byte-identical; o_proj columns of head h are the bf16 rounding of W * g[l, h].
        Assert.True(before.Bytes(before.Get("model.layers.1.mlp.up_proj.weight")).SequenceEqual(after.Bytes(after.Get("model.layers.1.mlp.up_proj.weight"))));
        float[] w = before.ReadSingles(before.Get("model.layers.1.self_attn.o_proj.weight"));
        float[] p = after.ReadSingles(after.Get("model.layers.1.self_attn.o_proj.weight"));
        for (int i = 0; i < w.Length; i++)
        {
            int head = i % config.QDim / config.HeadDim;
            Assert.Equal(TensorDTypes.BFloat16ToSingle(TensorDTypes.SingleToBFloat16(w[i] * gates[1, head])), p[i]);
        }
        Assert.Equal("head", after.Metadata["truthprobe.gate_site"]);
        Assert.Equal("test", after.Metadata["truthprobe.source"]);
        Assert.Equal("pt", after.Metadata["format"]);
        Assert.StartsWith("[[", after.Metadata["truthprobe.gates"]);
        Assert.True(File.Exists(tmp.File("out/config.json")));
    }

    [Fact]
    public void GatesOfTheWrongShape_FailNamingBothShapes_AndLeaveNoOutput()
    {
        using var tmp = new TempDir();
        string source = RandomCheckpoint.Write(tmp.File("model"), RandomCheckpoint.Config("qwen2"), seed: 1);
        var e = Assert.Throws<UserError>(() => CheckpointPatcher.Patch(source, tmp.File("out"), Fold(new float[2, 4], GateSite.Head)));
        Assert.Contains("gates", e.Message);
        e = Assert.Throws<UserError>(() => CheckpointPatcher.Patch(source, tmp.File("out"), Fold(new float[3, 5], GateSite.Head)));
        Assert.Contains("[3, 5]", e.Message);
        Assert.False(Directory.Exists(tmp.File("out")));
        Assert.Single(Directory.GetDirectories(tmp.Path)); // no staging folder left behind
    }

    [Fact]
    public void OutputIntoANonEmptyFolder_IsRefused()
    {
        using var tmp = new TempDir();
        string source = RandomCheckpoint.Write(tmp.File("model"), RandomCheckpoint.Config("qwen2"), seed: 1);
        Directory.CreateDirectory(tmp.File("out"));
        File.WriteAllText(tmp.File("out/keep.txt"), "x");
        Assert.Throws<UserError>(() => CheckpointPatcher.Patch(source, tmp.File("out"), Fold(new float[3, 4], GateSite.Head)));
        Assert.Throws<UserError>(() => CheckpointPatcher.Patch(source, source, Fold(new float[3, 4], GateSite.Head)));
    }
}
