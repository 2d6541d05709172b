using System.Text.Json;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Model;

using TruthProbe.Lab;

namespace TruthProbe.Demo;

/// <summary>One model's verdicts on a HaluEval-layout set, seeds pooled, plus its reading accuracy.</summary>
public sealed record LabJudgement(IReadOnlyList<HaluEvalJudged> Judged, IReadOnlyList<HaluEvalScores> PerSeed,
    double ReadingAccuracy, double CounterfactualReadingAccuracy, int Rows, int CounterfactualRows)
{
    public MeanStd Metric(Func<HaluEvalScores, double> metric) => MeanStd.Of(PerSeed.Select(metric).ToList());
}

/// <summary>
/// The lab's stand-in for the HaluEval judge. A lab model knows no "Yes/No" instructions, so it judges the
/// way it reads: given the item's knowledge and question, it completes "Answer: Alice lives in" greedily,
/// and calls the shown answer hallucinated ("yes", the positive class) when its word differs from the
/// answer's last word. Gold and hallucinated answers differ only in that word, so one forward per row
/// judges both, and the metrics are HaluEval's (Acc/F1/P/R, x100, mean over seeds).
/// </summary>
public static class LabJudge
{
    public sealed record Row(HaluEvalRow Data, bool Counterfactual);

    public static List<Row> ReadRows(string path)
    {
        var rows = HaluEvalData.ReadRows(path);
        var flags = File.ReadLines(path).Where(l => l.Trim().Length > 0).Select((line, i) =>
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.TryGetProperty("counterfactual", out var c) && c.ValueKind == JsonValueKind.True;
        }).ToList();
        if (flags.Count != rows.Count) throw new UserError($"{path}: {rows.Count} rows but {flags.Count} non-empty lines");
        return rows.Select((r, i) => new Row(r, flags[i])).ToList();
    }

    /// <summary>The word the model writes after the answer's stem ("Alice lives in"), per row.</summary>
    public static string[] Completions(Transformer model, IReadOnlyList<Row> rows, Interventions? gates, Progress? progress = null)
    {
        var tokenizer = model.Tokenizer ?? throw new ArgumentException("the lab judge needs the model's tokenizer (a lab folder loads with its tokenizer.json)", nameof(model));
        var state = model.NewState();
        var words = new string[rows.Count];
        for (int i = 0; i < rows.Count; i++)
        {
            var r = rows[i].Data;
            var (stem, _) = SplitLastWord(r.RightAnswer);
            state.Reset();
            var logits = model.Forward(state, tokenizer.Encode(SyntheticWorld.Prompt(r.Knowledge, r.Question, stem)), interventions: gates);
            words[i] = tokenizer.TokenText(System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits));
            progress?.Advance();
        }
        return words;
    }

    public static LabJudgement Judge(IReadOnlyList<Row> rows, string[] completions, IReadOnlyList<int> seeds)
    {
        var judged = new List<HaluEvalJudged>();
        var perSeed = new List<HaluEvalScores>();
        foreach (int seed in seeds)
        {
            var items = HaluEvalData.Items(rows.Select(r => r.Data), seed);
            var part = items.Select((item, i) =>
            {
                bool saysYes = completions[i] != SplitLastWord(item.Answer).Last;
                return new HaluEvalJudged(item, completions[i], new HaluEvalParsed(saysYes, Parseable: true));
            }).ToList();
            judged.AddRange(part);
            perSeed.Add(HaluEvalScores.From(part.Select(j => j.Outcome)));
        }
        bool[] right = rows.Select((r, i) => completions[i] == SplitLastWord(r.Data.RightAnswer).Last).ToArray();
        int counter = rows.Count(r => r.Counterfactual);
        double reading = 100.0 * right.Count(x => x) / rows.Count;
        double counterReading = counter == 0 ? double.NaN : 100.0 * rows.Where((r, i) => r.Counterfactual && right[i]).Count() / counter;
        return new LabJudgement(judged, perSeed, reading, counterReading, rows.Count, counter);
    }

    private static (string Stem, string Last) SplitLastWord(string answer)
    {
        int space = answer.TrimEnd().LastIndexOf(' ');
        if (space < 0) throw new UserError($"answer '{answer}' has no stem before its last word; lab answers restate the subject (\"Alice lives in Paris\")");
        return (answer[..space], answer[(space + 1)..].Trim());
    }
}
