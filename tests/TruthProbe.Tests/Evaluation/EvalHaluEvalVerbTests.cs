using System.Text.Json;
using TruthProbe.Formats;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Evaluation;

/// <summary>
/// End to end on stories260K: far too small to judge hallucinations, so these runs only show that the
/// pipeline runs, that gating changes the replies, and that everything is deterministic.
/// </summary>
public class EvalHaluEvalVerbTests
{
    /// <summary>Rows in the HaluEval-QA layout, short enough for stories260K's 512-token context.</summary>
    internal static string ShortRows(TempDir tmp, int count = 4)
    {
        string[] names = ["Lily", "Tom", "Sue", "Ben", "Max", "Mia"];
        string[] colors = ["red", "blue", "green", "pink", "yellow", "brown"];
        var lines = Enumerable.Range(0, count).Select(i => JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["knowledge"] = $"{names[i % 6]} had a {colors[i % 6]} ball. The ball was big.",
            ["question"] = $"What color was the ball of {names[i % 6]}?",
            ["right_answer"] = colors[i % 6],
            ["hallucinated_answer"] = $"The ball was {colors[(i + 1) % 6]} and small.",
        }));
        string path = tmp.File("short.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    /// <summary>A score map of stories260K's shape (5 layers x 8 heads) with a spread of values.</summary>
    internal static string Scores(TempDir tmp, double nanAt = -1)
    {
        var values = Enumerable.Range(0, 40).Select(i => 0.5 + 0.45 * Math.Sin(i * 1.7)).ToArray();
        if (nanAt >= 0) values[(int)nanAt] = double.NaN;
        string path = tmp.File(nanAt >= 0 ? "nan.npy" : "scores.npy");
        Npy.WriteFloat64(path, values, 5, 8);
        return path;
    }

    private static string Model() => SharedData.Path("models", "stories260K", "stories260K.bin");

    [SkippableFact]
    public void Stories260K_GatedRun_WritesItemsAndMetrics_ChangesReplies_AndIsDeterministic()
    {
        string model = Model();
        using var tmp = new TempDir();
        string data = ShortRows(tmp), scores = Scores(tmp);
        string[] argv = ["eval", "halueval", model, "--data", data, "--skip-first", "0", "--seeds", "1,2",
            "--scores", scores, "--mode", "contrast", "--lambda", "6", "--site", "o-proj-out"];
        var first = CliRunner.Run([.. argv, "--out", tmp.File("a")]);
        Assert.True(first.ExitCode == 0, first.Stderr);
        Assert.Contains("gated - vanilla", first.Stdout);
        Assert.Contains("McNemar exact p", first.Stdout);

        var items = File.ReadAllLines(tmp.File("a/items.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(8, items.Count); // 4 rows x 2 seeds
        Assert.All(items, i => Assert.StartsWith("USER: You are a huallucination detector.", i.GetProperty("prompt").GetString()));
        Assert.Contains(items, i => i.GetProperty("vanilla").GetProperty("reply").GetString() != i.GetProperty("gated").GetProperty("reply").GetString());
        Assert.All(items, i => Assert.Equal(i.GetProperty("answer_shown").GetString() == "hallucinated" ? "yes" : "no", i.GetProperty("label").GetString()));
        foreach (string condition in (string[])["vanilla", "gated"])
        {
            int unparseable = items.Count(i => !i.GetProperty(condition).GetProperty("parseable").GetBoolean());
            if (unparseable > 0) Assert.Contains($"warning: {condition}: {unparseable} of 8 replies", first.Stdout);
            else Assert.DoesNotContain($"warning: {condition}:", first.Stdout);
        }

        using var metrics = JsonDocument.Parse(File.ReadAllText(tmp.File("a/metrics.json")));
        var root = metrics.RootElement;
        Assert.Equal("o-proj-out", root.GetProperty("gating").GetProperty("gate_site").GetString());
        ProvenanceAssert.In(tmp.File("a/metrics.json"), [("eval_0", 1), ("eval_1", 2)], [("data", data), ("scores", scores)]);
        Assert.Equal(2, root.GetProperty("gated").GetProperty("per_seed").GetArrayLength());
        // The per-seed confusion matrix agrees with the items file.
        var seed1 = root.GetProperty("vanilla").GetProperty("per_seed")[0];
        int correct = items.Count(i => i.GetProperty("seed").GetInt32() == 1 && i.GetProperty("vanilla").GetProperty("correct").GetBoolean());
        Assert.Equal(100.0 * correct / 4, seed1.GetProperty("accuracy").GetDouble(), 9);

        var second = CliRunner.Run([.. argv, "--out", tmp.File("b")]);
        Assert.Equal(0, second.ExitCode);
        Assert.Equal(File.ReadAllText(tmp.File("a/items.jsonl")), File.ReadAllText(tmp.File("b/items.jsonl")));
    }

    [SkippableFact]
    public void Stories260K_LambdaSweep_TunesOnTwentyPercent_ReportsTheRest()
    {
        string model = Model();
        using var tmp = new TempDir();
        string data = ShortRows(tmp, 5), scores = Scores(tmp);
        var run = CliRunner.Run("eval", "halueval", model, "--data", data, "--skip-first", "0", "--seeds", "1",
            "--scores", scores, "--mode", "contrast", "--lambda-sweep", "0,6", "--out", tmp.File("o"));
        Assert.True(run.ExitCode == 0, run.Stderr);
        using var metrics = JsonDocument.Parse(File.ReadAllText(tmp.File("o/metrics.json")));
        var sweep = metrics.RootElement.GetProperty("lambda_sweep");
        ProvenanceAssert.In(tmp.File("o/metrics.json"), [("eval_0", 1), ("lambda_split", 42)], [("data", data), ("scores", scores)]);
        Assert.Equal(1, sweep.GetProperty("tuning_rows").GetInt32());
        Assert.Equal(2, sweep.GetProperty("candidates").GetArrayLength());
        var f1 = sweep.GetProperty("candidates").EnumerateArray().Select(c => c.GetProperty("tuning_f1_mean").GetDouble()).ToList();
        Assert.Equal(f1[0] == f1[1], run.Stdout.Contains("warning: lambda sweep: candidates 0, 6 tie"));
        int tuningRow = sweep.GetProperty("tuning_row_ids")[0].GetInt32();
        var ids = File.ReadAllLines(tmp.File("o/items.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetInt32()).ToList();
        Assert.Equal(4, ids.Count);
        Assert.DoesNotContain(tuningRow, ids);
        Assert.Equal(sweep.GetProperty("chosen_lambda").GetDouble().ToString(System.Globalization.CultureInfo.InvariantCulture),
            metrics.RootElement.GetProperty("gating").GetProperty("lambda").GetString());
    }

    [SkippableFact]
    public void RealHaluEvalRows_ExceedStories260KContext_ClearErrorOrCountedSkip()
    {
        string model = Model();
        string data = SharedData.Path("data", "halueval", "qa_data_first1000.jsonl");
        using var tmp = new TempDir();
        var run = CliRunner.Run("eval", "halueval", model, "--data", data, "--limit", "2", "--out", tmp.File("o"));
        Assert.Equal(2, run.ExitCode);
        Assert.Contains(":293: the prompt of row 292 is", run.Stderr);
        Assert.Contains("context of 512", run.Stderr);
        Assert.False(Directory.Exists(tmp.File("o")));
        var skipped = CliRunner.Run("eval", "halueval", model, "--data", data, "--limit", "2", "--skip-long", "--out", tmp.File("o"));
        Assert.Equal(2, skipped.ExitCode);
        Assert.Contains("every selected row was too long", skipped.Stderr);
    }

    [SkippableTheory]
    [InlineData("shape")]
    [InlineData("nan")]
    [InlineData("lambda")]
    [InlineData("missing-field")]
    [InlineData("sweep-with-lambda")]
    public void BadInput_FailsWithOneClearError(string kind)
    {
        string model = Model();
        using var tmp = new TempDir();
        string data = ShortRows(tmp);
        string[] common = ["eval", "halueval", model, "--skip-first", "0", "--out", tmp.File("o")];
        (string[] extra, string expected) = kind switch
        {
            "shape" => (new[] { "--data", data, "--scores", SharedData.Path("truth_scores", "vicuna_halueval_292.npy"), "--mode", "contrast", "--lambda", "4.5" },
                "are 32 layers x 32 heads, but"),
            "nan" => (new[] { "--data", data, "--scores", Scores(tmp, nanAt: 13), "--mode", "contrast", "--lambda", "4.5" }, "layer 1, head 5 is NaN"),
            "lambda" => (new[] { "--data", data, "--scores", Scores(tmp), "--mode", "contrast", "--lambda", "four" }, "--lambda must be a finite number, got 'four'"),
            "missing-field" => (new[] { "--data", WriteMissingField(tmp) }, "missing.jsonl:2: row is missing field 'right_answer'"),
            _ => (new[] { "--data", data, "--scores", Scores(tmp), "--mode", "contrast", "--lambda", "3", "--lambda-sweep", "0,3" }, "give --lambda or --lambda-sweep, not both"),
        };
        var run = CliRunner.Run([.. common, .. extra]);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains(expected, run.Stderr);
        Assert.Single(run.Stderr.Trim().Split('\n'));
        Assert.False(Directory.Exists(tmp.File("o")));
    }

    private static string WriteMissingField(TempDir tmp)
    {
        string path = tmp.File("missing.jsonl");
        File.WriteAllLines(path, [
            "{\"knowledge\": \"k\", \"question\": \"q\", \"right_answer\": \"a\", \"hallucinated_answer\": \"b\"}",
            "{\"knowledge\": \"k\", \"question\": \"q\", \"hallucinated_answer\": \"b\"}",
        ]);
        return path;
    }
}
