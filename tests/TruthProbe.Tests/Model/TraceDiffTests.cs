using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Model;

/// <summary><c>trace-diff</c> on traces written by <c>trace</c>: identical ones pass at 0, a perturbed hook is named and fails.</summary>
public sealed class TraceDiffTests
{
    private static string Trace(TempDir tmp, string model, string name, string ids = "1,5,7,9,11")
    {
        string path = tmp.File(name);
        var r = CliRunner.Run("trace", model, "--token-ids", ids, "--hooks", "blocks.*.attn.hook_z,blocks.1.hook_resid_post,logits", "--out", path);
        Assert.True(r.ExitCode == 0, r.Stderr);
        return path;
    }

    /// <summary>A copy of <paramref name="source"/> with <paramref name="edit"/> applied to the named hook's values (others as they are).</summary>
    private static string Copy(TempDir tmp, string source, string name, string hook, Action<float[]> edit, bool drop = false)
    {
        using var f = SafetensorsFile.Open(source);
        var tensors = new List<SafetensorToWrite>();
        foreach (var t in f.Tensors.Values.OrderBy(t => t.Offset))
        {
            var data = f.ReadSingles(t);
            if (t.Name == hook)
            {
                if (drop) continue;
                edit(data);
            }
            tensors.Add(SafetensorToWrite.FromSingles(t.Name, t.Shape, data));
        }
        string path = tmp.File(name);
        SafetensorsWriter.Write(path, tensors, f.Metadata);
        return path;
    }

    private static string Line(string stdout, string hook) => stdout.Split('\n').Single(l => l.StartsWith(hook + " ", StringComparison.Ordinal));

    [Fact]
    public void IdenticalTraces_DiffZero_ExitZero()
    {
        using var tmp = new TempDir();
        string model = TinyModels.Write(tmp, TinyModels.LlamaGqa);
        var r = CliRunner.Run("trace-diff", Trace(tmp, model, "a.safetensors"), Trace(tmp, model, "b.safetensors"));
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        foreach (string hook in new[] { "blocks.0.attn.hook_z", "blocks.1.attn.hook_z", "blocks.1.hook_resid_post", "logits" })
            Assert.Matches(@"\s0\.000E\+000\s+0\.000E\+000\s+ok$", Line(r.Stdout, hook));
        Assert.Contains("4 hooks, 0 above tolerance 0.0001", r.Stdout);
    }

    [Fact]
    public void PerturbedHook_IsNamed_AndExitsOne_UnlessWithinTol()
    {
        using var tmp = new TempDir();
        string model = TinyModels.Write(tmp, TinyModels.LlamaGqa);
        string a = Trace(tmp, model, "a.safetensors");
        float scale = 0;
        string b = Copy(tmp, a, "b.safetensors", "blocks.1.attn.hook_z", d => { scale = d.Max(MathF.Abs); d[7] += 1e-2f * scale; });
        var r = CliRunner.Run("trace-diff", b, a);
        Assert.Equal(1, r.ExitCode);
        Assert.EndsWith("FAIL", Line(r.Stdout, "blocks.1.attn.hook_z"));
        Assert.Contains("[5, 4, 16]", Line(r.Stdout, "blocks.1.attn.hook_z"));
        foreach (string hook in new[] { "blocks.0.attn.hook_z", "blocks.1.hook_resid_post", "logits" }) Assert.EndsWith("ok", Line(r.Stdout, hook));
        Assert.Contains("4 hooks, 1 above tolerance", r.Stdout);
        // The relative difference printed is 1e-2 of the reference's largest magnitude.
        double printed = double.Parse(Line(r.Stdout, "blocks.1.attn.hook_z").Split(' ', StringSplitOptions.RemoveEmptyEntries)[^2], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(printed, 0.99e-2, 1.01e-2);
        Assert.Equal(0, CliRunner.Run("trace-diff", b, a, "--tol", "0.02").ExitCode);
    }

    [Fact]
    public void MissingHook_OtherTokens_OrNaN_ExitOne()
    {
        using var tmp = new TempDir();
        string model = TinyModels.Write(tmp, TinyModels.LlamaGqa);
        string a = Trace(tmp, model, "a.safetensors");
        var missing = CliRunner.Run("trace-diff", a, Copy(tmp, a, "m.safetensors", "logits", _ => { }, drop: true));
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("missing in B", Line(missing.Stdout, "logits"));
        var nan = CliRunner.Run("trace-diff", a, Copy(tmp, a, "n.safetensors", "logits", d => d[0] = float.NaN));
        Assert.Equal(1, nan.ExitCode);
        Assert.EndsWith("FAIL", Line(nan.Stdout, "logits"));
        var other = CliRunner.Run("trace-diff", a, Trace(tmp, model, "o.safetensors", "1,5,7,9,12"));
        Assert.Equal(1, other.ExitCode);
        Assert.Contains("metadata 'token_ids' differs: 1,5,7,9,11 vs 1,5,7,9,12", other.Stdout);
        var absent = CliRunner.Run("trace-diff", a, tmp.File("none.safetensors"));
        Assert.Equal(2, absent.ExitCode);
        Assert.Contains("none.safetensors: trace file not found", absent.Stderr);
    }

    [Fact]
    public void AttentionScores_MaskedMinusInfinityAgrees_AFiniteChangeIsMeasuredOnTheFiniteScale()
    {
        using var tmp = new TempDir();
        string model = TinyModels.Write(tmp, TinyModels.LlamaGqa);
        string Scores(string name)
        {
            string path = tmp.File(name);
            var r = CliRunner.Run("trace", model, "--token-ids", "1,5,7,9,11", "--hooks", "blocks.0.attn.hook_attn_scores", "--out", path);
            Assert.True(r.ExitCode == 0, r.Stderr);
            return path;
        }
        const string hook = "blocks.0.attn.hook_attn_scores";
        string a = Scores("a.safetensors");
        var same = CliRunner.Run("trace-diff", a, Scores("b.safetensors"));
        Assert.True(same.ExitCode == 0, same.Stdout + same.Stderr);
        Assert.Matches(@"\s0\.000E\+000\s+0\.000E\+000\s+ok$", Line(same.Stdout, hook));

        // [H, T, T]: row 0 sees key 0 only, so index 1 is masked (-inf) and index 0 finite.
        float scale = 0;
        string shifted = Copy(tmp, a, "s.safetensors", hook, d =>
        {
            Assert.Equal(float.NegativeInfinity, d[1]);
            scale = d.Where(float.IsFinite).Max(MathF.Abs);
            d[0] += 1e-2f * scale;
        });
        var r = CliRunner.Run("trace-diff", shifted, a);
        Assert.Equal(1, r.ExitCode);
        Assert.EndsWith("FAIL", Line(r.Stdout, hook));
        double printed = double.Parse(Line(r.Stdout, hook).Split(' ', StringSplitOptions.RemoveEmptyEntries)[^2], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(printed, 0.99e-2, 1.01e-2);
        var unmasked = CliRunner.Run("trace-diff", Copy(tmp, a, "u.safetensors", hook, d => d[1] = 0), a);
        Assert.Equal(1, unmasked.ExitCode);
        Assert.EndsWith("FAIL", Line(unmasked.Stdout, hook));
    }
}
