using System.Text.Json;
using TruthProbe.Lineage;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Tests.Model;

namespace TruthProbe.Tests.Lineage;

public class DriftTests
{
    private static string Baby(string vocab) => SharedData.Path("models", $"babyllama-128d-{vocab}", "model5000.bin");

    [Fact]
    public void ParentVsItself_IsExactlyZero_WithCosineOne_ForEveryRow()
    {
        using var tmp = new TempDir();
        string parent = TinyModels.Write(tmp, TinyModels.LlamaGqa, WeightDType.BF16);
        var r = CliRunner.Run("drift", parent, parent, "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        var rows = DriftFixtures.ReadCsv(tmp.File("out/drift.csv"));
        Assert.NotEmpty(rows);
        Assert.All(rows.Values, v => { Assert.Equal(0.0, v.Rel); Assert.Equal(1.0, v.Cos); });
        // GQA 4:2 over 2 layers: q and o per query head, k and v per kv head, whole matrices, MLP, norms, biases, embed, lm_head.
        Assert.Equal(4, rows.Keys.Count(k => k is { Layer: 1, Matrix: "q" } && k.Head >= 0));
        Assert.Equal(4, rows.Keys.Count(k => k is { Layer: 1, Matrix: "o" } && k.Head >= 0));
        Assert.Equal(2, rows.Keys.Count(k => k is { Layer: 1, Matrix: "k" } && k.Head >= 0));
        Assert.Equal(2, rows.Keys.Count(k => k is { Layer: 1, Matrix: "v" } && k.Head >= 0));
        foreach (string m in new[] { "gate", "up", "down", "attn_norm", "mlp_norm", "q_bias", "o_bias" })
            Assert.True(rows.ContainsKey((0, -1, m)), m);
        foreach (string m in new[] { "embed", "lm_head", "final_norm" })
            Assert.True(rows.ContainsKey((-1, -1, m)), m);
        Assert.True(File.Exists(tmp.File("out/drift.png")));
        Assert.Contains("||A - B||_F / ||A||_F", r.Stdout);
    }

    [Fact]
    public void PlantedHeadPerturbations_ShowUpExactlyWhereTheyWerePlanted()
    {
        using var tmp = new TempDir();
        var c = TinyModels.LlamaGqa; // 4 query heads, 2 kv heads, d_head 16, d_model 48
        int d = c.HeadDim;
        string parent = TinyModels.Write(tmp, c, WeightDType.F32);
        float[]? q1 = null, o0 = null, k1 = null, k1Child = null;
        string child = DriftFixtures.WriteEdited(parent, tmp.File("child"), (m, l, v, rows, cols) =>
        {
            if (m == "q" && l == 1)
            {
                q1 = (float[])v.Clone();
                for (int i = 2 * d * cols; i < 3 * d * cols; i++) v[i] *= 0.5f;              // query head 2: rel 0.5, cosine 1
            }
            if (m == "o" && l == 0)
            {
                o0 = (float[])v.Clone();
                for (int r = 0; r < rows; r++)
                    for (int j = 3 * d; j < 4 * d; j++) v[r * cols + j] = -v[r * cols + j];  // input columns of head 3: rel 2, cosine -1
            }
            if (m == "k" && l == 1)
            {
                k1 = (float[])v.Clone();
                var rng = new XorShiftRandom(3);
                for (int i = d * cols; i < 2 * d * cols; i++) v[i] += (float)(0.01 * (rng.NextDouble() - 0.5)); // kv head 1: small noise
                k1Child = (float[])v.Clone();
            }
        });
        var r = CliRunner.Run("drift", parent, child, "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        var rows = DriftFixtures.ReadCsv(tmp.File("out/drift.csv"));

        Assert.Equal((0.5, 1.0), rows[(1, 2, "q")]);
        Assert.Equal((2.0, -1.0), rows[(0, 3, "o")]);
        // Closed forms of the whole matrices: only the planted block's ||delta||^2 counts in the numerator.
        int n = c.DModel;
        double q1All = DriftFixtures.SumSq(q1!, n, 0, c.QDim, 0, n), q1Head2 = DriftFixtures.SumSq(q1!, n, 2 * d, 3 * d, 0, n);
        Assert.Equal(Math.Sqrt(0.25 * q1Head2 / q1All), rows[(1, -1, "q")].Rel, 12);
        double o0All = DriftFixtures.SumSq(o0!, c.QDim, 0, n, 0, c.QDim), o0Head3 = DriftFixtures.SumSq(o0!, c.QDim, 0, n, 3 * d, 4 * d);
        Assert.Equal(Math.Sqrt(4 * o0Head3 / o0All), rows[(0, -1, "o")].Rel, 12);
        Assert.Equal((o0All - 2 * o0Head3) / o0All, rows[(0, -1, "o")].Cos, 12);
        // The noise on kv head 1: ||delta|| / ||A_block|| computed from the written values.
        double deltaSq = 0;
        for (int i = d * n; i < 2 * d * n; i++) deltaSq += Math.Pow((double)k1Child![i] - k1![i], 2);
        double expected = Math.Sqrt(deltaSq / DriftFixtures.SumSq(k1!, n, d, 2 * d, 0, n));
        Assert.InRange(expected, 1e-3, 1e-1);
        Assert.Equal(expected, rows[(1, 1, "k")].Rel, 12);

        var planted = new HashSet<(int, int, string)> { (1, 2, "q"), (1, -1, "q"), (0, 3, "o"), (0, -1, "o"), (1, 1, "k"), (1, -1, "k") };
        foreach (var (key, value) in rows)
            if (!planted.Contains(key))
            {
                Assert.True(value.Rel == 0, $"{key} drifted by {value.Rel} though nothing was planted there");
                Assert.Equal(1.0, value.Cos);
            }
    }

    [SkippableFact]
    public void Llama2cParent_VsItsOwnHfExport_IsExactlyZero()
    {
        // llama2.c stores q/k rows for interleaved RoPE, HF for half-split; the engine loads both in HF layout.
        using var tmp = new TempDir();
        string parent = Baby("tok105");
        string child = DriftFixtures.WriteEdited(parent, tmp.File("hf"), (_, _, _, _, _) => { });
        var r = CliRunner.Run("drift", parent, child, "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.All(DriftFixtures.ReadCsv(tmp.File("out/drift.csv")).Values, v => Assert.Equal(0.0, v.Rel));
    }

    [Fact]
    public void SameWeightsRoundedToBf16_DriftWithinTheUnitRoundoff()
    {
        // Round to nearest bf16 (8 significant bits) moves each entry by at most u|a|, u = 2^-8, so every
        // block's rel. Frobenius distance lies in (0, 2^-8]; a random matrix sits well inside, near u/2.
        using var tmp = new TempDir();
        string f32 = tmp.File("f32"), bf16 = tmp.File("bf16");
        RandomModel.WriteHf(f32, TinyModels.LlamaGqa, 5, WeightDType.F32);
        using (var parent = Transformer.Load(f32))
            HfCheckpoint.Write(bf16, parent.Config, parent.Weights, WeightDType.BF16);
        var r = CliRunner.Run("drift", f32, bf16, "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        foreach (var ((layer, head, matrix), (rel, cos)) in DriftFixtures.ReadCsv(tmp.File("out/drift.csv")))
        {
            Assert.True(rel > 0 && rel <= Math.Pow(2, -8), $"{layer},{head},{matrix}: {rel}");
            Assert.True(cos > 1 - Math.Pow(2, -15), $"{layer},{head},{matrix}: cosine {cos}");
        }
    }

    [SkippableFact]
    public void IndependentBabyLlamas_AreUnrelated_AndEmbeddingsUseTheSharedIds()
    {
        using var tmp = new TempDir();
        var r = CliRunner.Run("drift", Baby("tok105"), Baby("tok361"), "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        var rows = DriftFixtures.ReadCsv(tmp.File("out/drift.csv"));
        for (int l = 0; l < 5; l++)
            foreach (string m in WeightDrift.Attention)
            {
                Assert.InRange(rows[(l, -1, m)].Rel, 1.0, 3.0);
                Assert.InRange(rows[(l, -1, m)].Cos, -0.1, 0.1);
            }
        using var summary = JsonDocument.Parse(File.ReadAllText(tmp.File("out/summary.json")));
        var root = summary.RootElement;
        Assert.InRange(root.GetProperty("attention_mean_rel_frobenius").GetDouble(), 1.0, 3.0);
        ProvenanceAssert.In(tmp.File("out/summary.json"), [], []);
        Assert.Equal(105, root.GetProperty("embed_rows_compared").GetInt32());
        Assert.Contains("||A - B||_F / ||A||_F", root.GetProperty("normalisation").GetString());
        Assert.Contains(root.GetProperty("notes").EnumerateArray(), n => n.GetString()!.Contains("105 shared ids"));
        Assert.Contains("105 shared ids", r.Stdout);
    }

    [SkippableFact]
    public void DifferentWidths_AreRefused_NamingBothModels_EvenWithAlign()
    {
        using var tmp = new TempDir();
        string stories = SharedData.Path("models", "stories260K", "stories260K.bin"), baby = Baby("tok105");
        foreach (var extra in new[] { Array.Empty<string>(), ["--align"] })
        {
            var r = CliRunner.Run(["drift", stories, baby, "--out", tmp.File("out"), .. extra]);
            Assert.Equal(2, r.ExitCode);
            Assert.Contains(stories, r.Stderr);
            Assert.Contains(baby, r.Stderr);
            Assert.Contains("d_model 64 vs 128", r.Stderr);
            Assert.Contains("head size 8 vs 16", r.Stderr);
        }
        Assert.False(Directory.Exists(tmp.File("out")));
    }

    [Fact]
    public void DifferentLayerCounts_NeedAlign_WhichComparesTheCommonPrefix()
    {
        using var tmp = new TempDir();
        string two = TinyModels.Write(tmp, TinyModels.Qwen2, seed: 1);
        string three = tmp.File("three");
        RandomModel.WriteHf(three, TinyModels.Qwen2 with { Layers = 3 }, 1, WeightDType.F32);
        var refused = CliRunner.Run("drift", two, three, "--out", tmp.File("out"));
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("layer counts differ (2 vs 3)", refused.Stderr);
        Assert.Contains("--align", refused.Stderr);
        Assert.False(Directory.Exists(tmp.File("out")));

        var aligned = CliRunner.Run("drift", two, three, "--align", "--out", tmp.File("out"));
        Assert.True(aligned.ExitCode == 0, aligned.Stderr);
        var rows = DriftFixtures.ReadCsv(tmp.File("out/drift.csv"));
        Assert.DoesNotContain(rows.Keys, k => k.Layer == 2);
        // Same seed and tensor names: RandomModel's per-tensor streams make the shared layers identical.
        Assert.All(rows.Where(k => k.Key.Layer >= 0), kv => Assert.Equal(0.0, kv.Value.Rel));
        Assert.Contains("only layers 0..1 are compared", aligned.Stdout);
    }

    [Fact]
    public void MissingModel_IsAClearError()
    {
        using var tmp = new TempDir();
        string parent = TinyModels.Write(tmp, TinyModels.Qwen2);
        var r = CliRunner.Run("drift", parent, tmp.File("nope"), "--out", tmp.File("out"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(tmp.File("nope"), r.Stderr);
        Assert.Contains("no such model", r.Stderr);
    }

    [Fact]
    public void UnreadableTokenizer_DoesNotStopAWeightComparison()
    {
        using var tmp = new TempDir();
        string parent = TinyModels.Write(tmp, TinyModels.Qwen2);
        File.WriteAllText(Path.Combine(parent, "tokenizer.json"), "{ not json");
        Assert.ThrowsAny<Exception>(() => Transformer.Load(parent).Dispose());
        var r = CliRunner.Run("drift", parent, parent, "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
    }

    [Fact]
    public void Accumulate_MatchesNaiveDoubleSums_AtEveryTailLength()
    {
        var rng = new XorShiftRandom(11);
        foreach (int n in new[] { 0, 1, 15, 16, 17, 33, 1000 })
        {
            var a = new float[n];
            var b = new float[n];
            for (int i = 0; i < n; i++) { a[i] = (float)(rng.NextDouble() - 0.5); b[i] = (float)(rng.NextDouble() - 0.5); }
            var s = new DriftSums();
            s.Accumulate(a, b);
            double pp = 0, cc = 0, dd = 0, ab = 0;
            for (int i = 0; i < n; i++)
            {
                pp += (double)a[i] * a[i];
                cc += (double)b[i] * b[i];
                dd += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
                ab += (double)a[i] * b[i];
            }
            Assert.Equal(pp, s.ParentSq, 1e-12);
            Assert.Equal(cc, s.ChildSq, 1e-12);
            Assert.Equal(dd, s.DiffSq, 1e-12);
            Assert.Equal(ab, s.Dot, 1e-12);
            Assert.Equal(n, s.Count);
        }
    }
}
