using System.Text.Json;
using TruthProbe.Common;

namespace TruthProbe.Probing;

/// <summary>One probing row: a context, a question, an answer and whether the answer is gold (1) or hallucinated (0).</summary>
/// <param name="Index">position in the file's row list (0-based; an HaluEval item gives two rows).</param>
/// <param name="Line">1-based line of the file it came from.</param>
public sealed record ProbingRow(int Index, int Line, string Context, string Question, string Answer, byte Label)
{
    /// <summary>The image the row asks about (as the file names it, relative to an images folder), null for text rows.</summary>
    public string? Image { get; init; }
}

/// <summary>A row left out under --skip-bad, and why.</summary>
public sealed record SkippedRow(int Index, int Line, string Reason);

/// <summary>
/// Probing rows from jsonl, one JSON object per line, in either of two layouts:
/// the reference's <c>{"context", "question", "answer", "label": "gold"|"hallucinated"}</c>, or HaluEval-QA's
/// <c>{"knowledge", "question", "right_answer", "hallucinated_answer"}</c>, which gives two rows: the
/// knowledge as context with the right answer (gold), then with the hallucinated answer. Rows that name an image
/// (the paper's RLHF-V/PhD layout <c>question_id, question, answer, image_id, label, image_path</c>, or a plain
/// <c>image</c> field) need no context; they are layout "image".
/// Fields are trimmed, as the reference does. <c>samples</c> keeps the first N rows, like the reference's
/// <c>max_samples</c>, which cuts its row-per-answer jsonl: so 292 = the first 146 HaluEval items (the paper's
/// 292-row maps have validation folds of 59, 59, 58, 58, 58 rows, which only N = 292 gives).
/// A bad line (not JSON, a missing field, an unknown label) is a <see cref="UserError"/> naming file and line,
/// or, with skipBad, is skipped and listed; skipped rows count towards N as in the reference.
/// </summary>
public sealed class ProbingData
{
    public required string Path { get; init; }
    public required IReadOnlyList<ProbingRow> Rows { get; init; }
    public required IReadOnlyList<SkippedRow> Skipped { get; init; }
    /// <summary>"reference", "halueval", "image" or "mixed".</summary>
    public required string Layout { get; init; }

    /// <summary>
    /// The item of each given row (by <see cref="ProbingRow.Index"/>, as activation files store it): rows with
    /// the same context, question and image are one item (an HaluEval item's gold and hallucinated rows), numbered
    /// by first appearance.
    /// </summary>
    public long[] ItemIds(IReadOnlyList<long> rowIndexes)
    {
        var itemOfText = new Dictionary<(string, string, string?), long>();
        var itemOfRow = new Dictionary<long, long>(Rows.Count);
        foreach (var row in Rows)
        {
            var key = (row.Context, row.Question, row.Image);
            if (!itemOfText.TryGetValue(key, out long id)) itemOfText[key] = id = itemOfText.Count;
            itemOfRow[row.Index] = id;
        }
        return rowIndexes.Select(i => itemOfRow.TryGetValue(i, out long id) ? id
            : throw new UserError($"{Path}: no row {i}; give the data (and sample count) the activations were collected on") { Field = "data" }).ToArray();
    }

