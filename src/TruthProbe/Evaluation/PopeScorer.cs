using System.Text.Json;
using TruthProbe.Common;
using TruthProbe.Numerics;

namespace TruthProbe.Evaluation;

public enum PopeAnswer { No, Yes, Unknown }

/// <summary>How a free-text reply becomes yes/no.</summary>
public enum PopeParse
{
    /// <summary>The reply, lower-cased and stripped, must start with the word "yes" or "no" (the paper's evaluation).</summary>
    Strict,
    /// <summary>
    /// POPE's own evaluate.py (also LLaVA's eval_pope): keep the text before the first '.', drop commas, split on
    /// spaces; the answer is "no" when a word is exactly "No", "no" or "not", otherwise "yes". Never unknown.
    /// </summary>
    Pope,
    /// <summary>The first whole word "yes" or "no" anywhere in the reply, case-insensitive; neither is unknown.</summary>
    First,
}

/// <summary>A POPE question: its id, gold label and object question.</summary>
public sealed record PopeQuestion(long Id, bool GoldYes, string Text);

/// <summary>A reply to one question, where it was read, and the gold label when the answers file states it too (lmms-eval logs).</summary>
public readonly record struct PopeReply(string Text, string Where, bool? GoldYes);

/// <summary>
/// Counts of one split. Unknown replies (neither yes nor no) are wrong for accuracy and count in the
/// yes-ratio denominator; they are neither positive nor negative predictions, so precision and recall
/// use only parsed replies: FN are gold-yes questions answered "no".
/// </summary>
public readonly record struct PopeCounts(int TruePositive, int FalsePositive, int TrueNegative, int FalseNegative, int UnknownYes, int UnknownNo)
{
    public int Total => TruePositive + FalsePositive + TrueNegative + FalseNegative + Unknown;
    public int Unknown => UnknownYes + UnknownNo;

    public static PopeCounts operator +(PopeCounts a, PopeCounts b) => new(
        a.TruePositive + b.TruePositive, a.FalsePositive + b.FalsePositive, a.TrueNegative + b.TrueNegative,
        a.FalseNegative + b.FalseNegative, a.UnknownYes + b.UnknownYes, a.UnknownNo + b.UnknownNo);

    public PopeMetrics Metrics()
    {
        double precision = Ratio(TruePositive, TruePositive + FalsePositive);
        double recall = Ratio(TruePositive, TruePositive + FalseNegative);
        return new PopeMetrics(
            Accuracy: Ratio(TruePositive + TrueNegative, Total),
            Precision: precision,
            Recall: recall,
            F1: precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0,
            YesRatio: Ratio(TruePositive + FalsePositive, Total),
            Unknown: Unknown,
            Questions: Total);
    }

    private static double Ratio(int num, int den) => den > 0 ? 100.0 * num / den : 0;
}

/// <summary>POPE metrics in percent (unknown and questions are counts).</summary>
public sealed record PopeMetrics(double Accuracy, double Precision, double Recall, double F1, double YesRatio, int Unknown, int Questions);

/// <summary>
/// POPE (Li et al. 2023) scoring of yes/no replies against a question file, by question id.
/// </summary>
public static class PopeScorer
{
    public static PopeAnswer Parse(string reply, PopeParse rule)
    {
        if (rule == PopeParse.Pope) return ParseAsPopeScript(reply);
        string text = reply.Trim().ToLowerInvariant();
        if (rule == PopeParse.First) return FirstYesOrNo(text);
        if (StartsWithWord(text, "yes")) return PopeAnswer.Yes;
        if (StartsWithWord(text, "no")) return PopeAnswer.No;
        return PopeAnswer.Unknown;
    }

    /// <summary>Case-sensitive and quirky on purpose ("NO" and "Not sure" count as yes), to reproduce published POPE numbers.</summary>
    private static PopeAnswer ParseAsPopeScript(string reply)
    {
        int dot = reply.IndexOf('.');
        string firstSentence = dot >= 0 ? reply[..dot] : reply;
        string[] words = firstSentence.Replace(",", "").Split(' ');
        return words.Any(w => w is "No" or "no" or "not") ? PopeAnswer.No : PopeAnswer.Yes;
    }

