using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Numerics;

namespace TruthProbe.Cli;

/// <summary><c>eval pope &lt;model&gt;</c>: the model answers the split's questions about the images itself, vanilla and gated.</summary>
public sealed partial class EvalPopeVerb
{
    private const string Task = "pope";


    public int Merge(ParseResult args, Sharding.ShardParts parts, TextWriter stdout, TextWriter stderr)
    {
        _image.JoinParts(parts, args.GetValue(_out)!);
        return RunModel(args, stdout, stderr);
    }

    private int RunModel(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var questionsFiles = args.GetValue(_questions)!;
        if (args.GetValue(_answers)!.Length > 0 || args.GetValue(_categories)!.Length > 0)
            throw new UserError($"{Name}: --answers and --category score replies made elsewhere; with a model the verb makes the replies, drop them");
        if (questionsFiles.Length != 1)
            throw new UserError($"{Name}: with a model, give exactly one --questions file (one POPE split per run; got {questionsFiles.Length})");
        string questionsPath = questionsFiles[0];
        string imagesFolder = _image.ImagesFolder(args, Name);
        string outDir = args.GetValue(_out)!;
        var rule = Rule(args);

        var questions = PopeScorer.ReadQuestions(questionsPath);
        bool? omni = _image.QwenOmni(args);
        var prompts = questions.Select(q => new ImagePrompt(q.Id,
            Path.Combine(imagesFolder, q.Image ?? throw new UserError($"{questionsPath}: question_id {q.Id} names no 'image'; a model-driven run needs the image file of every question")),
            omni is { } o ? QwenPrompts.Pope(o, q.Text) : LlavaPrompts.Pope(q.Text))).ToList();
        using var session = _image.Open(args, Name, prompts);
        var shard = _image.Shard.Read(args);
        using var log = session.Answer(Task, prompts, outDir, stderr, shard, _image.Merging);
        if (shard is { } part) return _image.FinishPart(args, Name, log, part, prompts, outDir, stdout);

        var byId = prompts.ToDictionary(p => p.Id);
        var counts = new List<(string Arm, PopeCounts Counts)>();
        var arms = new JsonObject();
        foreach (var arm in session.Arms)
        {
            string Reply(long id) => log.Replies[(arm.Name, id)];
            var replies = questions.ToDictionary(q => q.Id, q => new PopeReply(Reply(q.Id), log.Path, null));
            var c = PopeScorer.Score(questions, replies, rule, questionsPath, log.Path);
            counts.Add((arm.Name, c));
            arms[arm.Name] = ImageEvalOutputs.PopeMetrics(c);
            ImageEvalOutputs.WriteLines(Path.Combine(outDir, ImageEvalOutputs.SamplesFile(Task, arm.Name)),
                questions.Select((q, i) => ImageEvalOutputs.PopeSample(i, q, byId[q.Id].Prompt, Reply(q.Id), rule)));
        }
        JsonObject? mcnemar = session.Arms.Count == 2
            ? ImageEvalOutputs.McNemar(ImageEvalOutputs.PopeCorrect(questions, id => log.Replies[("vanilla", id)], rule),
                                       ImageEvalOutputs.PopeCorrect(questions, id => log.Replies[("gated", id)], rule))
            : null;
        var run = session.Run(Task, prompts, imagesFolder);
        run["questions"] = Path.GetFullPath(questionsPath);
        string questionsSha = Hashing.Sha256File(questionsPath);
        // The log is renamed before the summary is written: a folder with summary.json is finished.
        log.Complete(Path.Combine(outDir, ImageEvalOutputs.Replies));
        ImageEvalOutputs.WriteSummary(outDir, new JsonObject
        {
            ["parse"] = rule.ToString().ToLowerInvariant(),
            ["arms"] = arms,
            ["mcnemar_exact"] = mcnemar,
            ["run"] = run,
            ["provenance"] = Provenance.Of([], [("questions", questionsSha)]),
        });

        stdout.WriteLine($"POPE: {questions.Count} questions of {Path.GetFileName(questionsPath)} on {prompts.Select(p => p.Image).Distinct().Count()} images, parse {rule.ToString().ToLowerInvariant()}");
        stdout.Write(ImageEvalOutputs.PopeTable(counts));
        if (mcnemar != null)
            stdout.WriteLine(string.Format(CultureInfo.InvariantCulture, "McNemar exact p (vanilla vs gated): {0:G3} (only vanilla right {1}, only gated right {2})",
                (double)mcnemar["p_value"]!, (int)mcnemar["only_vanilla_correct"]!, (int)mcnemar["only_gated_correct"]!));
        stdout.WriteLine($"wrote {Path.Combine(outDir, ImageEvalOutputs.SummaryFile)} and {string.Join(", ", session.Arms.Select(a => ImageEvalOutputs.SamplesFile(Task, a.Name)))}");
        return 0;
    }
}
