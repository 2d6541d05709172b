using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Statistics;

namespace TruthProbe.Evaluation;

/// <summary>
/// The files a model-driven POPE or CHAIR run leaves: one sample log per arm (<c>samples_pope_vanilla.jsonl</c> ...,
/// in question / image order, lmms-eval's field names where it has one so that <c>eval pope --answers</c> and
/// <c>eval chair --captions</c> rescore them as they are), then <c>summary.json</c> with both arms side by side and the
/// paired test. Nothing in them depends on timing or on how often the run was resumed: reruns are byte-identical.
/// </summary>
public static class ImageEvalOutputs
{
    public const string SummaryFile = "summary.json";
    /// <summary>The reply log while the run is under way (<see cref="ReplyLog"/>): a run finding it resumes from it.</summary>
    public const string PartialReplies = "replies.partial.jsonl";
    /// <summary>The reply log of a finished run, with its fingerprint, in the order the replies were made.</summary>
    public const string Replies = "replies.jsonl";

    public static string SamplesFile(string task, string arm) => $"samples_{task}_{arm}.jsonl";

    /// <summary>One POPE sample log line: <c>doc</c> as lmms-eval's (question_id, image, question, answer = gold label), the prompt, the reply, its parse.</summary>
    public static JsonObject PopeSample(int index, PopeQuestion q, string prompt, string reply, PopeParse rule) => new()
    {
        ["doc_id"] = index,
        ["doc"] = new JsonObject { ["question_id"] = q.Id, ["image"] = q.Image, ["question"] = q.Text, ["answer"] = q.GoldYes ? "yes" : "no" },
        ["target"] = q.GoldYes ? "yes" : "no",
        ["prompt"] = prompt,
        ["reply"] = reply,
        ["filtered_resps"] = new JsonArray(reply),
        ["parsed"] = PopeScorer.Parse(reply, rule).ToString().ToLowerInvariant(),
    };

    /// <summary>One CHAIR sample log line: the image, the prompt, the caption and what CHAIR found in it.</summary>
    public static JsonObject ChairSample(int index, ImagePrompt p, CaptionScore score) => new()
    {
        ["doc_id"] = index,
        ["image_id"] = p.Id,
        ["image"] = Path.GetFileName(p.Image),
        ["prompt"] = p.Prompt,
        ["caption"] = score.Caption.Text,
        ["mentioned"] = new JsonArray([.. score.Mentioned.Select(m => (JsonNode)m.Object)]),
        ["hallucinated"] = new JsonArray([.. score.Hallucinated.Select(m => (JsonNode)m.Object)]),
    };

    /// <summary>Prompts and replies stay readable: "&lt;image&gt;", "human's" and non-ASCII text are written as they are, not as \u escapes.</summary>
    public static readonly JsonSerializerOptions Readable = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void WriteLines(string path, IEnumerable<JsonObject> lines) =>
        AtomicFile.WriteAllText(path, string.Concat(lines.Select(l => l.ToJsonString(Readable) + "\n")));

    public static void WriteSummary(string outDir, JsonObject summary) =>
        AtomicFile.WriteAllText(Path.Combine(outDir, SummaryFile), summary.ToJsonString(new JsonSerializerOptions(Readable) { WriteIndented = true }) + "\n");

    /// <summary>POPE metrics of one arm, as <c>eval pope</c> writes them (percent; counts as integers).</summary>
    public static JsonObject PopeMetrics(PopeCounts c)
    {
        var m = c.Metrics();
        return new JsonObject
        {
            ["accuracy"] = m.Accuracy, ["precision"] = m.Precision, ["recall"] = m.Recall, ["f1"] = m.F1, ["yes_ratio"] = m.YesRatio,
            ["unknown"] = m.Unknown, ["questions"] = m.Questions,
            ["tp"] = c.TruePositive, ["fp"] = c.FalsePositive, ["tn"] = c.TrueNegative, ["fn"] = c.FalseNegative,
        };
    }

    /// <summary>Whether each reply is right (an unknown parse is wrong, as for accuracy).</summary>
    public static bool[] PopeCorrect(IReadOnlyList<PopeQuestion> questions, Func<long, string> reply, PopeParse rule) =>
        questions.Select(q => PopeScorer.Parse(reply(q.Id), rule) == (q.GoldYes ? PopeAnswer.Yes : PopeAnswer.No)).ToArray();