    private static PopeAnswer FirstYesOrNo(string text)
    {
        foreach (var m in WordPattern.EnumerateMatches(text))
        {
            var word = text.AsSpan(m.Index, m.Length);
            if (word is "yes") return PopeAnswer.Yes;
            if (word is "no") return PopeAnswer.No;
        }
        return PopeAnswer.Unknown;
    }

    private static readonly System.Text.RegularExpressions.Regex WordPattern = new(@"[\p{L}\p{N}]+", System.Text.RegularExpressions.RegexOptions.Compiled);

    private static bool StartsWithWord(string text, string word) =>
        text.StartsWith(word, StringComparison.Ordinal) && (text.Length == word.Length || !char.IsLetterOrDigit(text[word.Length]));

    /// <summary>POPE questions (JSON Lines or a JSON array): question_id, label ("yes"/"no"), text.</summary>
    public static List<PopeQuestion> ReadQuestions(string path)
    {
        var questions = new List<PopeQuestion>();
        var seen = new HashSet<long>();
        foreach (var r in JsonRecords.Read(path))
        {
            long id = r.Integer("question_id");
            string label = (r.Text("label") ?? r.Text("answer") ?? throw new UserError($"{r.Where}: missing field 'label' (yes/no)")).Trim().ToLowerInvariant();
            if (label is not ("yes" or "no")) throw new UserError($"{r.Where}: label must be 'yes' or 'no', got '{label}'");
            if (!seen.Add(id)) throw new UserError($"{r.Where}: question_id {id} appears twice");
            questions.Add(new PopeQuestion(id, label == "yes", r.String("text") ?? r.String("question") ?? ""));
        }
        if (questions.Count == 0) throw new UserError($"{path}: no questions");
        return questions;
    }

    /// <summary>POPE's three negative-sampling settings, as lmms-eval logs name them in <c>doc.category</c>.</summary>
    public static readonly string[] Categories = ["adversarial", "popular", "random"];

