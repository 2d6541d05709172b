using System.CommandLine;
using System.Globalization;
using TruthProbe.Common;
using TruthProbe.Model;
using TruthProbe.Numerics;
using TruthProbe.Probing;
using TruthProbe.Reports;
using TruthProbe.Sharding;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe attention</c>: per head, the share of the answer's last token's attention on the image (or the context).</summary>
public sealed class AttentionVerb : IShardedVerb
{
    public string Name => "attention";
    public string Summary => "relative attention to evidence: per head, the answer's last token's attention share on the image or context";

    public string Details => """
        Runs every row as 'score' does (same prompt, same scored token) and reads blocks.*.attn.hook_pattern per
        query head at that token: the share of its attention on the evidence span, the image's positions for rows
        shown an image (--images, or --image-mode black), else the context's tokens. Writes DIR/attention.npy
        (float64 [layers, heads], the mean over rows), attention.csv (layer, head, share, share_gold,
        share_hallucinated), heatmap.png and manifest.json, to set beside the Truth Scores.
        With --shard K/N only shard K's rows are run (whole images for image rows), into a part folder of per-row
        shares; 'truthprobe merge' joins the parts and writes the same files one process writes.
        """;

    private readonly ModelInput _model = new(gating: false, visionTower: true);
    private readonly Option<string> _data = Opt.Required("--data", "FILE.jsonl",
        "probing rows as for 'score': {\"context\", \"question\", \"answer\", \"label\"}, HaluEval-QA items, or rows with images for LLaVA (image_path or image)");
    private readonly Option<int?> _samples = ProbeVerb.Samples();
    private readonly Option<string?> _template = Opt.Text("--template", "T",
        "prompt as for 'score' (default: the reference's context template; '<image>\\n{question}\\nASSISTANT: {answer}' with images)");
    private readonly Option<string> _out = Opt.Out("DIR", "results folder");
    private readonly Option<bool> _skipBad = Opt.Flag("--skip-bad", "skip malformed lines and rows longer than the model's context instead of stopping at the first");
    private readonly ImageRowOptions _images = new();
    private readonly ShardOption _shard = new();
    public IEnumerable<Symbol> Symbols => [.. _model.Symbols, _data, _samples, _template, _out, _skipBad, .. _images.Symbols, _shard.Option];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        string dataPath = args.GetValue(_data)!, outDir = args.GetValue(_out)!;
        int? samples = args.GetValue(_samples);
        bool skipBad = args.GetValue(_skipBad);
        var shard = _shard.Read(args);
        var data = ProbingData.Load(dataPath, samples, skipBad);
        var images = _images.Read(args, Name, args.GetValue(_model.Model)!, data);
        using var loaded = _model.Load(args, Name, requireTokenizer: true);
        string? templateText = args.GetValue(_template);
        var prompts = images == null
            ? new TextPrompts(loaded.Model, templateText == null ? new PromptTemplate(PromptTemplate.Default) : PromptTemplate.FromCommandLine(templateText))
            : images.Prompts(loaded, templateText);

        var (kept, skipped) = ActivationCollector.ScoredRows(prompts, data, skipBad);
        var model = prompts.Model;
        var inputs = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["model"] = Path.GetFullPath(model.Source),
            ["model_format"] = model.Format,
            ["kv_cache"] = model.KvCache.Name(),
            ["data"] = Path.GetFullPath(dataPath),
            ["data_sha256"] = Hashing.Sha256File(dataPath),
            ["samples"] = samples?.ToString(CultureInfo.InvariantCulture) ?? "all",
            ["template"] = prompts.Template,
            ["skipped_rows"] = skipped.Count.ToString(CultureInfo.InvariantCulture),
        };
        // Over every kept row, so that each shard records what one whole run would.
        foreach (var (key, value) in prompts.Metadata(kept.Select(k => k.Row).ToList())) inputs[key] = value;
        if (shard is { } part)
        {
            var (unit, total) = ActivationCollector.ShardItemsOf(kept);
            var rows = EvidenceAttention.MeasureRows(prompts, ActivationCollector.ShardRows(kept, part), stderr);
            Directory.CreateDirectory(outDir);
            rows.Save(Path.Combine(outDir, AttentionRows.FileName), inputs);
            ShardManifest.For(Name, ShardOption.SharedArguments(args), part, unit, total, Provenance.HashesIn(inputs)).Write(outDir);
            var (start, end) = part.Range(total);
            stdout.WriteLine($"shard {part.Label}: {unit} {start}-{end - 1} of {total} ({rows.RowIds.Length} rows) in {outDir}; when every shard is done: truthprobe merge PARTS... --out DIR");
            return 0;
        }
        return Report(EvidenceAttention.Measure(prompts, kept, stderr), outDir, inputs, stdout);
    }

    public int Merge(ParseResult args, ShardParts parts, TextWriter stdout, TextWriter stderr)
    {
        var loaded = parts.Parts.Select(p => AttentionRows.Load(Path.Combine(p.Dir, AttentionRows.FileName))).ToList();
        var inputs = loaded[0].Inputs;
        for (int i = 1; i < loaded.Count; i++)
            if (loaded[i].Inputs.Count != inputs.Count || loaded[i].Inputs.Any(kv => !inputs.TryGetValue(kv.Key, out var v) || v != kv.Value))
                throw new UserError($"merge: {parts.Parts[i].Dir} records other inputs than {parts.Parts[0].Dir}; they are not parts of one run");
        return Report(EvidenceAttention.Of(AttentionRows.Join(loaded.Select(l => l.Rows).ToList())), args.GetValue(_out)!, inputs, stdout);
    }

    private static int Report(EvidenceAttention result, string outDir, IReadOnlyDictionary<string, string> inputs, TextWriter stdout)
    {
        result.Write(outDir, inputs, Plots.Writer);
        int top = Array.IndexOf(result.Share, result.Share.Max());
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"attention to evidence over {result.Rows} row(s): mean share {result.Share.Average():0.000}, top L{top / result.Heads}H{top % result.Heads} {result.Share[top]:0.000}; wrote {outDir}"));
        return 0;
    }
}
