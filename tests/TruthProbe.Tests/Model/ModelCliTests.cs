using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Model;

/// <summary>The inspect, generate and trace verbs as a user calls them.</summary>
public class ModelCliTests
{
    [SkippableFact]
    public void Generate_Stories260K_FromBos_PrintsThePublishedStory()
    {
        string bin = SharedData.Path("models", "stories260K", "stories260K.bin");
        var r = CliRunner.Run("generate", bin, "--max-new-tokens", "40", "--ids");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("new ids:    403 407 261 378 432 383", r.Stdout);
        // The README's decoded text of the 40 published ids.
        Assert.Contains("Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day,\nshe saw a big, r".Replace("\n", " "), r.Stdout);
    }

    [SkippableFact]
    public void Generate_WithSeed_IsReproducible_AndDiffersFromGreedy()
    {
        string bin = SharedData.Path("models", "stories260K", "stories260K.bin");
        var a = CliRunner.Run("generate", bin, "--prompt", "Once upon a time", "--temperature", "1.0", "--seed", "5", "--max-new-tokens", "30");
        var b = CliRunner.Run("generate", bin, "--prompt", "Once upon a time", "--temperature", "1.0", "--seed", "5", "--max-new-tokens", "30");
        var g = CliRunner.Run("generate", bin, "--prompt", "Once upon a time", "--max-new-tokens", "30");
        Assert.Equal(0, a.ExitCode);
        Assert.Equal(a.Stdout, b.Stdout);
        Assert.Contains("seed 5", a.Stderr);
        Assert.NotEqual(a.Stdout, g.Stdout);
        Assert.StartsWith("Once upon a time", g.Stdout);
    }

    [SkippableFact]
    public void Inspect_Stories260K_ShowsShapeTokenizerAndParameters()
    {
        string bin = SharedData.Path("models", "stories260K", "stories260K.bin");
        var r = CliRunner.Run("inspect", bin);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("5 layers, d_model 64, 8 heads (4 kv, d_head 8), ffn 172, vocab 512, context 512", r.Stdout);
        Assert.Contains("sentencepiece-bpe", r.Stdout);
        Assert.Contains("BOS 1 '<s>'", r.Stdout);
        // 28 + 4 * 264,128 bytes hold 264,128 floats, of which 512 * 8 are the unused RoPE tables.
        Assert.Contains($"parameters:   {264_128 - 512 * 8:N0}", r.Stdout);
    }

    [Fact]
    public void Trace_WritesRequestedHooksAsFloat32_WithTokensInMetadata()
    {
        using var tmp = new TempDir();
        string folder = TinyModels.Write(tmp, TinyModels.Qwen2), output = tmp.File("t.safetensors");
        var r = CliRunner.Run("trace", folder, "--token-ids", "1,4,9,16", "--hooks", "blocks.*.attn.hook_z,logits", "--out", output);
        Assert.Equal(0, r.ExitCode);
        using var file = SafetensorsFile.Open(output);
        var c = TinyModels.Qwen2;
        Assert.Equal(["blocks.0.attn.hook_z", "blocks.1.attn.hook_z", "logits"], file.Tensors.Keys.Order());
        Assert.Equal([4L, c.Heads, c.HeadDim], file.Get("blocks.1.attn.hook_z").Shape);
        Assert.Equal(TensorDType.F32, file.Get("logits").DType);
        Assert.Equal([4L, c.Vocab], file.Get("logits").Shape);
        Assert.Equal("1,4,9,16", file.Metadata["token_ids"]);
        double[] reference = ReferenceForward.Logits(folder, [1, 4, 9, 16]).SelectMany(x => x).ToArray();
        Assert.True(file.ReadSingles(file.Get("logits")).Select((v, i) => Math.Abs(v - reference[i])).Max() < 1e-5);
    }

    [Fact]
    public void Trace_AttentionHooks_HaveTransformerLensNamesAndShapes_AndHelpListsEveryHook()
    {
        using var tmp = new TempDir();
        string folder = TinyModels.Write(tmp, TinyModels.Qwen2), output = tmp.File("a.safetensors");
        var r = CliRunner.Run("trace", folder, "--token-ids", "1,4,9,16", "--hooks", "blocks.0.attn.*", "--positions", "-1", "--out", output);
        Assert.Equal(0, r.ExitCode);
        using var file = SafetensorsFile.Open(output);
        var c = TinyModels.Qwen2;
        Assert.Equal(["blocks.0.attn.hook_attn_scores", "blocks.0.attn.hook_k", "blocks.0.attn.hook_pattern", "blocks.0.attn.hook_q",
            "blocks.0.attn.hook_rot_k", "blocks.0.attn.hook_rot_q", "blocks.0.attn.hook_v", "blocks.0.attn.hook_z"], file.Tensors.Keys.Order());
        Assert.Equal([1L, c.KvHeads, c.HeadDim], file.Get("blocks.0.attn.hook_rot_k").Shape);
        Assert.Equal([c.Heads, 1L, 4L], file.Get("blocks.0.attn.hook_pattern").Shape);
        Assert.Equal([c.Heads, 1L, 4L], file.Get("blocks.0.attn.hook_attn_scores").Shape);

        string help = CliRunner.Run("trace", "--help").Stdout;
        foreach (string hook in new[] { "hook_embed", "blocks.{l}.attn.hook_rot_q", "blocks.{l}.attn.hook_attn_scores", "blocks.{l}.mlp.hook_pre_linear", "logits" })
            Assert.Contains(hook, help);
    }

    [Fact]
    public void Trace_PatternThatMatchesNothing_IsAUserError()
    {
        using var tmp = new TempDir();
        var r = CliRunner.Run("trace", TinyModels.Write(tmp, TinyModels.Qwen2), "--token-ids", "1", "--hooks", "blocks.*.hook_zz", "--out", tmp.File("x.safetensors"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("matches no hook point", r.Stderr);
    }
}
