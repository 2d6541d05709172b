using System.Text.Json.Nodes;
using TruthProbe.Cli;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Probing;
using TruthProbe.Statistics;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Probing;

public class ScoreVerbTests
{
    private static string Stories260K => SharedData.Path("models", "stories260K", "stories260K.bin");
    private static string Shipped => Path.Combine(RepoPaths.RepoRoot()!, "data", "tinystories_context_qa.jsonl");

    private static readonly string[] ScoreFiles = ["activations.safetensors", "scores.csv", "scores.npy", "probe_weights.safetensors", "heatmap.png"];

    private static JsonNode Manifest(string dir) => JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "manifest.json")))!;

    /// <summary>The manifest less the fields that differ between same-seed runs by design: timings and the output folder.</summary>
    private static string ManifestWithoutRunFields(string dir)
    {
        var m = Manifest(dir).AsObject();
        m.Remove("timings_s");
        m["activations"]!.AsObject().Remove("path");
        return m.ToJsonString();
    }

    private static CliRunner.Result Score(string model, string outDir, params string[] extra) =>
        CliRunner.Run(["score", model, "--data", Shipped, "--out", outDir, .. extra]);

    [SkippableFact]
    public void Stories260K_ShippedSet_WritesActivationsAndScores_RerunIsByteIdentical_ThirdRunReuses()
    {
        string model = Stories260K;
        using var tmp = new TempDir();
        var a = Score(model, tmp.File("a"), "--samples", "120");
        Assert.True(a.ExitCode == 0, a.Stderr);
        Assert.Equal(0, Score(model, tmp.File("b"), "--samples", "120").ExitCode);

        foreach (string f in ScoreFiles)
            Assert.True(File.ReadAllBytes(Path.Combine(tmp.File("a"), f)).SequenceEqual(File.ReadAllBytes(Path.Combine(tmp.File("b"), f))), $"{f} differs between runs");
        Assert.Equal(ManifestWithoutRunFields(tmp.File("a")), ManifestWithoutRunFields(tmp.File("b")));

        var set = ActivationSet.Load(Path.Combine(tmp.File("a"), "activations.safetensors"), null);
        Assert.Equal((120, 5, 8, 8), (set.Rows, set.Layers, set.Heads, set.HeadDim));   // stories260K: 5 layers, 8 heads of 8
        Assert.Equal(Enumerable.Range(0, 120).Select(i => (byte)(1 - i % 2)), set.Labels);
        Assert.Equal(Enumerable.Range(0, 120).Select(i => (long)i), set.RowIds);
        Assert.Equal(120, set.Answers!.Length);
        Assert.Equal(PromptTemplate.Default, set.Metadata["template"]);
        Assert.Equal(Hashing.Sha256File(Shipped), set.Metadata["data_sha256"]);

        var m = Manifest(tmp.File("a"));
        Assert.Equal("truthprobe score", (string?)m["tool"]);
        Assert.True((bool)m["surface_baseline"]!["available"]!);
        // The generator draws gold and swapped names from one pool: answers alone cannot tell them apart.
        Assert.InRange((double)m["surface_baseline"]!["accuracy"]!, 0.3, 0.7);

        var third = Score(model, tmp.File("a"), "--samples", "120");
        Assert.Equal(0, third.ExitCode);
        Assert.Contains("reused", third.Stdout);
    }

    [SkippableFact]
    public void StoredRow_EqualsHookZOfAForwardPassAtTheLastToken()
    {
        string modelPath = Stories260K;
        using var tmp = new TempDir();
        Assert.Equal(0, Score(modelPath, tmp.File("o"), "--samples", "6", "--no-control", "--folds", "2").ExitCode);
        var set = ActivationSet.Load(Path.Combine(tmp.File("o"), "activations.safetensors"), null);
        var rows = ProbingData.Load(Shipped, 6, false).Rows;
        using var model = Transformer.Load(modelPath);
        for (int i = 0; i < 6; i += 5)
        {
            int[] tokens = model.Encode(new PromptTemplate(PromptTemplate.Default).Render(rows[i]));
            Assert.Equal(1, tokens[0]);   // BOS
            var capture = new ActivationCapture(model.Config, ["blocks.*.attn.hook_z"]);
            model.Forward(model.NewState(), tokens, capture);
            for (int l = 0; l < 5; l++)
            {
                var z = capture[$"blocks.{l}.attn.hook_z"];   // [T, H, d_head], all positions
                for (int h = 0; h < 8; h++)
                    Assert.Equal(z.Data.AsSpan(((tokens.Length - 1) * 8 + h) * 8, 8).ToArray(), set.Row(i, l, h).ToArray());
            }
        }
    }

    [SkippableFact]
    public void InterruptedRun_ResumesWhereItStopped_AndEndsIdenticalToAnUninterruptedRun()
    {
        string model = Stories260K;
        using var tmp = new TempDir();
        Assert.Equal(0, Score(model, tmp.File("a"), "--samples", "40", "--no-control").ExitCode);
        byte[] finished = File.ReadAllBytes(Path.Combine(tmp.File("a"), "activations.safetensors"));

        // What a run killed after 10 rows leaves behind: the partial file with rows 10.. still zero, and its progress.
        Directory.CreateDirectory(tmp.File("b"));
        string partial = Path.Combine(tmp.File("b"), "activations.safetensors.partial");
        byte[] cut = (byte[])finished.Clone();
        string fingerprint;
        long offset, rowBytes = 5 * 8 * 8 * 4;
        using (var f = SafetensorsFile.Open(Path.Combine(tmp.File("a"), "activations.safetensors")))
        {
            fingerprint = f.Metadata["fingerprint"];
            offset = f.Get("activations").Offset;
        }
        Array.Clear(cut, (int)(offset + 10 * rowBytes), (int)(30 * rowBytes));
        File.WriteAllBytes(partial, cut);
        File.WriteAllText(partial.Replace(".partial", ".progress.json"), $$"""{"fingerprint":"{{fingerprint}}","rows_done":10}""");

        var r = Score(model, tmp.File("b"), "--samples", "40", "--no-control");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("10 of 40 rows already collected", r.Stderr);
        Assert.Contains("collected 30 row(s)", r.Stdout);
        Assert.Equal(finished, File.ReadAllBytes(Path.Combine(tmp.File("b"), "activations.safetensors")));
        Assert.False(File.Exists(partial));
    }

    [SkippableFact]
    public void RowLongerThanTheContext_IsAnErrorNamingFileAndLine_SkipBadSkipsAndCountsIt()
    {
        string model = Stories260K;
        using var tmp = new TempDir();
        var lines = File.ReadLines(Shipped).Take(6).ToList();
        string longStory = string.Join(" ", Enumerable.Repeat("Tom had a red ball and a blue kite.", 80)); // ~800 tokens > 512
        lines.Insert(2, System.Text.Json.JsonSerializer.Serialize(new { context = longStory, question = "Who had a ball?", answer = "Tom", label = "gold" }));
        string data = tmp.File("long.jsonl");
        File.WriteAllLines(data, lines);

        var r = CliRunner.Run("score", model, "--data", data, "--out", tmp.File("o"));
        Assert.Equal(UserError.ExitCode, r.ExitCode);
        Assert.Contains($"{data} line 3", r.Stderr);
        Assert.Contains("context of 512", r.Stderr);
        Assert.False(File.Exists(Path.Combine(tmp.File("o"), "activations.safetensors")));

        var s = CliRunner.Run("score", model, "--data", data, "--out", tmp.File("o"), "--skip-bad", "--folds", "2", "--no-control");
        Assert.True(s.ExitCode == 0, s.Stderr);
        Assert.Contains("skipped 1 bad row(s)", s.Stdout);
        ProvenanceAssert.In(tmp.File("o/manifest.json"), [("folds", 42)], [("activations", tmp.File("o/activations.safetensors"))]);
        var set = ActivationSet.Load(Path.Combine(tmp.File("o"), "activations.safetensors"), null);
        Assert.Equal(6, set.Rows);
        Assert.DoesNotContain(2L, set.RowIds);
        Assert.Contains("\"line\":3", set.Metadata["skipped_rows"]);
    }

    [SkippableFact]
    public void HaluEvalItems_GroupFoldsItem_KeepsEachItemsTwoRowsInOneFold_AlsoAfterASkippedRow()
    {
        string model = Stories260K;
        using var tmp = new TempDir();
        string longStory = string.Join(" ", Enumerable.Repeat("Tom had a red ball and a blue kite.", 80));
        var items = Enumerable.Range(0, 9).Select(i => System.Text.Json.JsonSerializer.Serialize(new
        {
            knowledge = i == 3 ? longStory : $"Lily had {i + 2} red apples and a cat.",
            question = $"How many apples did Lily have in story {i}?",
            right_answer = $"{i + 2}",
            hallucinated_answer = $"{i + 5}",
        }));
        string data = tmp.File("halueval.jsonl");
        File.WriteAllLines(data, items);

        var r = CliRunner.Run("score", model, "--data", data, "--out", tmp.File("o"), "--skip-bad", "--folds", "4", "--no-control", "--group-folds", "item");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("4-fold by item", r.Stdout);
        var set = ActivationSet.Load(Path.Combine(tmp.File("o"), "activations.safetensors"), null);
        Assert.Equal(16, set.Rows);   // item 3's two rows exceed the context and are skipped
        var folds = Manifest(tmp.File("o"))["folds"]!;
        Assert.Equal("item", (string?)folds["grouping"]);
        var foldOfRow = folds["fold_of_row"]!.AsArray().Select(f => (int)f!).ToArray();
        for (int i = 0; i < set.Rows; i += 2)
        {
            Assert.Equal(set.RowIds[i] + 1, set.RowIds[i + 1]);
            Assert.Equal(foldOfRow[i], foldOfRow[i + 1]);
        }
    }

    /// <summary>
    /// Issue 4's claim on the shipped TinyStories-style context-QA set (gold vs swapped name, scored with the
    /// set's story template): every real model's Truth-Score map differs from chance (one-sided binomial per
    /// head vs the majority share, Bonferroni alpha 0.01 over all heads), the shuffled-label control map does
    /// not, the surface baseline on the answers' text stays near 0.5, and a rerun with the same seed (the model
    /// run again, not reused) writes byte-identical files.
    /// </summary>
    [SkippableTheory]
    [InlineData("stories260K", "stories260K.bin")]
    [InlineData("babyllama-128d-tok105", "model5000.bin")]
    [InlineData("babyllama-128d-tok361", "model5000.bin")]
    public void RealModel_ShippedSet_MapDiffersFromChance_ControlDoesNot_SurfaceNearHalf_RerunByteIdentical(string folder, string file)
    {
        string model = SharedData.Path("models", folder, file);
        using var tmp = new TempDir();
        foreach (string run in new[] { "a", "b" })
        {
            var r = Score(model, tmp.File(run), "--template", ContextQaGenerator.Template);
            Assert.True(r.ExitCode == 0, r.Stderr);
        }
        foreach (string f in ScoreFiles)
            Assert.True(File.ReadAllBytes(Path.Combine(tmp.File("a"), f)).SequenceEqual(File.ReadAllBytes(Path.Combine(tmp.File("b"), f))), $"{folder}: {f} differs between same-seed runs");
        Assert.Equal(ManifestWithoutRunFields(tmp.File("a")), ManifestWithoutRunFields(tmp.File("b")));

        var m = Manifest(tmp.File("a"));
        Assert.Equal(1000, (int)m["activations"]!["rows"]!);
        Assert.True((bool)m["chance"]!["differs_from_chance"]!, $"{folder}: {m["chance"]}");

        var set = ActivationSet.Load(Path.Combine(tmp.File("a"), "activations.safetensors"), null);
        Assert.Equal(ContextQaGenerator.Template, set.Metadata["template"]);
        var control = ChanceTest.Run(ScoresCsvColumn(tmp.File("a"), "control_accuracy"), set.Labels.ToArray());
        Assert.False(control.DiffersFromChance, $"{folder}: shuffled-label control passed the chance test ({control})");
        Assert.InRange((double)m["control"]!["mean_accuracy"]!, 0.45, 0.55);

        // Gold and swapped names share one pool and one form: the answers alone do not give the label away.
        Assert.InRange((double)m["surface_baseline"]!["accuracy"]!, 0.4, 0.6);
    }

    private static double[] ScoresCsvColumn(string dir, string column)
    {
        var lines = File.ReadAllLines(Path.Combine(dir, "scores.csv"));
        int index = Array.IndexOf(lines[0].Split(','), column);
        return lines.Skip(1).Select(l => double.Parse(l.Split(',')[index], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
    }

    /// <summary>
    /// The reference solver's 200 Adam steps of at most lr each cannot grow weights large enough for these
    /// models' small activations (sd ~0.1), so it underfits: on a label the models plainly encode (is the answer
    /// one of the first five names?) we require the same head ranking tendency (Pearson r &gt; 0.3) and the
    /// exact solver at least as accurate on average, not equal scores.
    /// </summary>
    [SkippableTheory]
    [InlineData("stories260K", "stories260K.bin")]
    [InlineData("babyllama-128d-tok105", "model5000.bin")]
    [InlineData("babyllama-128d-tok361", "model5000.bin")]
    public void RealModel_EncodedLabel_ExactAndReferenceSolverMapsCorrelate_ExactIsNoLessAccurate(string folder, string file)
    {
        string model = SharedData.Path("models", folder, file);
        using var tmp = new TempDir();
        var r = Score(model, tmp.File("o"), "--samples", "200", "--no-control");
        Assert.True(r.ExitCode == 0, r.Stderr);
        string acts = Path.Combine(tmp.File("o"), "activations.safetensors");
        var set = ActivationSet.Load(acts, null);
        string[] firstFive = ["Lily", "Tom", "Ben", "Mia", "Sam"];
        Npy.WriteInt64(tmp.File("names.npy"), set.Answers!.Select(a => firstFive.Contains(a) ? 1L : 0L).ToArray(), set.Rows);

        Assert.Equal(0, CliRunner.Run("probe", "--activations", acts, "--labels", tmp.File("names.npy"), "--out", tmp.File("exact"), "--no-control").ExitCode);
        Assert.Equal(0, CliRunner.Run("probe", "--activations", acts, "--labels", tmp.File("names.npy"), "--out", tmp.File("ref"), "--solver", "reference", "--no-control").ExitCode);
        double[] exact = Npy.Read(tmp.File("exact/scores.npy")).Data, reference = Npy.Read(tmp.File("ref/scores.npy")).Data;
        double pearson = TruthProbe.Statistics.Correlation.Pearson(exact, reference);
        Assert.True(pearson > 0.3, $"{folder}: exact and reference maps correlate only r = {pearson:0.000}");
        Assert.True(exact.Average() >= reference.Average(), $"{folder}: exact mean {exact.Average():0.000} < reference mean {reference.Average():0.000}");
    }
}
