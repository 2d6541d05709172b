using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using static TruthProbe.Tests.Model.TinyModels;

namespace TruthProbe.Tests.Formats;

/// <summary>The convert verb as a user calls it.</summary>
public class ConvertCliTests
{
    [SkippableFact]
    public void Stories260K_ToGguf_GeneratesThePublishedIds_WithTheTokenizerFromMetadata()
    {
        string bin = SharedData.Path("models", "stories260K", "stories260K.bin");
        using var tmp = new TempDir();
        string gguf = tmp.File("stories260K.gguf");
        var convert = CliRunner.Run("convert", bin, "--out", gguf);
        Assert.Equal(0, convert.ExitCode);
        Assert.Contains("with its sentencepiece-bpe tokenizer", convert.Stdout);
        var generate = CliRunner.Run("generate", gguf, "--max-new-tokens", "40", "--ids");
        Assert.Equal(0, generate.ExitCode);
        // stories260K's published ids (docs/design.md §8), and their text decoded from the GGUF's vocabulary.
        Assert.Contains("new ids:    403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385 328 432 358 394 261 370 432 352", generate.Stdout);
        Assert.Contains("Once upon a time, there was a little girl named Lily.", generate.Stdout);
        var inspect = CliRunner.Run("inspect", gguf);
        Assert.Contains("format:       gguf", inspect.Stdout);
    }

    [Fact]
    public void GgufToHfFolderAndBack_KeepsTheLogits()
    {
        using var tmp = new TempDir();
        using var model = GgufModels.Random(tmp, GgufModels.Qwen2, seed: 21);
        string gguf = tmp.File("a.gguf"), hf = tmp.File("hf"), again = tmp.File("b.gguf");
        Assert.Equal(0, CliRunner.Run("convert", model.Source, "--out", gguf, "--dtype", "bf16").ExitCode);
        // Through an f32 folder: a bf16 HF checkpoint would round the norms and biases too, which GGUF keeps in f32.
        Assert.Equal(0, CliRunner.Run("convert", gguf, "--out", hf, "--dtype", "f32").ExitCode);
        Assert.Equal(0, CliRunner.Run("convert", hf, "--out", again, "--dtype", "bf16").ExitCode);
        using var first = Transformer.Load(gguf);
        using var last = Transformer.Load(again);
        Assert.All(last.Weights.Matrices(), m => Assert.Equal(WeightDType.BF16, m.DType));
        int[] tokens = GgufModels.RandomTokens(10, model.Config.Vocab, seed: 22);
        Assert.Equal(AllLogits(first, tokens), AllLogits(last, tokens));
    }

    [Fact]
    public void BadDtype_ExitsWithTwo_AndWritesNothing()
    {
        using var tmp = new TempDir();
        using var model = GgufModels.Random(tmp, GgufModels.Llama, seed: 23);
        var r = CliRunner.Run("convert", model.Source, "--out", tmp.File("x.gguf"), "--dtype", "q4_k");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("q4_k", r.Stderr);
        var hf = CliRunner.Run("convert", model.Source, "--out", tmp.File("dir"), "--dtype", "q8_0");
        Assert.Equal(2, hf.ExitCode);
        Assert.False(File.Exists(tmp.File("x.gguf")));
        Assert.False(Directory.Exists(tmp.File("dir")));
    }
}
