using System.Text.Json.Nodes;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Numerics;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Model;

/// <summary>NaN and infinity in weights and activations: found where they first appear, named, and allowed on request.</summary>
public class NonFiniteTests
{
    [Fact]
    public void Scan_FindsTheFirstNonFinite_AtEveryPositionAndInEveryEncoding()
    {
        // Lengths around the vector widths, a value planted at each position; the reference is float.IsFinite on the value.
        var random = new Random(5);
        foreach (int n in new[] { 1, 7, 8, 15, 16, 17, 33, 64, 100 })
            foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
                for (int at = 0; at < n; at++)
                {
                    var values = Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 2e4 - 1e4)).ToArray();
                    values[at] = bad;
                    Assert.Equal(at, NonFinite.IndexOf(values));
                    Assert.Equal(at, NonFinite.IndexOfHalf(values.Select(v => BitConverter.HalfToUInt16Bits((Half)v)).ToArray()));
                    Assert.Equal(at, NonFinite.IndexOfBFloat16(values.Select(v => (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16)).ToArray()));
                    values[at] = float.MaxValue;
                    Assert.Equal(-1, NonFinite.IndexOf(values));
                }
    }

    /// <summary>The tiny Qwen2 folder with one weight of one tensor set to <paramref name="value"/> (F32 safetensors).</summary>
    private static string WithWeight(TempDir tmp, string tensor, int index, float value)
    {
        string folder = TinyModels.Write(tmp, TinyModels.Qwen2), file = Path.Combine(folder, HfCheckpoint.SingleFile);
        long begin;
        using (var st = SafetensorsFile.Open(file)) begin = st.Get(tensor).Offset;
        byte[] bytes = File.ReadAllBytes(file);
        BitConverter.GetBytes(value).CopyTo(bytes, begin + 4 * index);
        File.WriteAllBytes(file, bytes);
        return folder;
    }

    [Fact]
    public void NaNWeight_IsAUserErrorNamingTensorRowAndColumn_UnlessAllowed()
    {
        using var tmp = new TempDir();
        string folder = WithWeight(tmp, "model.layers.1.mlp.down_proj.weight", 3 * TinyModels.Qwen2.Ffn + 5, float.NaN);
        var refused = CliRunner.Run("trace", folder, "--token-ids", "1,2", "--hooks", "logits", "--out", tmp.File("t.safetensors"));
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("weight model.layers.1.mlp.down_proj.weight holds NaN at row 3, column 5", refused.Stderr);
        Assert.EndsWith("(--allow-nonfinite)\n", refused.Stderr.ReplaceLineEndings("\n"));
        Assert.False(File.Exists(tmp.File("t.safetensors")));

        var allowed = CliRunner.Run("trace", folder, "--token-ids", "1,2", "--hooks", "logits", "--out", tmp.File("t.safetensors"), "--allow-nonfinite");
        Assert.Equal(0, allowed.ExitCode);
        using var trace = SafetensorsFile.Open(tmp.File("t.safetensors"));
        Assert.All(trace.ReadSingles(trace.Get("logits")), v => Assert.True(float.IsNaN(v)));
    }

    [Fact]
    public void FiniteWeightsThatOverflow_AreReportedAtTheFirstCapturedHook()
    {
        // A final-norm weight of 3e38 is finite, but the norm's output times the classifier overflows float32.
        using var tmp = new TempDir();
        string folder = WithWeight(tmp, "model.norm.weight", 0, 3e38f);
        var r = CliRunner.Run("trace", folder, "--token-ids", "1,2", "--hooks", "logits", "--out", tmp.File("t.safetensors"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("logits is", r.Stderr);
        Assert.Contains("although the weights are finite: an activation overflowed float32", r.Stderr);
    }

    [Fact]
    public void HugeLambda_IsRefusedBeforeAnyForward()
    {
        using var tmp = new TempDir();
        string map = tmp.File("map.npy");
        Npy.WriteFloat64(map, [0.6, 0.5, 0.7, 0.4], 2, 2);
        var r = CliRunner.Run("gates", "--scores", map, "--mode", "contrast", "--lambda", "1e30");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("lambda 1E+30 gives a gate of", r.Stderr);
        Assert.Contains("choose a smaller lambda (--lambda)", r.Stderr);
        Assert.Equal(0, CliRunner.Run("gates", "--scores", map, "--mode", "contrast", "--lambda", "4.5").ExitCode);
    }
}