    /// <summary>Exact two-sided McNemar of vanilla against gated over the same questions.</summary>
    public static JsonObject McNemar(bool[] vanilla, bool[] gated)
    {
        var r = McNemarTest.Exact(vanilla, gated);
        return new JsonObject
        {
            ["only_vanilla_correct"] = r.OnlyFirstCorrect, ["only_gated_correct"] = r.OnlySecondCorrect, ["p_value"] = r.PValue,
            ["test"] = "exact McNemar, two-sided: p = min(1, 2 P[Binomial(b + c, 1/2) <= min(b, c)]) over the discordant questions",
        };
    }

    public static JsonObject ChairMetrics(ChairResult r) => new()
    {
        ["chair_s"] = r.ChairS, ["chair_i"] = r.ChairI, ["recall"] = r.Recall, ["len"] = r.Len, ["captions"] = r.Captions,
        ["mentions"] = r.Mentions, ["hallucinated_mentions"] = r.HallucinatedMentions, ["empty_captions"] = r.EmptyCaptions,
        ["unknown_images"] = r.UnknownImageIds.Count,
    };

    /// <summary>
    /// Gated minus vanilla CHAIR_S and CHAIR_I (percentage points) with 95% paired percentile-bootstrap intervals over
    /// the scored images (<see cref="PairedBootstrap"/>): both arms' captions of an image are drawn together.
    /// </summary>
    public static JsonObject ChairBootstrap(ChairResult vanilla, ChairResult gated, int resamples, ulong seed)
    {
        var a = vanilla.Details.Where(d => d.KnownImage).ToList();
        var b = gated.Details.Where(d => d.KnownImage).ToList();
        if (!a.Select(d => d.Caption.ImageId).SequenceEqual(b.Select(d => d.Caption.ImageId)))
            throw new ArgumentException("the two arms' captions are not of the same images in the same order");
        double[] Of(List<CaptionScore> s, Func<CaptionScore, double> f) => s.Select(f).ToArray();
        double[] ones = Of(a, _ => 1);
        var sentence = PairedBootstrap.RatioDifference(Of(a, d => d.Hallucinated.Count > 0 ? 1 : 0), ones, Of(b, d => d.Hallucinated.Count > 0 ? 1 : 0), ones, resamples, seed);
        var instance = PairedBootstrap.RatioDifference(Of(a, d => d.Hallucinated.Count), Of(a, d => d.Mentioned.Count), Of(b, d => d.Hallucinated.Count), Of(b, d => d.Mentioned.Count), resamples, seed);
        return new JsonObject
        {
            ["chair_s_diff"] = gated.ChairS - vanilla.ChairS,
            ["chair_s_low"] = Points(sentence.Low), ["chair_s_high"] = Points(sentence.High),
            ["chair_i_diff"] = gated.ChairI - vanilla.ChairI,
            ["chair_i_low"] = Points(instance.Low), ["chair_i_high"] = Points(instance.High),
            ["resamples"] = resamples, ["seed"] = seed,
            ["test"] = "95% percentile bootstrap over images, vanilla and gated captions of an image resampled together; gated - vanilla in percentage points",
        };
    }

    private static JsonNode? Points(double fraction) => double.IsNaN(fraction) ? null : 100 * fraction;

    /// <summary>The console table of a POPE run: one row per arm.</summary>
    public static string PopeTable(IReadOnlyList<(string Arm, PopeCounts Counts)> arms)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        sb.AppendLine(string.Format(c, "{0,-8} {1,8} {2,9} {3,7} {4,6} {5,9} {6,7}", "arm", "accuracy", "precision", "recall", "f1", "yes_ratio", "unknown"));
        foreach (var (arm, counts) in arms)
        {
            var m = counts.Metrics();
            sb.AppendLine(string.Format(c, "{0,-8} {1,8:0.00} {2,9:0.00} {3,7:0.00} {4,6:0.00} {5,9:0.00} {6,7}", arm, m.Accuracy, m.Precision, m.Recall, m.F1, m.YesRatio, m.Unknown));
        }
        return sb.ToString();
    }

    /// <summary>The console table of a CHAIR run: one row per arm.</summary>
    public static string ChairTable(IReadOnlyList<(string Arm, ChairResult Result)> arms)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        sb.AppendLine(string.Format(c, "{0,-8} {1,7} {2,7} {3,7} {4,7} {5,8}", "arm", "CHAIR_S", "CHAIR_I", "recall", "len", "captions"));
        foreach (var (arm, r) in arms)
            sb.AppendLine(string.Format(c, "{0,-8} {1,7:0.0} {2,7} {3,7} {4,7:0.0} {5,8}", arm, r.ChairS,
                r.ChairI?.ToString("0.0", c) ?? "n/a", r.Recall?.ToString("0.0", c) ?? "n/a", r.Len, r.Captions));
        return sb.ToString();
    }
}
