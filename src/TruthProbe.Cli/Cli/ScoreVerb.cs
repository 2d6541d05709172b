using System.CommandLine;
using TruthProbe.Common;
using TruthProbe.Model;
using TruthProbe.Probing;
using TruthProbe.Reports;
using TruthProbe.Sharding;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe score</c>: run a model over probing rows, keep hook_z at the answer's last token, fit the head probes.</summary>
public sealed class ScoreVerb : IShardedVerb
{
    public string Name => "score";
    public string Summary => "Truth Scores of a model's heads: collect hook_z on probing rows, then probe";

    public string Details => """
        The scored token is the prompt's last (a trailing EOS is stepped over); hook_z of every layer at that
        token is stored in DIR/activations.safetensors as rows are collected, so an interrupted run resumes
        where it stopped and a finished one is probed again without running the model. Probing options and
        outputs as in 'truthprobe probe --help' (scores.csv, scores.npy, probe_weights.safetensors,
        heatmap.png, manifest.json), plus the surface baseline on the answers' text. On a LLaVA model, rows that
        name images run with them (--images DIR; --image-mode for the paper's black and text-only controls), each
        image encoded once for all its rows.
        With --shard K/N only shard K's block of the rows is collected, into a part folder (activations and
        shard.json, no probes); 'truthprobe merge' joins the parts and probes all rows, with outputs identical
        to one run's.
        """;


    // Activations are collected from the model as it is: no gating options.
    private readonly ModelInput _model = new(gating: false, visionTower: true);
    private readonly Option<string> _data = Opt.Required("--data", "FILE.jsonl",
        "jsonl rows {\"context\", \"question\", \"answer\", \"label\": \"gold\"|\"hallucinated\"}, or HaluEval-QA items " +
        "{\"knowledge\", \"question\", \"right_answer\", \"hallucinated_answer\"} (each item gives a gold row and a hallucinated row), " +
        "or rows with images for LLaVA {\"question\", \"answer\", \"label\", \"image_path\" or \"image\"} (RLHF-V/PhD; see --images)");
    private readonly Option<int?> _samples = ProbeVerb.Samples();
    private readonly Option<string?> _template = Opt.Text("--template", "T",
        "prompt, default 'Context:\\n{context}\\n\\nQuestion: {question}\\nAnswer: {answer}' (\\n in T is a newline); it must end with {answer}");
    private readonly Option<string> _out = Opt.Out("DIR", "results folder; also holds the activations a rerun resumes from");
    private readonly Option<bool> _skipBad = Opt.Flag("--skip-bad",
        "skip malformed lines, unknown labels and rows longer than the model's context, counting them in the manifest, instead of stopping at the first");
    private readonly ProbeVerb.ProbeOptionSet _probe = new();
    private readonly ShardOption _shard = new();
    private readonly ImageRowOptions _images = new();
    public IEnumerable<Symbol> Symbols => [.. _model.Symbols, _data, _samples, _template, _out, _skipBad, .. _probe.Symbols, _shard.Option, .. _images.Symbols];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        string dataPath = args.GetValue(_data)!;
        int? samples = args.GetValue(_samples);
        var template = args.GetValue(_template) is { } t ? PromptTemplate.FromCommandLine(t) : new PromptTemplate(PromptTemplate.Default);
        string outDir = args.GetValue(_out)!;
        bool skipBad = args.GetValue(_skipBad);
        var options = _probe.Read(args);
        var shard = _shard.Read(args);

        var data = ProbingData.Load(dataPath, samples, skipBad);
        // Rows the model would run for nothing (too few for the folds, one class) fail before it is loaded.
        ProbeRun.Check(options, data.Rows.Select(r => r.Label).ToArray(), options.GroupFolds ? data.ItemIds(data.Rows.Select(r => (long)r.Index).ToArray()) : null);
        var images = _images.Read(args, Name, args.GetValue(_model.Model)!, data);
        using var loaded = _model.Load(args, Name, requireTokenizer: true);
        var prompts = images == null ? new TextPrompts(loaded.Model, template) : images.Prompts(loaded, args.GetValue(_template));
        var collection = ActivationCollector.Collect(prompts, data, samples, skipBad, outDir, stderr, shard);
        if (collection.Skipped.Count > 0)
            stdout.WriteLine($"skipped {collection.Skipped.Count} bad row(s); first: {collection.Skipped[0].Reason}");
        if (shard is { } part)
        {
            string? tokenizer = args.GetValue(_model.Tokenizer);
            var inputs = new List<(string, string)> { ("model", ShardManifest.HashModel(args.GetValue(_model.Model)!)), ("data", collection.Set.Metadata["data_sha256"]) };
            if (tokenizer != null) inputs.Add(("tokenizer", Hashing.Sha256File(tokenizer)));
            var (unit, total) = collection.ShardItems;
            ShardManifest.For(Name, ShardOption.SharedArguments(args), part, unit, total, inputs).Write(outDir);
            var (start, end) = part.Range(total);
            stdout.WriteLine($"shard {part.Label}: {unit} {start}-{end - 1} of {total} ({collection.Set.Rows} rows) in {collection.Path}; " +
                             "when every shard is done: truthprobe merge PARTS... --out DIR");
            return 0;
        }

        var run = ProbeRun.Execute(collection.Set, options, options.GroupFolds ? data.ItemIds(collection.Set.RowIds) : null);
        run.TimingsSeconds["collect"] = collection.Seconds;
        run.Write(outDir, new ProbeInputs(collection.Path, null, "truthprobe score"), Plots.Writer);
        stdout.WriteLine(collection.Reused
            ? $"reused {collection.Path} ({collection.Set.Rows} rows)"
            : $"collected {collection.RowsRun} row(s) into {collection.Path} in {collection.Seconds:0.0} s");
        ProbeVerb.Report(run, outDir, stdout);
        return 0;
    }

    public int Merge(ParseResult args, ShardParts parts, TextWriter stdout, TextWriter stderr)
    {
        string outDir = args.GetValue(_out)!;
        var options = _probe.Read(args);
        Directory.CreateDirectory(outDir);
        string path = Path.Combine(outDir, ActivationCollector.FileName);
        var set = ActivationMerge.Merge(parts.Parts.Select(p => Path.Combine(p.Dir, ActivationCollector.FileName)).ToList(), path);
        IReadOnlyList<long>? itemOfRow = null;
        if (options.GroupFolds)
        {
            string dataPath = set.Metadata["data"];
            ShardParts.RequireRecorded(dataPath, set.Metadata["data_sha256"], "for folds grouped by item");
            itemOfRow = ProbingData.Load(dataPath, args.GetValue(_samples), args.GetValue(_skipBad)).ItemIds(set.RowIds);
        }
        var run = ProbeRun.Execute(set, options, itemOfRow);
        run.Write(outDir, new ProbeInputs(path, null, "truthprobe score"), Plots.Writer);
        stdout.WriteLine($"merged {parts.Parts.Count} parts ({set.Rows} rows) into {path}");
        ProbeVerb.Report(run, outDir, stdout);
        return 0;
    }
}
