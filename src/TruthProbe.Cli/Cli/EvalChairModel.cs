using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Numerics;

namespace TruthProbe.Cli;

/// <summary><c>eval chair &lt;model&gt;</c>: the model captions the images itself, vanilla and gated, and CHAIR scores both.</summary>
public sealed partial class EvalChairVerb
{
    private const string Task = "chair";

    // 512: the budget of the CHAIR protocol of OPERA and "Less is More", whose LLaVA-1.5 captions average ~100 words.
    private readonly ImageEvalOptions _image = new(512, "the CHAIR protocol of OPERA and \"Less is More\"");
    private readonly Option<string?> _imageIds = Opt.Text("--image-ids", "FILE",
        "with a model: the images to caption, one a line: a COCO image id (the file COCO_val2014_<id, 12 digits>.jpg in --images) " +
        "or a file name in --images whose name ends in the COCO id (COCO_val2014_000000123456.jpg)");
    private readonly Option<int> _bootstrap = Opt.Int("--bootstrap", "B", 1000, "with a model and gates: paired bootstrap resamples over images for the gated - vanilla intervals", min: 1);
    private readonly Option<int> _seed = Opt.Int("--seed", "S", 0, "with a model and gates: seed of the paired bootstrap (recorded)", min: 0);


    public int Merge(ParseResult args, Sharding.ShardParts parts, TextWriter stdout, TextWriter stderr)
    {
        _image.JoinParts(parts, args.GetValue(_out)!);
        return RunModel(args, stdout, stderr);
    }

    private int RunModel(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        if (args.GetValue(_captions) != null)
            throw new UserError($"{Name}: --captions scores captions made elsewhere; with a model the verb makes the captions, drop it");
        string idsPath = args.GetValue(_imageIds) ?? throw new UserError($"{Name}: with a model, give --image-ids FILE (the images to caption)");
        string imagesFolder = _image.ImagesFolder(args, Name);
        string? gtPath = args.GetValue(_gt);
        string outDir = args.GetValue(_out)!;
        var scorer = LoadScorer(gtPath);

        string prompt = _image.QwenOmni(args) is { } omni ? QwenPrompts.Chair(omni) : LlavaPrompts.Chair;
        var prompts = ReadImageIds(idsPath, imagesFolder).Select(x => new ImagePrompt(x.Id, x.File, prompt)).ToList();
        using var session = _image.Open(args, Name, prompts);
        var shard = _image.Shard.Read(args);
        using var log = session.Answer(Task, prompts, outDir, stderr, shard, _image.Merging);
        if (shard is { } part) return _image.FinishPart(args, Name, log, part, prompts, outDir, stdout);

        var results = new List<(string Arm, ChairResult Result)>();
        var arms = new JsonObject();
        foreach (var arm in session.Arms)
        {
            var result = scorer.Score(prompts.Select(p => new Caption(p.Id, log.Replies[(arm.Name, p.Id)])));
            results.Add((arm.Name, result));
            arms[arm.Name] = ImageEvalOutputs.ChairMetrics(result);
            ImageEvalOutputs.WriteLines(Path.Combine(outDir, ImageEvalOutputs.SamplesFile(Task, arm.Name)),
                prompts.Select((p, i) => ImageEvalOutputs.ChairSample(i, p, result.Details[i])));
        }
        int resamples = args.GetValue(_bootstrap), seed = args.GetValue(_seed);
        JsonObject? bootstrap = results.Count == 2 ? ImageEvalOutputs.ChairBootstrap(results[0].Result, results[1].Result, resamples, (ulong)seed) : null;
        var run = session.Run(Task, prompts, imagesFolder);
        run["image_ids"] = Path.GetFullPath(idsPath);
        run["gt"] = gtPath != null ? Path.GetFullPath(gtPath) : ChairScorer.DefaultGroundTruth;
        // The log is renamed before the summary is written: a folder with summary.json is finished.
        log.Complete(Path.Combine(outDir, ImageEvalOutputs.Replies));
        ImageEvalOutputs.WriteSummary(outDir, new JsonObject
        {
            ["arms"] = arms,
            ["paired_bootstrap"] = bootstrap,
            ["unknown_image_ids"] = new JsonArray([.. results[0].Result.UnknownImageIds.Select(id => (JsonNode)id)]),
            ["run"] = run,
            ["provenance"] = Provenance.Of(bootstrap == null ? [] : [("bootstrap", (JsonNode)seed)],
                [("image_ids", Hashing.Sha256File(idsPath)), .. gtPath == null ? [] : new[] { ("gt", Hashing.Sha256File(gtPath)) }]),
        });

        var c = CultureInfo.InvariantCulture;
        stdout.WriteLine($"CHAIR: {prompts.Count} images from {Path.GetFileName(idsPath)}, \"{LlavaPrompts.DescribeInDetail}\"");
        stdout.Write(ImageEvalOutputs.ChairTable(results));
        if (bootstrap != null)
            stdout.WriteLine(string.Format(c, "gated - vanilla: CHAIR_S {0:+0.0;-0.0;0.0} [{1}, {2}], CHAIR_I {3} [{4}, {5}] (95% paired bootstrap over images, {6} resamples, seed {7})",
                (double)bootstrap["chair_s_diff"]!, Text(bootstrap["chair_s_low"]), Text(bootstrap["chair_s_high"]),
                Text(bootstrap["chair_i_diff"]), Text(bootstrap["chair_i_low"]), Text(bootstrap["chair_i_high"]), resamples, seed));
        if (results[0].Result.UnknownImageIds.Count > 0)
            stderr.WriteLine($"warning: {results[0].Result.UnknownImageIds.Count} image(s) without ground truth were not scored (e.g. {string.Join(", ", results[0].Result.UnknownImageIds.Take(5))})");
        stdout.WriteLine($"wrote {Path.Combine(outDir, ImageEvalOutputs.SummaryFile)} and {string.Join(", ", session.Arms.Select(a => ImageEvalOutputs.SamplesFile(Task, a.Name)))}");
        return 0;
    }

    private static string Text(JsonNode? value) => value == null ? "n/a" : ((double)value).ToString("0.0", CultureInfo.InvariantCulture);

    /// <summary>The images to caption, in file order: ids with their files in <paramref name="folder"/>. A repeated id is an error.</summary>
    private static List<(long Id, string File)> ReadImageIds(string path, string folder)
    {
        if (!File.Exists(path)) throw new UserError($"{path}: file not found") { Field = "image_ids" };
        var images = new List<(long, string)>();
        var seen = new HashSet<long>();
        int line = 0;
        foreach (string raw in File.ReadLines(path))
        {
            line++;
            string entry = raw.Trim();
            if (entry.Length == 0) continue;
            bool isId = long.TryParse(entry, NumberStyles.None, CultureInfo.InvariantCulture, out long id);
            if (!isId) id = ChairScorer.ParseImageId(entry, $"{path}:{line}");
            string file = Path.Combine(folder, isId ? $"COCO_val2014_{id:D12}.jpg" : entry);
            if (!seen.Add(id)) throw new UserError($"{path}:{line}: image id {id} is listed twice; list each image once") { Field = "image_ids" };
            images.Add((id, file));
        }
        if (images.Count == 0) throw new UserError($"{path}: no image ids; list one COCO image id or file name a line") { Field = "image_ids" };
        return images;
    }
}
