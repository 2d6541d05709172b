using System.Text.Json;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Evaluation;

public class PopeScorerTests
{
    [Theory]
    [InlineData("Yes", PopeAnswer.Yes)]
    [InlineData("  yes, there is a dog.", PopeAnswer.Yes)]
    [InlineData("No.", PopeAnswer.No)]
    [InlineData("NO", PopeAnswer.No)]
    [InlineData("Nope", PopeAnswer.Unknown)]
    [InlineData("None", PopeAnswer.Unknown)]
    [InlineData("There is no dog.", PopeAnswer.Unknown)]
    [InlineData("", PopeAnswer.Unknown)]
    public void StrictParse_ReplyMustStartWithTheWord(string reply, PopeAnswer expected) =>
        Assert.Equal(expected, PopeScorer.Parse(reply, PopeParse.Strict));

    // Expected values follow POPE's evaluate.py by hand: first sentence, commas dropped, split on ' ',
    // "no" iff a word is exactly "No", "not" or "no".
    [Theory]
    [InlineData("There is no dog.", PopeAnswer.No)]
    [InlineData("I think yes, but no.", PopeAnswer.No)]
    [InlineData("No, there is not.", PopeAnswer.No)]
    [InlineData("Yes. There is no dog.", PopeAnswer.Yes)]
    [InlineData("There is a dog, not a cat", PopeAnswer.No)]
    [InlineData("Not sure", PopeAnswer.Yes)]
    [InlineData("NO", PopeAnswer.Yes)]
    [InlineData("Nobody knows", PopeAnswer.Yes)]
    [InlineData("no.", PopeAnswer.No)]
    [InlineData("", PopeAnswer.Yes)]
    public void PopeParse_FollowsPopeEvaluateScript(string reply, PopeAnswer expected) =>
        Assert.Equal(expected, PopeScorer.Parse(reply, PopeParse.Pope));

    [Theory]
    [InlineData("There is no dog.", PopeAnswer.No)]
    [InlineData("I think YES, but no.", PopeAnswer.Yes)]
    [InlineData("Nope, nobody knows; yes.", PopeAnswer.Yes)]
    [InlineData("Not sure", PopeAnswer.Unknown)]
    [InlineData("eyes closed, no", PopeAnswer.No)]
    [InlineData("", PopeAnswer.Unknown)]
    public void FirstParse_TakesTheFirstWholeWordYesOrNo(string reply, PopeAnswer expected) =>
        Assert.Equal(expected, PopeScorer.Parse(reply, PopeParse.First));

    private static void WriteSplit(TempDir tmp, string name, (bool GoldYes, string Reply)[] rows)
    {
        File.WriteAllLines(tmp.File(name + ".jsonl"), rows.Select((r, i) =>
            JsonSerializer.Serialize(new { question_id = i + 1, image = "x.jpg", text = "Is there a dog in the image?", label = r.GoldYes ? "yes" : "no" })));
        File.WriteAllLines(tmp.File(name + "_answers.jsonl"), rows.Select((r, i) => JsonSerializer.Serialize(new { question_id = i + 1, text = r.Reply })));
    }

    // Split A: gold yes -> Yes, Yes, Yes, No, maybe (TP 3, FN 1, unknown 1); gold no -> No, No, Yes, No, ? (TN 3, FP 1, unknown 1).
    private static readonly (bool, string)[] SplitA =
    [
        (true, "Yes"), (true, "yes."), (true, "Yes, there is."), (true, "No"), (true, "maybe"),
        (false, "No"), (false, "no, there is not"), (false, "Yes"), (false, "No."), (false, "I don't know"),
    ];

    // Split B: gold yes -> Yes, Yes (TP 2); gold no -> Yes, No (FP 1, TN 1).
    private static readonly (bool, string)[] SplitB = [(true, "Yes"), (true, "Yes"), (false, "Yes"), (false, "No")];

