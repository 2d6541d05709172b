using System.Text.Json;
using TruthProbe.Common;

namespace TruthProbe.Evaluation;

/// <summary>One HaluEval-QA row. <see cref="Index"/> is its 0-based position among the file's rows (the
/// item id everywhere in outputs); <see cref="Line"/> its 1-based line, for error messages.</summary>
public sealed record HaluEvalRow(int Index, int Line, string Knowledge, string Question, string RightAnswer, string HallucinatedAnswer);

/// <summary>
/// One evaluation item: a row shown with ONE of its two answers. Label "yes" (the answer is hallucinated)
/// is the positive class.
/// </summary>
public sealed record HaluEvalItem(HaluEvalRow Row, int Seed, bool ShowsHallucinated)
{
    public string Answer => ShowsHallucinated ? Row.HallucinatedAnswer : Row.RightAnswer;
    public string Label => ShowsHallucinated ? "yes" : "no";
    public string Prompt => HaluEvalPrompt.Build(Row.Knowledge, Row.Question, Answer);
}

/// <summary>
/// HaluEval-QA evaluation items as the reference task <c>halueval_remain</c> builds them (docs/design.md §6):
/// the rows not used for probing, each showing one answer chosen at random between the right and the
/// hallucinated one.
/// </summary>
public static class HaluEvalData
{
    /// <summary>The paper's probing rows: the first 292 of the file are excluded from evaluation.</summary>
    public const int DefaultSkipFirst = 292;

    private static readonly string[] Fields = ["knowledge", "question", "right_answer", "hallucinated_answer"];

    /// <summary>Reads a HaluEval-QA JSON Lines file (blank lines ignored); every row must carry the four string fields.</summary>
    public static List<HaluEvalRow> ReadRows(string path)
    {
        if (!File.Exists(path)) throw new UserError($"{path}: file not found (expected HaluEval-QA JSON Lines with knowledge, question, right_answer, hallucinated_answer)");
        var rows = new List<HaluEvalRow>();
        int lineNumber = 0;
        foreach (string line in JsonText.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            rows.Add(ParseRow(line, rows.Count, lineNumber, path));
        }
        return rows;
    }

    private static HaluEvalRow ParseRow(string line, int index, int lineNumber, string path)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(line); }
        catch (JsonException e) { throw new UserError($"{path}:{lineNumber}: not valid JSON ({e.Message})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new UserError($"{path}:{lineNumber}: expected a JSON object with fields {string.Join(", ", Fields)}");
            JsonText.RequireValidStrings(doc.RootElement, $"{path}:{lineNumber}");
            var values = new string[Fields.Length];
            for (int i = 0; i < Fields.Length; i++)
            {
                if (!doc.RootElement.TryGetProperty(Fields[i], out var v))
                    throw new UserError($"{path}:{lineNumber}: row is missing field '{Fields[i]}' (every row needs {string.Join(", ", Fields)})");
                if (v.ValueKind != JsonValueKind.String)
                    throw new UserError($"{path}:{lineNumber}: field '{Fields[i]}' must be a string, got {v.ValueKind}");
                values[i] = v.GetString()!;
            }
            return new HaluEvalRow(index, lineNumber, values[0], values[1], values[2], values[3]);
        }
    }

    /// <summary>Rows <paramref name="skipFirst"/> .. skipFirst+limit-1 (all remaining when limit is null).</summary>
    public static List<HaluEvalRow> Select(IReadOnlyList<HaluEvalRow> rows, int skipFirst, int? limit, string path)
    {
        if (skipFirst < 0) throw new UserError($"skip_first must be >= 0, got {skipFirst}") { Field = "skip_first" };
        if (limit is <= 0) throw new UserError($"limit must be a positive number of items, got {limit}") { Field = "limit" };
        if (skipFirst >= rows.Count)
            throw new UserError($"{path}: has {rows.Count} rows, all skipped (skip_first {skipFirst}); skip fewer rows or use a larger file") { Field = "skip_first" };
        int count = Math.Min(rows.Count - skipFirst, limit ?? int.MaxValue);
        return rows.Skip(skipFirst).Take(count).ToList();
    }

    /// <summary>
    /// The items of one seed. Which answer a row shows depends only on (seed, row index), not on the order,
    /// --skip-first or --limit: the hallucinated answer iff the top bit of SplitMix64(seed, index) is set.
    /// </summary>
    public static List<HaluEvalItem> Items(IEnumerable<HaluEvalRow> rows, int seed) =>
        rows.Select(r => new HaluEvalItem(r, seed, ShowsHallucinated(seed, r.Index))).ToList();

    public static bool ShowsHallucinated(int seed, int rowIndex) => (SeededHash(seed, rowIndex) >> 63) == 1;

    /// <summary>
    /// A 64-bit hash of (seed, index): SplitMix64's output function (Steele, Lea, Flood 2014) applied to
    /// seed * 2^32 + index. Stable across platforms and .NET versions, unlike <see cref="Random"/>.
    /// </summary>
    public static ulong SeededHash(long seed, long index) =>
        new SeededRandom(unchecked(((ulong)seed << 32) + (ulong)index)).NextUInt64();
}

/// <summary>The reference's prompt (task <c>halueval_remain</c>, use_knowledge on, no instruction file), typo included.</summary>
public static class HaluEvalPrompt
{
    public const string PrePrompt = "USER: You are a huallucination detector. You MUST determine if the provided answer contains hallucination or not for the question based on the world knowledge. The answer you provided MUST be Yes or No.";
    public const string PostPrompt = "ASSISTANT:";

    public static string Build(string knowledge, string question, string answer) =>
        PrePrompt + "\n\n#Knowledge:" + knowledge + "\n\n#Question#: " + question + "\n#Answer#: " + answer + " " + PostPrompt;
}
