using System.Security.Cryptography;
using System.Text;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Evaluation;

public class HaluEvalDataTests
{
    [Fact]
    public void Prompt_HandWrittenItem_IsTheReferenceStringWithItsTypo()
    {
        string prompt = HaluEvalPrompt.Build("Paris is in France.", "Where is Paris?", "France");
        Assert.Equal(
            "USER: You are a huallucination detector. You MUST determine if the provided answer contains hallucination " +
            "or not for the question based on the world knowledge. The answer you provided MUST be Yes or No.\n\n" +
            "#Knowledge:Paris is in France.\n\n#Question#: Where is Paris?\n#Answer#: France ASSISTANT:", prompt);
    }

    [SkippableFact]
    public void Prompt_FirstRowAfterProbingRows_MatchesReferenceBytes()
    {
        // Expected values: the reference's halueval_doc_to_text (miso-choi/TruthProbe, task halueval_remain:
        // f"{pre_prompt}{prompt}" + f" {post_prompt}" with use_knowledge) run in Python on row 292 of the file,
        // UTF-8 encoded: length and SHA-256 of the prompt for each answer.
        var rows = HaluEvalData.ReadRows(SharedData.Path("data", "halueval", "qa_data_first1000.jsonl"));
        var row = rows[292];
        Assert.Equal(293, row.Line);
        byte[] right = Encoding.UTF8.GetBytes(HaluEvalPrompt.Build(row.Knowledge, row.Question, row.RightAnswer));
        byte[] hallucinated = Encoding.UTF8.GetBytes(HaluEvalPrompt.Build(row.Knowledge, row.Question, row.HallucinatedAnswer));
        Assert.Equal(984, right.Length);
        Assert.Equal("3ba5280587ec061662a673f94c43d8b81caa7b849c7c8e65a7da3bd11a21160d", Convert.ToHexStringLower(SHA256.HashData(right)));
        Assert.Equal(1027, hallucinated.Length);
        Assert.Equal("e98e17dc9b4c16b88907f59be8e3cfb299bb4cae0cd9e282babac0cdc920df8e", Convert.ToHexStringLower(SHA256.HashData(hallucinated)));
    }

    [SkippableFact]
    public void ShippedFile_SkipFirst292_Leaves708RowsStartingAtRow292()
    {
        string path = SharedData.Path("data", "halueval", "qa_data_first1000.jsonl");
        var rows = HaluEvalData.Select(HaluEvalData.ReadRows(path), HaluEvalData.DefaultSkipFirst, null, path);
        Assert.Equal(708, rows.Count);
        Assert.Equal(292, rows[0].Index);
        Assert.Equal("$268 million", rows[0].RightAnswer);
        Assert.Equal(5, HaluEvalData.Select(HaluEvalData.ReadRows(path), 292, 5, path).Count);
    }

    [Fact]
    public void SeededHash_IsSplitMix64_MatchesPublishedFirstOutputs()
    {
        // SplitMix64 with state 0: the generator adds the golden gamma, then mixes. Published first outputs
        // (Vigna's splitmix64.c, seed 0): 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4.
        Assert.Equal(0xE220A8397B1DCDAFUL, HaluEvalData.SeededHash(0, 0));
        Assert.Equal(0x6E789E6AA1B965F4UL, HaluEvalData.SeededHash(0, unchecked((long)0x9E3779B97F4A7C15UL)));
        Assert.NotEqual(HaluEvalData.SeededHash(1, 0), HaluEvalData.SeededHash(0, 1));
    }

    [Fact]
    public void Items_AnswerChoice_DependsOnSeedAndRowOnly_AndIsRoughlyBalanced()
    {
        var rows = Enumerable.Range(0, 2000).Select(i => new HaluEvalRow(i, i + 1, "k", "q", "right", "wrong")).ToList();
        var seed1 = HaluEvalData.Items(rows, 1);
        var seed1Again = HaluEvalData.Items(rows.Skip(500).Take(10), 1);
        Assert.Equal(seed1.Skip(500).Take(10).Select(i => i.ShowsHallucinated), seed1Again.Select(i => i.ShowsHallucinated));
        var seed2 = HaluEvalData.Items(rows, 2);
        Assert.NotEqual(seed1.Select(i => i.ShowsHallucinated), seed2.Select(i => i.ShowsHallucinated));
        int hallucinated = seed1.Count(i => i.ShowsHallucinated);
        Assert.InRange(hallucinated, 1000 - 3 * 23, 1000 + 3 * 23); // Binomial(2000, 1/2): sd about 22.4
        var item = seed1.First(i => i.ShowsHallucinated);
        Assert.Equal(("wrong", "yes"), (item.Answer, item.Label));
        item = seed1.First(i => !i.ShowsHallucinated);
        Assert.Equal(("right", "no"), (item.Answer, item.Label));
    }

    [Fact]
    public void RowMissingAField_IsRejectedNamingFileLineAndField()
    {
        using var tmp = new TempDir();
        string path = tmp.File("qa.jsonl");
        File.WriteAllText(path,
            "{\"knowledge\": \"k\", \"question\": \"q\", \"right_answer\": \"a\", \"hallucinated_answer\": \"b\"}\n\n" +
            "{\"knowledge\": \"k\", \"question\": \"q\", \"right_answer\": \"a\"}\n");
        var e = Assert.Throws<UserError>(() => HaluEvalData.ReadRows(path));
        Assert.Contains($"{path}:3", e.Message);
        Assert.Contains("hallucinated_answer", e.Message);
    }

    [Theory]
    [InlineData("not json", "not valid JSON")]
    [InlineData("[1, 2]", "expected a JSON object")]
    [InlineData("{\"knowledge\": 3, \"question\": \"q\", \"right_answer\": \"a\", \"hallucinated_answer\": \"b\"}", "'knowledge' must be a string")]
    public void MalformedRow_IsRejectedWithLine(string line, string expected)
    {
        using var tmp = new TempDir();
        string path = tmp.File("qa.jsonl");
        File.WriteAllText(path, line + "\n");
        var e = Assert.Throws<UserError>(() => HaluEvalData.ReadRows(path));
        Assert.Contains($"{path}:1", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void SkipFirstBeyondTheFile_IsAUserError()
    {
        var rows = new List<HaluEvalRow> { new(0, 1, "k", "q", "a", "b") };
        Assert.Contains("all skipped", Assert.Throws<UserError>(() => HaluEvalData.Select(rows, 292, null, "f.jsonl")).Message);
        Assert.Throws<UserError>(() => HaluEvalData.Select(rows, 0, 0, "f.jsonl"));
    }
}
