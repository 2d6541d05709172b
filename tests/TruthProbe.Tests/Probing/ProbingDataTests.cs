using TruthProbe.Cli;
using TruthProbe.Common;
using TruthProbe.Probing;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Probing;

public class ProbingDataTests
{
    private const string Gold = """{"context": " Tom had a ball. ", "question": "Who had a ball?", "answer": "Tom", "label": "gold"}""";
    private const string Wrong = """{"context": "Tom had a ball.", "question": "Who had a ball?", "answer": "Sue", "label": "Hallucinated"}""";

    private static string Write(TempDir tmp, params string[] lines)
    {
        string path = tmp.File("rows.jsonl");
        File.WriteAllText(path, string.Join("\n", lines) + "\n");
        return path;
    }

    [Fact]
    public void ReferenceLayout_TrimsFields_LabelsCaseInsensitive_KeepsLineNumbers()
    {
        using var tmp = new TempDir();
        var data = ProbingData.Load(Write(tmp, Gold, "", Wrong), null, skipBad: false);
        Assert.Equal(2, data.Rows.Count);
        Assert.Equal(new ProbingRow(0, 1, "Tom had a ball.", "Who had a ball?", "Tom", 1), data.Rows[0]);
        Assert.Equal((1, 3, (byte)0), (data.Rows[1].Index, data.Rows[1].Line, data.Rows[1].Label));
        Assert.Equal("reference", data.Layout);
    }

    [Theory]
    [InlineData("{not json", "line 2: not valid JSON")]
    [InlineData("""{"context": "c", "question": "q", "answer": "a", "label": "maybe"}""", "line 2: unknown label 'maybe'")]
    [InlineData("""{"context": "c", "question": "q", "label": "gold"}""", "line 2: missing field 'answer'")]
    [InlineData("[1, 2]", "line 2: expected a JSON object")]
    [InlineData("""{"context": "c", "question": "q", "answer": 42, "label": "gold"}""", "line 2: field 'answer' must be a string, got Number")]
    [InlineData("""{"context": "c", "question": "q", "answer": ["a"], "label": "gold"}""", "line 2: field 'answer' must be a string, got Array")]
    [InlineData("""{"context": "c", "question": "q", "answer": "a\ud800", "label": "gold"}""", "line 2: field 'answer' holds invalid UTF-8 or a lone UTF-16 surrogate")]
    public void BadLine_IsAUserErrorNamingFileAndLine_OrSkippedAndCounted(string badLine, string expected)
    {
        using var tmp = new TempDir();
        string path = Write(tmp, Gold, badLine, Wrong);
        var e = Assert.Throws<UserError>(() => ProbingData.Load(path, null, skipBad: false));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);