    [Fact]
    public void HandMadeSplits_MatchHandComputedConfusionMetrics_PerSplitAndPooled()
    {
        using var tmp = new TempDir();
        WriteSplit(tmp, "a", SplitA);
        WriteSplit(tmp, "b", SplitB);
        var r = CliRunner.Run("eval", "pope", "--questions", tmp.File("a.jsonl"), "--answers", tmp.File("a_answers.jsonl"),
            "--questions", tmp.File("b.jsonl"), "--answers", tmp.File("b_answers.jsonl"), "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("pooled", r.Stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(tmp.File("out/metrics.json")));
        var a = doc.RootElement.GetProperty("splits").GetProperty("a");
        Assert.Equal(60.0, a.GetProperty("accuracy").GetDouble(), 9);   // (3 + 3) / 10
        Assert.Equal(75.0, a.GetProperty("precision").GetDouble(), 9);  // 3 / (3 + 1)
        Assert.Equal(75.0, a.GetProperty("recall").GetDouble(), 9);     // 3 / (3 + 1)
        Assert.Equal(75.0, a.GetProperty("f1").GetDouble(), 9);
        Assert.Equal(40.0, a.GetProperty("yes_ratio").GetDouble(), 9);  // 4 / 10
        Assert.Equal(2, a.GetProperty("unknown").GetInt32());
        var b = doc.RootElement.GetProperty("splits").GetProperty("b");
        Assert.Equal(75.0, b.GetProperty("accuracy").GetDouble(), 9);
        Assert.Equal(200.0 / 3, b.GetProperty("precision").GetDouble(), 9);
        Assert.Equal(100.0, b.GetProperty("recall").GetDouble(), 9);
        var p = doc.RootElement.GetProperty("pooled");                  // TP 5, FP 2, TN 4, FN 1, unknown 2 of 14
        Assert.Equal(100.0 * 9 / 14, p.GetProperty("accuracy").GetDouble(), 9);
        Assert.Equal(100.0 * 5 / 7, p.GetProperty("precision").GetDouble(), 9);
        Assert.Equal(100.0 * 5 / 6, p.GetProperty("recall").GetDouble(), 9);
        Assert.Equal(100.0 * 50 / 65, p.GetProperty("f1").GetDouble(), 9);
        Assert.Equal(50.0, p.GetProperty("yes_ratio").GetDouble(), 9);
        Assert.Equal(2, p.GetProperty("unknown").GetInt32());
    }

    [Fact]
    public void AnswerForUnknownQuestion_IsAnErrorNamingFileAndLine()
    {
        using var tmp = new TempDir();
        WriteSplit(tmp, "a", SplitB);
        File.AppendAllText(tmp.File("a_answers.jsonl"), "{\"question_id\": 77, \"text\": \"Yes\"}\n");
        var r = CliRunner.Run("eval", "pope", "--questions", tmp.File("a.jsonl"), "--answers", tmp.File("a_answers.jsonl"), "--out", tmp.File("out"));
        Assert.Equal(UserError.ExitCode, r.ExitCode);
        Assert.Contains($"{tmp.File("a_answers.jsonl")}:5: question_id 77 is not in", r.Stderr);
        Assert.False(File.Exists(tmp.File("out/metrics.json")));
    }

    [Fact]
    public void MissingAnswers_DuplicateAnswers_MalformedLines_AreErrors()
    {
        using var tmp = new TempDir();
        WriteSplit(tmp, "a", SplitB);
        string answers = tmp.File("a_answers.jsonl");
        var qs = PopeScorer.ReadQuestions(tmp.File("a.jsonl"));

        File.WriteAllLines(answers, ["{\"question_id\": 1, \"text\": \"Yes\"}"]);
        var e = Assert.Throws<UserError>(() => PopeScorer.Score(qs, PopeScorer.ReadAnswers(answers), PopeParse.Strict, "a.jsonl", answers));
        Assert.Contains("3 of 4 questions of a.jsonl have no answer", e.Message);

        File.WriteAllLines(answers, ["{\"question_id\": 1, \"text\": \"Yes\"}", "{\"question_id\": 1, \"text\": \"No\"}"]);
        Assert.Contains($"{answers}:2: a second answer for question_id 1", Assert.Throws<UserError>(() => PopeScorer.ReadAnswers(answers)).Message);

        File.WriteAllLines(answers, ["{\"question_id\": 1, \"text\": \"Yes\"}", "{\"question_id\": 2, \"text\": Yes}"]);
        Assert.Contains($"{answers}:2: malformed JSON", Assert.Throws<UserError>(() => PopeScorer.ReadAnswers(answers)).Message);
    }

    [Fact]
    public void AnswersAndQuestions_MustPairUp()
    {
        var r = CliRunner.Run("eval", "pope", "--questions", "a.jsonl", "--questions", "b.jsonl", "--answers", "x.jsonl", "--out", "o");
        Assert.Equal(UserError.ExitCode, r.ExitCode);
        Assert.Contains("1 --answers for 2 --questions", r.Stderr);
    }

    [SkippableTheory]
    [InlineData("coco", "coco_pope_random.jsonl")]
    [InlineData("aokvqa_seem", "aokvqa_pope_seem_popular.json")]
    [InlineData("gqa_seem", "gqa_pope_seem_adversarial.json")]
    public void RealPopeFiles_JsonLinesAndArrays_HaveBalancedLabels(string dir, string file)
    {
        var qs = PopeScorer.ReadQuestions(SharedData.Path("data", "pope", dir, file));
        Assert.Equal(3000, qs.Count);
        Assert.Equal(1500, qs.Count(q => q.GoldYes)); // ../shared/data/pope/README.md: 1500 yes / 1500 no per split
    }

    [Fact]
    public void ConcatenatedPrettyPrintedObjects_AreReadWithLineNumbers()
    {
        using var tmp = new TempDir();
        string path = tmp.File("stream.json");
        File.WriteAllText(path, "{\n  \"question_id\": 1,\n  \"text\": \"Yes\"\n}\n{\n  \"question_id\": 2,\n  \"text\": \"No\"\n}\n");
        var records = JsonRecords.Read(path);
        Assert.Equal([1L, 5L], records.Select(r => r.Line));
        Assert.Equal("No", records[1].Text("text"));
    }
}
