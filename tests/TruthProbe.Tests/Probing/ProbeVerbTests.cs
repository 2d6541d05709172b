using System.Text.Json.Nodes;
using System.Text;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Probing;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Probing;

public class ProbeVerbTests
{
    private static readonly double[] Planted = [0, 0, 0.5, 1, 1.5, 2.5];

    /// <summary>Writes [N, L, H, D] float32 activations and labels the way numpy would (float64 labels).</summary>
    private static (string Acts, string Labels, ActivationSet Set) NpyInputs(TempDir tmp, int rows = 200)
    {
        var set = SyntheticActivations.Planted(rows, 2, 3, 8, Planted, seed: 4);
        string acts = tmp.File("acts.npy"), labels = tmp.File("labels.npy");
        Npy.WriteFloat32(acts, set.Values, rows, 2, 3, 8);
        Npy.WriteFloat64(labels, set.Labels.Select(b => (double)b).ToArray(), rows);
        return (acts, labels, set);
    }

    /// <summary>A numpy bool array laid out by hand ('|b1'), independent of our writer.</summary>
    private static void WriteBoolNpy(string path, byte[] values)
    {
        string dict = $"{{'descr': '|b1', 'fortran_order': False, 'shape': ({values.Length},), }}";
        dict = dict.PadRight(64 - 10 - 1) + "\n";
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)dict.Length, 0 };
        bytes.AddRange(Encoding.Latin1.GetBytes(dict));
        bytes.AddRange(values);
        File.WriteAllBytes(path, bytes.ToArray());
    }

    private static JsonNode Manifest(string dir) => JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "manifest.json")))!;

    [Fact]
    public void Npy_WritesAllOutputs_CsvInReferenceColumns_NpyShapeLH_PlantedHeadsOnTop()
    {
        using var tmp = new TempDir();
        var (acts, labels, _) = NpyInputs(tmp);
        string outDir = tmp.File("out");
        var r = CliRunner.Run("probe", "--activations", acts, "--labels", labels, "--out", outDir);
        Assert.True(r.ExitCode == 0, r.Stderr);
        ProvenanceAssert.In(Path.Combine(outDir, "manifest.json"), [("folds", 42), ("control", 43)], [("activations", acts), ("labels", labels)]);
        Assert.Matches(@"; \d+ heads above chance, surface baseline n/a \(no answer texts\)", r.Stdout);

        string[] csv = File.ReadAllLines(Path.Combine(outDir, "scores.csv"));
        Assert.Equal("layer,head,accuracy,precision,recall,f1,auroc,control_accuracy,selectivity,accuracy_low,accuracy_high,p_chance,q_chance,p_surface,accuracy_fold_sd", csv[0]);
        Assert.Equal(7, csv.Length);
        Assert.StartsWith("0,0,", csv[1]);
        Assert.StartsWith("1,2,", csv[6]);   // layer-major

        var map = Npy.Read(Path.Combine(outDir, "scores.npy"));
        Assert.Equal([2, 3], map.Shape);
        Assert.Equal("<f8", map.DType);
        Assert.Equal(double.Parse(csv[6].Split(',')[2], System.Globalization.CultureInfo.InvariantCulture), map.Data[5]);
        Assert.True(map.Data[5] > 0.9 && map.Data[0] < 0.6, $"planted 2.5 -> {map.Data[5]}, planted 0 -> {map.Data[0]}");

        using (var weights = SafetensorsFile.Open(Path.Combine(outDir, "probe_weights.safetensors")))
        {
            Assert.Equal([2L, 3, 8], weights.Get("weight").Shape);
            Assert.Equal([2L, 3], weights.Get("bias").Shape);
        }
        var png = File.ReadAllBytes(Path.Combine(outDir, "heatmap.png"));
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);

        var m = Manifest(outDir);
        Assert.Equal("exact", (string?)m["solver"]!["name"]);
        Assert.Equal(42, (int)m["folds"]!["seed"]!);
        Assert.Equal(Hashing.Sha256File(acts), (string?)m["activations"]!["sha256"]);
        Assert.Equal(Hashing.Sha256File(labels), (string?)m["labels"]!["sha256"]);
        Assert.True((bool)m["chance"]!["differs_from_chance"]!);
        Assert.False((bool)m["surface_baseline"]!["available"]!);
        // shuffled labels carry no signal: the control sits near 0.5 and the strong head is highly selective
        Assert.InRange((double)m["control"]!["mean_accuracy"]!, 0.38, 0.62);
        Assert.True(double.Parse(csv[6].Split(',')[8], System.Globalization.CultureInfo.InvariantCulture) > 0.3);
    }

    [Fact]
    public void SameSeed_RerunGivesByteIdenticalFiles_ExceptTimings()
    {
        using var tmp = new TempDir();
        var (acts, labels, _) = NpyInputs(tmp, rows: 120);
        foreach (string dir in new[] { "a", "b" })
            Assert.Equal(0, CliRunner.Run("probe", "--activations", acts, "--labels", labels, "--out", tmp.File(dir), "--seed", "7").ExitCode);
        foreach (string file in new[] { "scores.csv", "scores.npy", "probe_weights.safetensors", "heatmap.png" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(tmp.File("a"), file)), File.ReadAllBytes(Path.Combine(tmp.File("b"), file)));
        var ma = Manifest(tmp.File("a")).AsObject();
        var mb = Manifest(tmp.File("b")).AsObject();
        ma.Remove("timings_s");
        mb.Remove("timings_s");
        Assert.Equal(ma.ToJsonString(), mb.ToJsonString());

        Assert.Equal(0, CliRunner.Run("probe", "--activations", acts, "--labels", labels, "--out", tmp.File("c"), "--seed", "8").ExitCode);
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(tmp.File("a"), "scores.csv")), File.ReadAllBytes(Path.Combine(tmp.File("c"), "scores.csv")));
    }

    [Fact]
    public void BoolAndIntLabels_GiveTheSameScoresAsFloatLabels()
    {
        using var tmp = new TempDir();
        var (acts, labels, set) = NpyInputs(tmp, rows: 100);
        WriteBoolNpy(tmp.File("bool.npy"), set.Labels);
        Npy.WriteInt64(tmp.File("int.npy"), set.Labels.Select(b => (long)b).ToArray(), 100);
        foreach (var (name, file) in new[] { ("f", labels), ("b", tmp.File("bool.npy")), ("i", tmp.File("int.npy")) })
            Assert.Equal(0, CliRunner.Run("probe", "--activations", acts, "--labels", file, "--out", tmp.File(name), "--no-control").ExitCode);
        string expected = File.ReadAllText(Path.Combine(tmp.File("f"), "scores.csv"));
        Assert.Equal(expected, File.ReadAllText(Path.Combine(tmp.File("b"), "scores.csv")));
        Assert.Equal(expected, File.ReadAllText(Path.Combine(tmp.File("i"), "scores.csv")));
    }

    [Fact]
    public void NoSignal_IsReportedAtChance_WithAWarning()
    {
        using var tmp = new TempDir();
        var set = SyntheticActivations.Planted(150, 2, 2, 8, [0, 0, 0, 0], seed: 21);
        set.Save(tmp.File("acts.safetensors"));
        var r = CliRunner.Run("probe", "--activations", tmp.File("acts.safetensors"), "--out", tmp.File("out"));
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("chance level", r.Stdout);
        var m = Manifest(tmp.File("out"));
        Assert.False((bool)m["chance"]!["differs_from_chance"]!);
        Assert.Contains("chance level", (string?)m["chance"]!["warning"]);
    }

    [Fact]
    public void Safetensors_WithAnswers_RunsTheSurfaceBaseline_WhichSeesLengthCues()
    {
        using var tmp = new TempDir();
        var noise = SyntheticActivations.Planted(200, 1, 2, 8, [0, 0.5], seed: 8);
        // HaluEval's trap in miniature: gold answers short, hallucinated answers long.
        string[] answers = noise.Labels.Select((y, i) => y == 1 ? $"word{i % 7}" : $"a much longer made up answer number {i % 5}").ToArray();
        var set = new ActivationSet(noise.Rows, 1, 2, 8, noise.Values, noise.Labels, noise.RowIds,
            new Dictionary<string, string> { ["model"] = "synthetic" }, answers);
        set.Save(tmp.File("acts.safetensors"));
        var r = CliRunner.Run("probe", "--activations", tmp.File("acts.safetensors"), "--out", tmp.File("out"), "--no-control");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var m = Manifest(tmp.File("out"));
        Assert.True((bool)m["surface_baseline"]!["available"]!);
        Assert.True((double)m["surface_baseline"]!["accuracy"]! > 0.95);
        Assert.Equal(0, (int)m["surface_baseline"]!["heads_above_surface"]!);
        Assert.Equal("synthetic", (string?)m["activations"]!["metadata"]!["model"]);
        Assert.Null(m["control"]);
    }

    [Fact]
    public void ReferenceSolver_IsRecordedWithItsSettings()
    {
        using var tmp = new TempDir();
        var (acts, labels, _) = NpyInputs(tmp, rows: 60);
        Assert.Equal(0, CliRunner.Run("probe", "--activations", acts, "--labels", labels, "--out", tmp.File("o"), "--solver", "reference", "--no-control").ExitCode);
        var s = Manifest(tmp.File("o"))["solver"]!;
        Assert.Equal("reference", (string?)s["name"]);
        Assert.Equal(200, (int)s["epochs"]!);
        Assert.Equal(512, (int)s["batch_size"]!);
    }

    [Theory]
    [InlineData("count")]
    [InlineData("rank")]
    [InlineData("value")]
    [InlineData("single-class")]
    [InlineData("missing-labels")]
    [InlineData("solver")]
    public void BadInput_IsOneClearErrorNamingTheFile_AndWritesNothing(string defect)
    {
        using var tmp = new TempDir();
        var (acts, labels, set) = NpyInputs(tmp, rows: 50);
        string[] argv = ["probe", "--activations", acts, "--labels", labels, "--out", tmp.File("out")];
        string expected;
        switch (defect)
        {
            case "count":
                Npy.WriteFloat64(labels, new double[49], 49);
                expected = "49 labels but";
                break;
            case "rank":
                Npy.WriteFloat32(acts, set.Values, 50, 6, 8);
                expected = "rank 4 [N, L, H, D]";
                break;
            case "value":
                Npy.WriteFloat64(labels, Enumerable.Range(0, 50).Select(i => i == 17 ? 2.0 : i % 2).ToArray(), 50);
                expected = "label #17 is 2";
                break;
            case "single-class":
                Npy.WriteFloat64(labels, Enumerable.Repeat(1.0, 50).ToArray(), 50);
                expected = "needs both classes";
                break;
            case "missing-labels":
                argv = ["probe", "--activations", acts, "--out", tmp.File("out")];
                expected = "give a labels .npy (1 = gold, 0 = hallucinated) (--labels)";
                break;
            default:
                argv = [.. argv, "--solver", "sgd"];
                expected = "--solver must be 'exact' or 'reference'";
                break;
        }
        var r = CliRunner.Run(argv);
        Assert.Equal(UserError.ExitCode, r.ExitCode);
        Assert.Contains(expected, r.Stderr);
        if (defect is "count" or "value") Assert.Contains("labels.npy", r.Stderr);
        if (defect is "rank" or "missing-labels") Assert.Contains("acts.npy", r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.False(Directory.Exists(tmp.File("out")));
    }

    /// <summary>
    /// Twin rows: each item's gold and hallucinated rows share one random vector and differ only by small
    /// noise, so nothing in them tells truth from hallucination. Row-level folds put most validation rows'
    /// twins in training with the opposite label, and a probe that interpolates the items scores below
    /// chance; item-level folds give chance.
    /// </summary>
    private static (string Acts, string Labels, string Groups) TwinInputs(TempDir tmp, int items = 120, int dim = 48)
    {
        var rng = new SeededRandom(7);
        var values = new float[items * 2 * dim];
        var labels = new double[items * 2];
        var groups = new long[items * 2];
        for (int i = 0; i < items; i++)
        {
            var shared = Enumerable.Range(0, dim).Select(_ => rng.NextGaussian()).ToArray();
            for (int twin = 0; twin < 2; twin++)
            {
                int row = 2 * i + twin;
                for (int k = 0; k < dim; k++) values[row * dim + k] = (float)(shared[k] + 0.05 * rng.NextGaussian());
                labels[row] = twin;
                groups[row] = 1000 + i;
            }
        }
        string acts = tmp.File("twins.npy"), labelsPath = tmp.File("twin_labels.npy"), groupsPath = tmp.File("twin_groups.npy");
        Npy.WriteFloat32(acts, values, items * 2, 1, 1, dim);
        Npy.WriteFloat64(labelsPath, labels, items * 2);
        Npy.WriteInt64(groupsPath, groups, items * 2);
        return (acts, labelsPath, groupsPath);
    }

    [Fact]
    public void TwinRows_RowFoldsScoreBelowChance_ItemFoldsAtChance()
    {
        using var tmp = new TempDir();
        var (acts, labels, groups) = TwinInputs(tmp);
        Assert.Equal(0, CliRunner.Run("probe", "--activations", acts, "--labels", labels, "--out", tmp.File("rows"), "--no-control").ExitCode);
        Assert.Equal(0, CliRunner.Run("probe", "--activations", acts, "--labels", labels, "--out", tmp.File("items"), "--no-control",
            "--group-folds", "item", "--groups", groups).ExitCode);
        double rows = Manifest(tmp.File("rows"))["summary"]!["mean_accuracy"]!.GetValue<double>();
        double items = Manifest(tmp.File("items"))["summary"]!["mean_accuracy"]!.GetValue<double>();
        // 240 rows at p = 0.5: two binomial standard deviations are 0.065.
        Assert.True(rows < 0.4, $"row folds: {rows:0.000}");
        Assert.InRange(items, 0.435, 0.565);
        var grouping = Manifest(tmp.File("items"))["folds"]!;
        Assert.Equal("item", grouping["grouping"]!.GetValue<string>());
        var foldOfRow = grouping["fold_of_row"]!.AsArray().Select(f => f!.GetValue<int>()).ToArray();
        for (int i = 0; i < foldOfRow.Length; i += 2) Assert.Equal(foldOfRow[i], foldOfRow[i + 1]);
    }

    [Fact]
    public void GroupFolds_WithoutItems_OrWithGroupsOfTheWrongLength_IsAUserError()
    {
        using var tmp = new TempDir();
        var (acts, labels, _) = NpyInputs(tmp, rows: 60);
        var noItems = CliRunner.Run("probe", "--activations", acts, "--labels", labels, "--out", tmp.File("a"), "--group-folds", "item");
        Assert.Equal(2, noItems.ExitCode);
        Assert.Contains("or an item id per row (.npy) (--groups)", noItems.Stderr);
        string shortGroups = tmp.File("short.npy");
        Npy.WriteInt64(shortGroups, new long[59], 59);
        var wrong = CliRunner.Run("probe", "--activations", acts, "--labels", labels, "--out", tmp.File("b"), "--group-folds", "item", "--groups", shortGroups);
        Assert.Equal(2, wrong.ExitCode);
        Assert.Contains("short.npy", wrong.Stderr);
        Assert.False(Directory.Exists(tmp.File("b")) && Directory.EnumerateFiles(tmp.File("b")).Any(), "no output on bad input");
    }
}