    public static ProbingData Load(string path, int? samples, bool skipBad)
    {
        if (!File.Exists(path)) throw new UserError($"{path}: probing data file not found (expected jsonl with context, question, answer, label)");
        if (samples is <= 0) throw new UserError($"samples must be positive, got {samples}") { Field = "samples" };
        var rows = new List<ProbingRow>();
        var skipped = new List<SkippedRow>();
        var layouts = new HashSet<string>();
        int index = 0, lineNumber = 0;
        foreach (string line in JsonText.ReadLines(path))
        {
            lineNumber++;
            if (samples != null && index >= samples) break;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                foreach (var row in ParseLine(line, path, lineNumber, ref index, layouts))
                    if (samples == null || row.Index < samples) rows.Add(row);
            }
            catch (UserError e) when (skipBad)
            {
                skipped.Add(new SkippedRow(index, lineNumber, e.Message));
                index++;
            }
        }
        if (rows.Count == 0)
            throw new UserError(skipped.Count > 0
                ? $"{path}: all {skipped.Count} rows were bad and skipped (first: {skipped[0].Reason})"
                : $"{path}: no rows (the file is empty); expected one JSON object per line");
        int gold = rows.Count(r => r.Label == 1);
        if (gold == 0 || gold == rows.Count)
            throw new UserError($"{path}: all {rows.Count} rows{(samples != null ? $" of the first {samples}" : "")} are {(gold == 0 ? "hallucinated" : "gold")}; a probe needs both labels");
        return new ProbingData
        {
            Path = path, Rows = rows, Skipped = skipped,
            Layout = layouts.Count == 1 ? layouts.First() : "mixed",
        };
    }

    private static IEnumerable<ProbingRow> ParseLine(string line, string path, int lineNumber, ref int index, HashSet<string> layouts)
    {
        JsonElement root;
        try { root = JsonDocument.Parse(line).RootElement; }
        catch (JsonException e) { throw new UserError($"{path} line {lineNumber}: not valid JSON ({e.Message.Split('.')[0]})"); }
        if (root.ValueKind != JsonValueKind.Object) throw new UserError($"{path} line {lineNumber}: expected a JSON object, got {root.ValueKind}");
        JsonText.RequireValidStrings(root, $"{path} line {lineNumber}");

        if (root.TryGetProperty("right_answer", out _) || root.TryGetProperty("hallucinated_answer", out _))
        {
            string knowledge = Field(root, "knowledge", path, lineNumber);
            string question = Field(root, "question", path, lineNumber);
            string right = Field(root, "right_answer", path, lineNumber);
            string wrong = Field(root, "hallucinated_answer", path, lineNumber);
            layouts.Add("halueval");
            var pair = new[]
            {
                new ProbingRow(index, lineNumber, knowledge, question, right, 1),
                new ProbingRow(index + 1, lineNumber, knowledge, question, wrong, 0),
            };
            index += 2;
            return pair;
        }
        string? image = OptionalField(root, "image_path", path, lineNumber) ?? OptionalField(root, "image", path, lineNumber);
        string context = image != null && !root.TryGetProperty("context", out _) ? "" : Field(root, "context", path, lineNumber);
        string q = Field(root, "question", path, lineNumber);
        string answer = Field(root, "answer", path, lineNumber);
        string label = Field(root, "label", path, lineNumber).ToLowerInvariant();
        byte y = label switch
        {
            "gold" => 1,
            "hallucinated" => 0,
            _ => throw new UserError($"{path} line {lineNumber}: unknown label '{label}' (expected 'gold' or 'hallucinated')"),
        };
        layouts.Add(image == null ? "reference" : "image");
        return [new ProbingRow(index++, lineNumber, context, q, answer, y) { Image = image }];
    }

    private static string? OptionalField(JsonElement root, string name, string path, int lineNumber) =>
        root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? Field(root, name, path, lineNumber) : null;

    private static string Field(JsonElement root, string name, string path, int lineNumber)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            throw new UserError($"{path} line {lineNumber}: missing field '{name}' (expected context, question, answer, label; or HaluEval's knowledge, question, right_answer, hallucinated_answer; or question, answer, label, image_path for rows with images)");
        // A number or an array here is a wrong column, not text to score.
        if (value.ValueKind != JsonValueKind.String)
            throw new UserError($"{path} line {lineNumber}: field '{name}' must be a string, got {value.ValueKind}");
        return value.GetString()!.Trim();
    }
}

/// <summary>
/// The text a row is scored on. Placeholders {context}, {question} and {answer}; the default is the
/// reference's <c>Context:\n{context}\n\nQuestion: {question}\nAnswer: {answer}</c>.
/// </summary>
public sealed class PromptTemplate
{
    public const string Default = "Context:\n{context}\n\nQuestion: {question}\nAnswer: {answer}";

    public string Text { get; }

    public PromptTemplate(string text)
    {
        if (!text.Contains("{answer}", StringComparison.Ordinal))
            throw new UserError($"prompt template must contain {{answer}} (the scored token is the answer's last), got '{text}'") { Field = "template" };
        if (!text.TrimEnd().EndsWith("{answer}", StringComparison.Ordinal))
            throw new UserError($"prompt template must end with {{answer}}: the probes read the answer's last token, got '{text}'") { Field = "template" };
        Text = text;
    }

    /// <summary>A template as typed on a command line: \n, \t and \\ are read as escapes.</summary>
    public static PromptTemplate FromCommandLine(string text) =>
        new(text.Replace("\\\\", "\u0000").Replace("\\n", "\n").Replace("\\t", "\t").Replace("\u0000", "\\"));

    public string Render(ProbingRow row) => Fill(Text, row);

    /// <summary><paramref name="text"/> (a template or a piece of one) with the row's fields in its placeholders.</summary>
    public static string Fill(string text, ProbingRow row) =>
        text.Replace("{context}", row.Context).Replace("{question}", row.Question).Replace("{answer}", row.Answer);
}
