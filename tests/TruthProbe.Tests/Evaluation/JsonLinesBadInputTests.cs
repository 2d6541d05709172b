using System.Text;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Probing;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Evaluation;

/// <summary>
/// The JSON Lines readers (CHAIR and POPE records, HaluEval rows, score's probing rows) turn undecodable text,
/// over-long lines and wrong-typed fields into one UserError naming the file and line.
/// </summary>
public class JsonLinesBadInputTests
{
    private const string Row = """{"knowledge": "k", "question": "q", "right_answer": "r", "hallucinated_answer": "h"}""";

    private static string WriteBytes(TempDir tmp, string name, params byte[][] lines)
    {
        string path = tmp.File(name);
        File.WriteAllBytes(path, lines.SelectMany(l => l.Append((byte)'\n')).ToArray());
        return path;
    }

    private static void FailsAt(string path, string line, string fragment, Action read)
    {
        var e = Assert.Throws<UserError>(read);
        Assert.Contains($"{path}{line}", e.Message);
        Assert.Contains(fragment, e.Message);
    }

    // "\ud800" is a lone surrogate escape; 0xC3 0x28 is a UTF-8 lead byte followed by a non-continuation byte.
    private static readonly byte[] LoneSurrogateCaption = """{"image_id": 1, "caption": "a dog \ud800"}"""u8.ToArray();
    private static readonly byte[] InvalidUtf8Caption = [.. """{"image_id": 1, "caption": "a dog """u8, 0xC3, 0x28, .. "\"}"u8];

    [Fact]
    public void Records_LoneSurrogateOrInvalidUtf8_NameFileAndLine()
    {
        using var tmp = new TempDir();
        byte[] good = """{"image_id": 2, "caption": "a cat"}"""u8.ToArray();
        string surrogate = WriteBytes(tmp, "surrogate.jsonl", good, LoneSurrogateCaption);
        FailsAt(surrogate, ":2", "field 'caption' holds invalid UTF-8 or a lone UTF-16 surrogate", () => ChairScorer.ReadCaptions(surrogate));
        string invalid = WriteBytes(tmp, "invalid.jsonl", good, InvalidUtf8Caption);
        var e = Assert.Throws<UserError>(() => ChairScorer.ReadCaptions(invalid));
        Assert.Contains($"{invalid}:2", e.Message);
    }

    [Fact]
    public void HaluEvalRows_LoneSurrogateOrInvalidUtf8_NameFileAndLine()
    {
        using var tmp = new TempDir();
        string surrogate = WriteBytes(tmp, "surrogate.jsonl", Encoding.UTF8.GetBytes(Row), Encoding.UTF8.GetBytes(Row.Replace("\"q\"", "\"q\\udc00\"")));
        FailsAt(surrogate, ":2", "field 'question' holds invalid UTF-8 or a lone UTF-16 surrogate", () => HaluEvalData.ReadRows(surrogate));
        string invalid = WriteBytes(tmp, "invalid.jsonl", Encoding.UTF8.GetBytes(Row), [.. Encoding.UTF8.GetBytes(Row[..^2]), 0xFF, (byte)'"', (byte)'}']);
        FailsAt(invalid, ":2", "invalid UTF-8", () => HaluEvalData.ReadRows(invalid));
    }

    [Fact]
    public void OverLongLine_IsRefusedBeforeParsing_InEveryReader()
    {
        // One record whose caption/answer alone is twice the line limit.
        using var tmp = new TempDir();
        string huge = new('x', 2 * JsonText.MaxLineBytes);
        string captions = tmp.File("captions.jsonl");
        File.WriteAllText(captions, $"{{\"image_id\": 1, \"caption\": \"a\"}}\n{{\"image_id\": 2, \"caption\": \"{huge}\"}}\n");
        FailsAt(captions, ":2", "line is longer than", () => ChairScorer.ReadCaptions(captions));
        string rows = tmp.File("rows.jsonl");
        File.WriteAllText(rows, $"{Row}\n{Row.Replace("\"r\"", $"\"{huge}\"")}\n");
        FailsAt(rows, ":2", "line is longer than", () => HaluEvalData.ReadRows(rows));
        FailsAt(rows, ":2", "line is longer than", () => ProbingData.Load(rows, null, skipBad: true));
    }

    [Fact]
    public void ChairImageId_Fractional_IsRefused_NotReadAsItsTrailingDigits()
    {
        using var tmp = new TempDir();
        string path = tmp.File("captions.jsonl");
        File.WriteAllText(path, "{\"image_id\": 2239.5, \"caption\": \"a dog\"}\n");
        FailsAt(path, ":1", "field 'image_id' must be an integer, got 2239.5", () => ChairScorer.ReadCaptions(path));
    }

    [Fact]
    public void ChairCaptions_EmptyFile_IsAnError()
    {
        using var tmp = new TempDir();
        string path = tmp.File("captions.jsonl");
        File.WriteAllText(path, "\n");
        FailsAt(path, "", "no captions", () => ChairScorer.ReadCaptions(path));
    }
}
