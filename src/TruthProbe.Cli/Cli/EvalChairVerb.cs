using System.CommandLine;
using System.Globalization;
using TruthProbe.Common;
using TruthProbe.Evaluation;

namespace TruthProbe.Cli;

/// <summary><c>eval chair</c>: CHAIR_S / CHAIR_I / recall / length of a captions file against COCO ground truth.</summary>
public sealed partial class EvalChairVerb : IShardedVerb
{
    public string Name => "eval chair";
    public string Summary => "CHAIR object hallucination of image captions (COCO)";
    public string Details => """
        Captions of images missing from the ground truth are not scored; they are counted and listed.
        With a LLaVA model (eval chair <model> --images DIR --image-ids F) the verb makes the captions itself: LLaVA-1.5's
        vicuna_v1 prompt "Please describe this image in detail.", greedy, vanilla and (with gates) gated, resumable.
        """;

    private readonly Option<string?> _captions = Opt.Text("--captions", "FILE",
        "JSON Lines: image_id (int, or a COCO file name such as COCO_val2014_000000123456.jpg) and caption (field 'caption' or 'text'); " +
        "a JSON array of such objects also works");
    private readonly Option<string?> _gt = Opt.Text("--gt", "FILE",
        "ground-truth objects per image {\"<image id>\": [objects]}; default: ../shared/data/chair/coco2014_gt_objects_subset_lemmatizer.json (the published numbers' build)");
    private readonly Option<string> _out = Opt.Out("DIR",
        "writes metrics.json (chair_s, chair_i, recall in %, len = words per caption, captions, unknown_images) and " +
        "captions.jsonl (mentioned / hallucinated / ground-truth objects); " +
        "with a model: samples_chair_<arm>.jsonl, replies.jsonl and summary.json (arms side by side, paired bootstrap)");
    public IEnumerable<Symbol> Symbols => [.. _image.Symbols, _imageIds, _bootstrap, _seed, _captions, _gt, _out];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        if (_image.ModelGiven(args)) return RunModel(args, stdout, stderr);
        _image.RefuseWithoutModel(args, Name, _imageIds, _bootstrap, _seed);
        string captionsPath = args.GetValue(_captions) ?? throw new UserError($"{Name}: give --captions FILE (the captions to score), or a model with --images and --image-ids to make them");
        string? gtPath = args.GetValue(_gt);
        string outDir = args.GetValue(_out)!;

        var scorer = LoadScorer(gtPath);
        var captions = ChairScorer.ReadCaptions(captionsPath);
        var result = scorer.Score(captions);
        var inputs = new Dictionary<string, string>
        {
            ["captions"] = Path.GetFullPath(captionsPath),
            ["captions_sha256"] = Hashing.Sha256File(captionsPath),
            ["gt"] = gtPath != null ? Path.GetFullPath(gtPath) : ChairScorer.DefaultGroundTruth,
        };
        ChairScorer.Write(result, outDir, inputs);

        var c = CultureInfo.InvariantCulture;
        stdout.WriteLine(string.Format(c, "CHAIR_S {0:0.0}  CHAIR_I {1}  recall {2}  len {3:0.0}  ({4} captions, {5} mentions)",
            result.ChairS, result.ChairI?.ToString("0.0", c) ?? "n/a", result.Recall?.ToString("0.0", c) ?? "n/a",
            result.Len, result.Captions, result.Mentions));
        if (result.UnknownImageIds.Count > 0)
            stderr.WriteLine($"warning: {result.UnknownImageIds.Count} caption(s) of images without ground truth were not scored " +
                $"(e.g. {string.Join(", ", result.UnknownImageIds.Take(5))}); listed in metrics.json");
        if (result.EmptyCaptions > 0)
            stderr.WriteLine($"warning: {result.EmptyCaptions} empty caption(s) scored as captions without objects");
        stdout.WriteLine($"wrote {Path.Combine(outDir, "metrics.json")} and captions.jsonl");
        return 0;
    }

    /// <summary>Word maps and ground truth from <c>../shared/data/chair</c> beside the repository, unless --gt names the ground truth.</summary>
    private static ChairScorer LoadScorer(string? groundTruthPath)
    {
        string? dir = RepoPaths.Shared() is { } shared ? Path.Combine(shared, "data", "chair") : null;
        if (groundTruthPath == null)
        {
            groundTruthPath = dir != null ? Path.Combine(dir, ChairScorer.DefaultGroundTruth) : "";
            if (!File.Exists(groundTruthPath))
                throw new UserError($"default CHAIR ground truth ../shared/data/chair/{ChairScorer.DefaultGroundTruth} not found beside the repository; " +
                    "give --gt FILE (JSON: {\"<coco image id>\": [objects...]})");
        }
        string wordMaps = dir != null ? Path.Combine(dir, ChairScorer.WordMapsFile) : "";
        if (!File.Exists(wordMaps))
            throw new UserError($"CHAIR word maps ../shared/data/chair/{ChairScorer.WordMapsFile} not found beside the repository; set TRUTHPROBE_SHARED to the shared folder");
        return ChairScorer.Load(wordMaps, groundTruthPath);
    }
}
