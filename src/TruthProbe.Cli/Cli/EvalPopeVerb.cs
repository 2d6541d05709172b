using System.CommandLine;
using System.Globalization;
using TruthProbe.Common;
using TruthProbe.Evaluation;

namespace TruthProbe.Cli;

/// <summary><c>eval pope</c>: accuracy / precision / recall / F1 / yes-ratio of yes-no replies, per split and pooled.</summary>
public sealed partial class EvalPopeVerb : IShardedVerb
{
    public string Name => "eval pope";
    public string Summary => "POPE yes/no object probing metrics, per split and pooled";
    public string Details => """
        Unknown replies are wrong for accuracy and count in yes_ratio's denominator; precision and recall use
        the replies parsed as yes or no (FN = gold-yes questions answered no).
        With a LLaVA model (eval pope <model> --questions F --images DIR) the verb makes the replies itself: LLaVA-1.5's
        vicuna_v1 prompt, greedy, vanilla and (with gates) gated, resumable; see docs/evaluation.md.
        """;

    private readonly Option<string[]> _questions = Opt.Repeated("--questions", "FILE",
        "a POPE split (../shared/data/pope/...: question_id, label yes/no; with a model also text and image); repeat for more splits");
    private readonly Option<string[]> _answers = Opt.Repeated("--answers", "FILE",
        "the replies to that split, paired with the --questions files in order: JSON Lines with question_id and text, " +
        "or an lmms-eval samples_*.jsonl log (doc.question_id, filtered_resps; its doc.answer must agree with the split's labels)");
    private readonly Option<string[]> _categories = Opt.Repeated("--category", "NAME",
        "adversarial, popular or random: which setting of an lmms-eval log that holds several (one per --answers, in order); " +
        "by default the one the --questions file name contains");
    private readonly Option<string> _parse = Opt.Choice("--parse", "strict",
        "strict: the reply, lower-cased and stripped, must start with the word yes or no; " +
        "pope: POPE's evaluate.py (first sentence; no if a word is No/no/not, else yes); " +
        "first: the first whole word yes or no anywhere in the reply (any case), else unknown", "strict", "pope", "first");
    private readonly Option<string> _out = Opt.Out("DIR", "writes metrics.json (accuracy, precision, recall, f1, yes_ratio in %, unknown count); " +
        "with a model: samples_pope_<arm>.jsonl, replies.jsonl and summary.json (arms side by side, McNemar)");
    private readonly ImageEvalOptions _image = new(128, "LLaVA's model_vqa_loader");
    public IEnumerable<Symbol> Symbols => [.. _image.Symbols, _questions, _answers, _categories, _parse, _out];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        if (_image.ModelGiven(args)) return RunModel(args, stdout, stderr);
        _image.RefuseWithoutModel(args, Name);
        var answers = args.GetValue(_answers)!;
        var questions = args.GetValue(_questions)!;
        var categories = args.GetValue(_categories)!;
        string outDir = args.GetValue(_out)!;
        if (questions.Length == 0) throw new UserError("eval pope: missing --questions (a POPE question file)");
        if (answers.Length != questions.Length)
            throw new UserError($"eval pope: {answers.Length} --answers for {questions.Length} --questions; give one --answers per --questions, in the same order");
        if (categories.Length > 0 && categories.Length != answers.Length)
            throw new UserError($"eval pope: {categories.Length} --category for {answers.Length} --answers; give one per --answers, in the same order");
        foreach (string cat in categories)
            if (!PopeScorer.Categories.Contains(cat)) throw new UserError($"eval pope: --category must be one of {string.Join(", ", PopeScorer.Categories)}, got '{cat}'");
        var rule = Rule(args);

        var splits = new List<(string Name, string Questions, string Answers, PopeCounts Counts)>();
        for (int i = 0; i < questions.Length; i++)
        {
            var qs = PopeScorer.ReadQuestions(questions[i]);
            var ans = PopeScorer.ReadAnswers(answers[i], categories.Length > 0 ? categories[i] : CategoryInName(questions[i]));
            var counts = PopeScorer.Score(qs, ans, rule, questions[i], answers[i]);
            string name = Path.GetFileNameWithoutExtension(questions[i]);
            if (splits.Any(s => s.Name == name)) name = $"{name}#{i + 1}";
            splits.Add((name, Path.GetFullPath(questions[i]), Path.GetFullPath(answers[i]), counts));
        }
        PopeScorer.Write(outDir, rule, splits);

        var c = CultureInfo.InvariantCulture;
        int width = Math.Max(6, splits.Max(s => s.Name.Length));
        stdout.WriteLine(string.Format(c, "{0,-" + width + "} {1,8} {2,9} {3,7} {4,6} {5,9} {6,7}", "split", "accuracy", "precision", "recall", "f1", "yes_ratio", "unknown"));
        var rows = splits.Select(s => (s.Name, s.Counts)).ToList();
        if (splits.Count > 1) rows.Add(("pooled", splits.Aggregate(default(PopeCounts), (a, s) => a + s.Counts)));
        foreach (var (name, counts) in rows)
        {
            var m = counts.Metrics();
            stdout.WriteLine(string.Format(c, "{0,-" + width + "} {1,8:0.00} {2,9:0.00} {3,7:0.00} {4,6:0.00} {5,9:0.00} {6,7}",
                name, m.Accuracy, m.Precision, m.Recall, m.F1, m.YesRatio, m.Unknown));
        }
        stdout.WriteLine($"wrote {Path.Combine(outDir, "metrics.json")}");
        return 0;
    }

    private PopeParse Rule(ParseResult args) => args.GetValue(_parse) switch
    {
        "pope" => PopeParse.Pope,
        "first" => PopeParse.First,
        _ => PopeParse.Strict,
    };

    /// <summary>The one POPE setting named in a questions file's name (coco_pope_popular.jsonl -> popular), if exactly one is.</summary>
    private static string? CategoryInName(string questionsPath)
    {
        string name = Path.GetFileNameWithoutExtension(questionsPath).ToLowerInvariant();
        var named = PopeScorer.Categories.Where(name.Contains).ToList();
        return named.Count == 1 ? named[0] : null;
    }
}
