using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Lab;
using TruthProbe.Tests.Common;
using TruthProbe.Training;

namespace TruthProbe.Tests.Lab;

/// <summary><c>lab pretrain --residual-init-std</c>: the residual branches' output projections start at the given std, nothing else moves.</summary>
public class ResidualInitTests
{
    private static bool IsResidualOutput(string name) => name.EndsWith("o_proj.weight") || name.EndsWith("down_proj.weight");

    private static double Std(ReadOnlySpan<float> v)
    {
        double sum = 0, squares = 0;
        foreach (float x in v) { sum += x; squares += (double)x * x; }
        double mean = sum / v.Length;
        return Math.Sqrt(squares / v.Length - mean * mean);
    }

    [Fact]
    public void ResidualStd_ScalesOnlyTheOutputProjections_OthersKeepTheDefaultBits()
    {
        // The wide model: o_proj is 64 x 128, down_proj 64 x 192, so a sample std is within ~1% (sd 1/sqrt(2n)) of the true one.
        var config = LabModelConfig.ForSize("wide", WordTokenizer.ForWorld().VocabSize, maxPositions: 16, WordTokenizer.BosId, WordTokenizer.EosId);
        var plain = new TrainableLlama(config);
        plain.Initialize(7);
        var scaled = new TrainableLlama(config);
        scaled.Initialize(7, residualStd: 0.02);
        int residual = 0;
        foreach (var (t, i) in plain.Parameters.Tensors.Select((t, i) => (t, i)))
        {
            var a = plain.Parameters.Value(i);
            var b = scaled.Parameters.Value(i);
            if (!IsResidualOutput(t.Name))
            {
                Assert.True(a.SequenceEqual(b), t.Name);
                continue;
            }
            residual++;
            Assert.InRange(Std(a), 0.005 * 0.95, 0.005 * 1.05); // GPT-2's 0.02 / sqrt(2 x 8 layers)
            Assert.InRange(Std(b), 0.02 * 0.95, 0.02 * 1.05);
            // The same draws at four times the scale.
            for (int j = 0; j < a.Length; j += 97) Assert.Equal(4 * a[j], b[j], 1e-6f);
        }
        Assert.Equal(2 * 8, residual);
    }

    [Fact]
    public void Pretrain_RecordsTheStd_DefaultIsGpt2s()
    {
        using var tmp = new TempDir();
        LabRuns.Pretrain(new LabRuns.PretrainOptions(tmp.File("a"), Steps: 2, BatchSize: 2), TextWriter.Null);
        var meta = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.File("a"), LabCheckpoint.MetadataFile)))!;
        Assert.Equal(0.02 / Math.Sqrt(2 * 4), meta["residual_init_std"]!.GetValue<double>(), 12); // tiny: 4 layers

        var r = CliRunner.Run("lab", "pretrain", "--out", tmp.File("b"), "--steps", "2", "--batch", "2", "--residual-init-std", "0.03");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("residual branches initialised at std 0.03", r.Stdout);
        meta = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.File("b"), LabCheckpoint.MetadataFile)))!;
        Assert.Equal(0.03, meta["residual_init_std"]!.GetValue<double>());
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-0.02)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void BadStd_IsAUserError_AndWritesNothing(double std)
    {
        using var tmp = new TempDir();
        var e = Assert.Throws<UserError>(() => LabRuns.Pretrain(new LabRuns.PretrainOptions(tmp.File("m"), Steps: 2, BatchSize: 2, ResidualInitStd: std), TextWriter.Null));
        Assert.Equal("residual_init_std", e.Field);
        Assert.False(Directory.Exists(tmp.File("m")));
    }
}