        var data = ProbingData.Load(path, null, skipBad: true);
        Assert.Equal(2, data.Rows.Count);
        var skipped = Assert.Single(data.Skipped);
        Assert.Equal((1, 2), (skipped.Index, skipped.Line));
        Assert.Contains(expected, skipped.Reason);
    }

    [Fact]
    public void EmptyFile_SingleClass_AndAllBad_AreClearErrors()
    {
        using var tmp = new TempDir();
        Assert.Contains("no rows", Assert.Throws<UserError>(() => ProbingData.Load(Write(tmp, ""), null, false)).Message);
        Assert.Contains("are gold; a probe needs both labels", Assert.Throws<UserError>(() => ProbingData.Load(Write(tmp, Gold, Gold), null, false)).Message);
        Assert.Contains("all 2 rows were bad", Assert.Throws<UserError>(() => ProbingData.Load(Write(tmp, "{", "x"), null, true)).Message);
        Assert.Contains("not found", Assert.Throws<UserError>(() => ProbingData.Load(tmp.File("none.jsonl"), null, false)).Message);
    }

    [Fact]
    public void HaluEvalItems_GiveGoldThenHallucinatedRows_AndSamplesCountsRows()
    {
        using var tmp = new TempDir();
        string item(int i) => $$"""{"knowledge": "k{{i}}", "question": "q{{i}}", "right_answer": "r{{i}}", "hallucinated_answer": "h{{i}}"}""";
        string path = Write(tmp, item(0), item(1), item(2));
        var all = ProbingData.Load(path, null, false);
        Assert.Equal(["r0", "h0", "r1", "h1", "r2", "h2"], all.Rows.Select(r => r.Answer));
        Assert.Equal([1, 0, 1, 0, 1, 0], all.Rows.Select(r => (int)r.Label));
        Assert.Equal("k1", all.Rows[2].Context);
        Assert.Equal("halueval", all.Layout);
        var three = ProbingData.Load(path, 3, false);
        Assert.Equal(["r0", "h0", "r1"], three.Rows.Select(r => r.Answer));
    }

    [SkippableFact]
    public void HaluEvalFile_First292Rows_Are146Items_FirstRowIsItsKnowledgeAndRightAnswer()
    {
        string path = SharedData.Path("data", "halueval", "qa_data_first1000.jsonl");
        var data = ProbingData.Load(path, 292, false);
        Assert.Equal(292, data.Rows.Count);
        Assert.Equal(146, data.Rows[^1].Line);
        using var first = System.Text.Json.JsonDocument.Parse(File.ReadLines(path).First());
        Assert.Equal(first.RootElement.GetProperty("knowledge").GetString()!.Trim(), data.Rows[0].Context);
        Assert.Equal(first.RootElement.GetProperty("right_answer").GetString()!.Trim(), data.Rows[0].Answer);
        Assert.Equal(first.RootElement.GetProperty("hallucinated_answer").GetString()!.Trim(), data.Rows[1].Answer);
    }

    [Fact]
    public void Template_DefaultIsTheReferencePrompt_CommandLineEscapes_MustEndWithAnswer()
    {
        var row = new ProbingRow(0, 1, "C", "Q", "A", 1);
        Assert.Equal("Context:\nC\n\nQuestion: Q\nAnswer: A", new PromptTemplate(PromptTemplate.Default).Render(row));
        Assert.Equal("C\tQ\n=> A", PromptTemplate.FromCommandLine("{context}\\t{question}\\n=> {answer}").Render(row));
        Assert.Throws<UserError>(() => new PromptTemplate("{answer} is the answer to {question}"));
        Assert.Throws<UserError>(() => new PromptTemplate("{context} {question}"));
    }

    [Fact]
    public void ScoredLength_StepsBackOverATrailingEosOnly()
    {
        Assert.Equal(2, ActivationCollector.ScoredLength([1, 5, 2], [2]));   // run [1, 5]: token 5 is scored
        Assert.Equal(3, ActivationCollector.ScoredLength([1, 5, 7], [2]));
        Assert.Equal(1, ActivationCollector.ScoredLength([2], [2]));
    }

    [Fact]
    public void Generator_ReproducesTheShippedDataFile_AndAnswersCarryNoLabel()
    {
        string shipped = Path.Combine(RepoPaths.RepoRoot()!, "data", "tinystories_context_qa.jsonl");
        Assert.Equal(File.ReadAllText(shipped), ContextQaGenerator.Generate());
        var data = ProbingData.Load(shipped, null, false);
        Assert.Equal(1000, data.Rows.Count);
        Assert.Equal(500, data.Rows.Count(r => r.Label == 1));
        for (int i = 0; i < data.Rows.Count; i++)
        {
            var row = data.Rows[i];
            Assert.Equal(i % 2 == 0 ? 1 : 0, row.Label);                    // one row per story, labels alternate
            string child = row.Context[..row.Context.IndexOf(' ')];
            Assert.Equal(2, row.Context.Split(' ').Count(w => w.TrimEnd('.') == child));   // the story names its child twice
            if (row.Label == 1) Assert.Equal(child, row.Answer);            // the gold name is the story's child...
            else Assert.DoesNotContain(row.Answer, row.Context);            // ...a swapped one is never mentioned
            Assert.True(ContextQaGenerator.Template.Replace("{context}", row.Context).Replace("{question}", row.Question).Length < 100);
        }
        // Same name pool for both labels: every name answers gold and hallucinated rows alike.
        var goldNames = data.Rows.Where(r => r.Label == 1).Select(r => r.Answer).ToHashSet();
        var wrongNames = data.Rows.Where(r => r.Label == 0).Select(r => r.Answer).ToHashSet();
        Assert.True(goldNames.SetEquals(wrongNames));
    }
}