public class ProbeVerbDataTests
{
    [Fact]
    public void NpyWithData_RunsTheSurfaceBaseline_AndMismatchedRowsAreAnError()
    {
        using var tmp = new TempDir();
        var set = SyntheticActivations.Planted(40, 1, 2, 4, [0, 1], seed: 2);
        Npy.WriteFloat32(tmp.File("a.npy"), set.Values, 40, 1, 2, 4);
        Npy.WriteFloat64(tmp.File("y.npy"), set.Labels.Select(b => (double)b).ToArray(), 40);
        // gold answers one word, hallucinated three: the surface baseline must see it
        File.WriteAllLines(tmp.File("rows.jsonl"), set.Labels.Select((y, i) => System.Text.Json.JsonSerializer.Serialize(new
        {
            context = "c", question = "q", answer = y == 1 ? "yes" : $"no not really {i}", label = y == 1 ? "gold" : "hallucinated",
        })));
        var r = CliRunner.Run("probe", "--activations", tmp.File("a.npy"), "--labels", tmp.File("y.npy"), "--data", tmp.File("rows.jsonl"), "--out", tmp.File("o"), "--no-control");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var m = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(tmp.File("o/manifest.json")))!;
        Assert.True((double)m["surface_baseline"]!["accuracy"]! > 0.95);

        var bad = CliRunner.Run("probe", "--activations", tmp.File("a.npy"), "--labels", tmp.File("y.npy"), "--data", tmp.File("rows.jsonl"), "--samples", "30", "--out", tmp.File("p"));
        Assert.Equal(UserError.ExitCode, bad.ExitCode);
        Assert.Contains("30 rows but", bad.Stderr);
        File.AppendAllLines(tmp.File("rows.jsonl"), ["""{"context": "c", "question": "q", "answer": "extra", "label": "gold"}"""]);
        var extra = CliRunner.Run("probe", "--activations", tmp.File("a.npy"), "--labels", tmp.File("y.npy"), "--data", tmp.File("rows.jsonl"), "--out", tmp.File("q"));
        Assert.Equal(UserError.ExitCode, extra.ExitCode);
        Assert.Contains("41 rows but", extra.Stderr);
    }

}