    /// <summary>
    /// Replies by question id: JSON Lines with <c>question_id</c> and <c>text</c> (or <c>answer</c>), or an
    /// lmms-eval <c>samples_*.jsonl</c> log (<c>doc.question_id</c>, the reply in <c>filtered_resps</c>, the gold
    /// label in <c>doc.answer</c>, the setting in <c>doc.category</c>). A log holding several settings repeats
    /// question ids, so <paramref name="category"/> picks one; records without a category are always kept.
    /// </summary>
    public static Dictionary<long, PopeReply> ReadAnswers(string path, string? category = null)
    {
        var answers = new Dictionary<long, PopeReply>();
        var categories = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var r in JsonRecords.Read(path))
        {
            long id;
            string text;
            bool? gold = null;
            if (r.Value.TryGetProperty("doc", out var docElement) && docElement.ValueKind == JsonValueKind.Object)
            {
                var doc = new JsonRecord(docElement, r.File, r.Line);
                string? recordCategory = doc.Text("category");
                if (recordCategory != null)
                {
                    categories.Add(recordCategory);
                    if (category != null && recordCategory != category) continue;
                }
                id = doc.Integer("question_id");
                text = FirstString(r, "filtered_resps") ?? FirstString(r, "resps")
                    ?? throw new UserError($"{r.Where}: an lmms-eval sample without a reply in 'filtered_resps' or 'resps'");
                if (doc.Text("answer") is { } label) gold = label.Trim().Equals("yes", StringComparison.OrdinalIgnoreCase);
            }
            else
            {
                id = r.Integer("question_id");
                text = r.String("text") ?? r.String("answer") ?? throw new UserError($"{r.Where}: missing field 'text' (the reply)");
            }
            if (!answers.TryAdd(id, new PopeReply(text, r.Where, gold)))
                throw categories.Count > 1 && category == null
                    ? new UserError($"{r.Where}: question_id {id} appears again; this log holds the settings {string.Join(", ", categories)}: name the category to score (one per answers file)") { Field = "category" }
                    : new UserError($"{r.Where}: a second answer for question_id {id} (first at {answers[id].Where})");
        }
        if (answers.Count == 0 && category != null)
            throw new UserError($"{path}: no answers of category '{category}' (the file has {(categories.Count > 0 ? string.Join(", ", categories) : "no categories")})");
        return answers;
    }

    /// <summary>The first string inside field <paramref name="name"/>, however deeply nested in arrays (lmms-eval's <c>[["Yes"]]</c>).</summary>
    private static string? FirstString(JsonRecord r, string name)
    {
        if (!r.Value.TryGetProperty(name, out var v)) return null;
        while (v.ValueKind == JsonValueKind.Array)
        {
            if (v.GetArrayLength() == 0) return null;
            v = v[0];
        }
        return v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    }

    /// <summary>
    /// Confusion counts of one split. Every question needs exactly one answer and every answer a question:
    /// a mismatch means the files are not a pair, so it is an error rather than a silent drop.
    /// </summary>
    public static PopeCounts Score(IReadOnlyList<PopeQuestion> questions, IReadOnlyDictionary<long, PopeReply> answers,
        PopeParse rule, string questionsName, string answersName)
    {
        var ids = questions.Select(q => q.Id).ToHashSet();
        var stray = answers.Where(a => !ids.Contains(a.Key)).OrderBy(a => a.Key).ToList();
        if (stray.Count > 0)
            throw new UserError($"{stray[0].Value.Where}: question_id {stray[0].Key} is not in {questionsName} " +
                $"({stray.Count} such answer(s)); pair each answers file with its own questions file");
        var missing = questions.Where(q => !answers.ContainsKey(q.Id)).Select(q => q.Id).ToList();
        if (missing.Count > 0)
            throw new UserError($"{answersName}: {missing.Count} of {questions.Count} questions of {questionsName} have no answer " +
                $"(e.g. question_id {string.Join(", ", missing.Take(5))}); answer every question");

        int tp = 0, fp = 0, tn = 0, fn = 0, unknownYes = 0, unknownNo = 0;
        foreach (var q in questions)
        {
            if (answers[q.Id].GoldYes is bool stated && stated != q.GoldYes)
                throw new UserError($"{answers[q.Id].Where}: the answers file's gold label for question_id {q.Id} is '{(stated ? "yes" : "no")}' but {questionsName} says " +
                    $"'{(q.GoldYes ? "yes" : "no")}'; these answers belong to another split (pick its category or pair the files differently)");
            switch (Parse(answers[q.Id].Text, rule), q.GoldYes)
            {
                case (PopeAnswer.Yes, true): tp++; break;
                case (PopeAnswer.Yes, false): fp++; break;
                case (PopeAnswer.No, false): tn++; break;
                case (PopeAnswer.No, true): fn++; break;
                case (PopeAnswer.Unknown, true): unknownYes++; break;
                default: unknownNo++; break;
            }
        }
        return new PopeCounts(tp, fp, tn, fn, unknownYes, unknownNo);
    }

    /// <summary>Writes <c>metrics.json</c>: each split by name, then <c>pooled</c> over all of them.</summary>
    public static void Write(string outDir, PopeParse rule, IReadOnlyList<(string Name, string Questions, string Answers, PopeCounts Counts)> splits)
    {
        var bySplit = new Dictionary<string, object>();
        foreach (var s in splits) bySplit[s.Name] = Entry(s.Counts, s.Questions, s.Answers);
        var pooled = splits.Aggregate(default(PopeCounts), (acc, s) => acc + s.Counts);
        var doc = new Dictionary<string, object>
        {
            ["parse"] = rule.ToString().ToLowerInvariant(),
            ["splits"] = bySplit,
            ["pooled"] = Entry(pooled, null, null),
            ["provenance"] = Provenance.Of([], splits.SelectMany(s => new[]
                { ($"{s.Name}.questions", Hashing.Sha256File(s.Questions)), ($"{s.Name}.answers", Hashing.Sha256File(s.Answers)) })),
        };
        AtomicFile.WriteAllText(Path.Combine(outDir, "metrics.json"),
            JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    private static Dictionary<string, object> Entry(PopeCounts c, string? questions, string? answers)
    {
        var m = c.Metrics();
        var e = new Dictionary<string, object>
        {
            ["accuracy"] = m.Accuracy, ["precision"] = m.Precision, ["recall"] = m.Recall, ["f1"] = m.F1,
            ["yes_ratio"] = m.YesRatio, ["unknown"] = m.Unknown, ["questions"] = m.Questions,
            ["tp"] = c.TruePositive, ["fp"] = c.FalsePositive, ["tn"] = c.TrueNegative, ["fn"] = c.FalseNegative,
        };
        if (questions != null) e["questions_file"] = questions;
        if (answers != null) e["answers_file"] = answers;
        return e;
    }
}
