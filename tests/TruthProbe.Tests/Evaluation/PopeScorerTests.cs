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
        ProvenanceAssert.In(tmp.File("out/metrics.json"), [], [("a.questions", tmp.File("a.jsonl")), ("a.answers", tmp.File("a_answers.jsonl")),
            ("b.questions", tmp.File("b.jsonl")), ("b.answers", tmp.File("b_answers.jsonl"))]);
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

    /// <summary>
    /// An lmms-eval <c>samples_pope.jsonl</c> log over all three settings: question ids 1-4 repeat per
    /// setting, the reply sits in <c>filtered_resps</c> (here also nested, as <c>resps</c> is), the gold label
    /// in <c>doc.answer</c>. Each setting's replies are SplitB's with a different last reply.
    /// </summary>
    private static string WriteLmmsEvalLog(TempDir tmp)
    {
        var lines = new List<string>();
        int docId = 0;
        foreach (string category in PopeScorer.Categories)
            for (int i = 0; i < SplitB.Length; i++)
            {
                var (goldYes, reply) = SplitB[i];
                if (i == 3 && category == "popular") reply = "Yes";
                var doc = new { question_id = (i + 1).ToString(), question = "Is there a dog in the image?", answer = goldYes ? "yes" : "no", image_source = "COCO_val2014_000000000001", category };
                lines.Add(category == "random"
                    ? JsonSerializer.Serialize(new { doc_id = docId++, doc, target = doc.answer, resps = new[] { new[] { reply } }, filtered_resps = new[] { new[] { reply } } })
                    : JsonSerializer.Serialize(new { doc_id = docId++, doc, target = doc.answer, resps = new[] { new[] { reply } }, filtered_resps = new[] { reply } }));
            }
        string path = tmp.File("samples_pope.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public void LmmsEvalLog_SettingComesFromTheQuestionsFileName_OrCategory_AndItsGoldMustAgree()
    {
        using var tmp = new TempDir();
        string log = WriteLmmsEvalLog(tmp);
        WriteSplit(tmp, "coco_pope_popular", SplitB);
        WriteSplit(tmp, "coco_pope_random", SplitB);
        var r = CliRunner.Run("eval", "pope", "--questions", tmp.File("coco_pope_popular.jsonl"), "--answers", log,
            "--questions", tmp.File("coco_pope_random.jsonl"), "--answers", log, "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(File.ReadAllText(tmp.File("out/metrics.json")));
        var popular = doc.RootElement.GetProperty("splits").GetProperty("coco_pope_popular");
        Assert.Equal(50.0, popular.GetProperty("accuracy").GetDouble(), 9);   // TP 2, FP 2: its last reply is Yes
        var random = doc.RootElement.GetProperty("splits").GetProperty("coco_pope_random");
        Assert.Equal(75.0, random.GetProperty("accuracy").GetDouble(), 9);    // SplitB as written: TP 2, FP 1, TN 1

        // A file name naming no setting: the repeated ids are an error until --category picks one.
        WriteSplit(tmp, "split", SplitB);
        var ambiguous = CliRunner.Run("eval", "pope", "--questions", tmp.File("split.jsonl"), "--answers", log, "--out", tmp.File("o2"));
        Assert.Equal(UserError.ExitCode, ambiguous.ExitCode);
        Assert.Contains("--category", ambiguous.Stderr);
        Assert.Equal(0, CliRunner.Run("eval", "pope", "--questions", tmp.File("split.jsonl"), "--answers", log, "--category", "adversarial", "--out", tmp.File("o3")).ExitCode);

        // The log's gold labels must be the split's: flip one label in the questions file.
        File.WriteAllLines(tmp.File("flipped.jsonl"), File.ReadAllLines(tmp.File("split.jsonl")).Select((l, i) => i == 0 ? l.Replace("\"yes\"", "\"no\"") : l));
        var flipped = CliRunner.Run("eval", "pope", "--questions", tmp.File("flipped.jsonl"), "--answers", log, "--category", "random", "--out", tmp.File("o4"));
        Assert.Equal(UserError.ExitCode, flipped.ExitCode);
        Assert.Contains("gold label for question_id 1 is 'yes'", flipped.Stderr);
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
        Assert.Equal(1500, qs.Count(q => q.GoldYes)); // POPE's published question files: 1500 yes / 1500 no per split (docs/design.md §8)
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
