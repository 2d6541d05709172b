using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Gating;
using TruthProbe.Model;
using TruthProbe.Numerics;
using TruthProbe.Sharding;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe eval halueval</c>: HaluEval-QA judged by the model, vanilla and gated side by side (docs/design.md §6).</summary>
public sealed class EvalHaluEvalVerb : IShardedVerb
{
    private const int MaxNewTokens = 7;

    public string Name => "eval halueval";
    public string Summary => "HaluEval-QA hallucination detection, vanilla vs gated (Acc/F1/P/R, McNemar)";
    public string Details => "Greedy, 7 new tokens, EOS stop; the reference prompt and parse rule. Yes (hallucinated) is the positive class. " +
                             "With --shard K/N only shard K's block of the selected rows is evaluated (every seed and condition), into a part folder; " +
                             "'truthprobe merge' joins the parts into the one run's items.jsonl and metrics.json.";

    private readonly ModelInput _model = new(gating: true);
    private readonly Option<string?> _data = Opt.Text("--data", "FILE",
        "HaluEval-QA JSON Lines (knowledge, question, right_answer, hallucinated_answer); default ../shared/data/halueval/qa_data_first1000.jsonl");
    private readonly Option<int> _skipFirst = Opt.Int("--skip-first", "N", HaluEvalData.DefaultSkipFirst, "rows used for probing, left out (the paper's)", min: 0);
    private readonly Option<int?> _limit = Opt.IntOrNull("--limit", "N", "evaluate at most N rows after those", min: 1);
    private readonly Option<int[]?> _seeds = Opt.Ints("--seeds", "LIST", "one run per seed; each seed shows every row with one of its two answers (default 1,2,3)");
    private readonly Option<double[]?> _sweep = Opt.Doubles("--lambda-sweep", "LIST",
        "pick lambda (with --scores/--mode, no --lambda) by F1 on a seeded 20% of the rows; report the other 80% at the chosen lambda only");
    private readonly Option<int?> _splitSeed = Opt.IntOrNull("--split-seed", "S", "seed of the --lambda-sweep tuning split (default 42)");
    private readonly Option<bool> _skipLong = Opt.Flag("--skip-long",
        "skip (and count) rows whose prompts do not fit the model's context with 7 new tokens; without it such a row is an error");
    private readonly Option<int> _batch = BatchOption.Create();
    private readonly Option<string> _out = Opt.Out("DIR", "items.jsonl (every prompt, reply and parse) and metrics.json");
    private readonly ShardOption _shard = new();
    public IEnumerable<Symbol> Symbols => [.. _model.Symbols, _data, _skipFirst, _limit, _seeds, _sweep, _splitSeed, _skipLong, _batch, _out, _shard.Option];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        string modelPath = args.GetValue(_model.Model)!;
        string data = args.GetValue(_data) ?? DefaultData();
        int skipFirst = args.GetValue(_skipFirst);
        int? limit = args.GetValue(_limit);
        int[] seeds = args.Given(_seeds) ?? [1, 2, 3];
        double[]? sweep = args.Given(_sweep);
        int? splitSeed = args.GetValue(_splitSeed);
        bool skipLong = args.GetValue(_skipLong);
        string outDir = args.GetValue(_out)!;
        var shard = _shard.Read(args);
        if (shard != null && sweep != null)
            throw new UserError("eval halueval: --lambda-sweep tunes lambda on a split of all rows, which no shard sees; run the sweep in one process (e.g. with --limit) and give the shards its --lambda");

        if (seeds.Length == 0 || seeds.Distinct().Count() != seeds.Length)
            throw new UserError($"eval halueval: --seeds must list distinct seeds, got '{string.Join(",", seeds)}'");
        using var loaded = _model.Load(args, Name, requireTokenizer: true, lambdaFromVerb: sweep != null);
        var (model, gating) = (loaded.Model, loaded.Gating);
        if (sweep != null)
        {
            if (sweep.Length == 0) throw new UserError("eval halueval: --lambda-sweep is empty; give candidates such as 0,1.5,3,4.5,6");
            if (gating.ScoresPath == null || gating.Mode is not { } mode || !GateTable.UsesLambda(mode))
                throw new UserError("eval halueval: --lambda-sweep needs --scores MAP and a --mode that uses lambda (contrast, minmax or plain)");
            if (gating.Lambda != null) throw new UserError("eval halueval: give --lambda or --lambda-sweep, not both");
        }
        else if (splitSeed != null) throw new UserError("eval halueval: --split-seed only applies with --lambda-sweep");

        var config = model.Config;
        var rows = HaluEvalData.Select(HaluEvalData.ReadRows(data), skipFirst, limit, data);
        int rowsInAll = rows.Count;
        if (shard is { } block) rows = block.Block(rows, "rows");
        int skippedLong = DropRowsTooLong(rows, model, data, skipLong);
        // A shard whose rows are all too long is an empty part, not an error: the whole run may still have rows.
        if (rows.Count == 0 && shard == null) throw new UserError($"{data}: every selected row was too long for {modelPath}; nothing to evaluate");

        int batch = args.GetValue(_batch);
        Progress? progress = null;
        Func<IReadOnlyList<string>, IReadOnlyList<string>> Generate(Interventions? interventions) => prompts =>
            BatchGenerator.Generate(model, [.. prompts.Select(model.Encode)], new GenerationOptions { MaxNewTokens = MaxNewTokens, Interventions = interventions },
                batch, (_, _) => progress!.Advance()).Select(r => model.Tokenizer!.Decode(r.NewIds)).ToList();
        List<HaluEvalItem> ItemsOf(IEnumerable<HaluEvalRow> part) => seeds.SelectMany(s => HaluEvalData.Items(part, s)).ToList();

        List<HaluEvalRow> testRows = rows;
        HaluEvalSweepResult? sweepResult = null;
        List<HaluEvalRow> tuningRows = [];
        if (sweep != null) (tuningRows, testRows) = HaluEvalSweep.Split(rows, splitSeed ?? 42);
        var testItems = ItemsOf(testRows);
        var tuningItems = ItemsOf(tuningRows);
        long total = HaluEvalRunner.DistinctPrompts(testItems) * (gating.Enabled ? 2L : 1L)
                     + (sweep?.Length ?? 0) * (long)HaluEvalRunner.DistinctPrompts(tuningItems);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        List<HaluEvalJudged> vanilla;
        List<HaluEvalJudged>? gated = null;
        GateTable? table = null;
        using (progress = new Progress("halueval", total, to: stderr))
        {
            if (sweep != null)
            {
                var candidates = new List<(double, double)>();
                foreach (double lambda in sweep)
                {
                    var candidate = gating.Table(config.Layers, config.Heads, modelPath, lambda);
                    var judged = HaluEvalRunner.Judge(tuningItems, Generate(gating.Interventions(config, candidate)));
                    double f1 = judged.GroupBy(j => j.Item.Seed).Average(g => HaluEvalScores.From(g.Select(j => j.Outcome)).F1);
                    candidates.Add((lambda, f1));
                }
                double chosen = HaluEvalSweep.Choose(candidates);
                sweepResult = new HaluEvalSweepResult(splitSeed ?? 42, tuningRows.Select(r => r.Index).ToList(), candidates, chosen);
                table = gating.Table(config.Layers, config.Heads, modelPath, chosen);
            }
            else table = loaded.Gates?.Table;

            vanilla = HaluEvalRunner.Judge(testItems, Generate(null));
            if (table != null) gated = HaluEvalRunner.Judge(testItems, Generate(gating.Interventions(config, table)));
        }

        string dataSha256 = Hashing.Sha256File(data);
        var gatingProvenance = table == null ? null : gating.Provenance(table);
        var report = new HaluEvalReport
        {
            Run = RunFields(modelPath, model.Format, config.MaxContext, model.KvCache.Name(), data, dataSha256, skipFirst, limit, testRows.Count, skippedLong, seeds, total,
                clock.Elapsed.TotalSeconds, Provenance.Of(
                    seeds.Select((s, i) => ($"eval_{i}", (JsonNode)s))
                        .Concat(sweepResult == null ? [] : [("lambda_split", (JsonNode)sweepResult.SplitSeed)])
                        .Concat(table?.Seed is { } gateSeed ? [("gate", (JsonNode)gateSeed)] : []),
                    new[] { ("data", dataSha256) }.Concat(gatingProvenance == null ? [] : Provenance.HashesIn(gatingProvenance)))),
            Vanilla = vanilla,
            Gated = gated,
            Gating = gatingProvenance,
            Sweep = sweepResult,
        };
        if (shard is { } part)
        {
            report.WritePart(outDir);
            var inputs = new List<(string, string)> { ("model", ShardManifest.HashModel(modelPath)), ("data", dataSha256) };
            if (args.GetValue(_model.Tokenizer) is { } tokenizer) inputs.Add(("tokenizer", Hashing.Sha256File(tokenizer)));
            if (gatingProvenance != null) inputs.AddRange(Provenance.HashesIn(gatingProvenance));
            ShardManifest.For(Name, ShardOption.SharedArguments(args), part, "rows", rowsInAll, inputs).Write(outDir);
            var (start, end) = part.Range(rowsInAll);
            stdout.WriteLine($"shard {part.Label}: rows {start}-{end - 1} of the {rowsInAll} selected, replies in {Path.Combine(outDir, HaluEvalReport.ItemsFile)}; " +
                             "when every shard is done: truthprobe merge PARTS... --out DIR");
            return 0;
        }
        report.Write(outDir);

        stdout.WriteLine($"HaluEval-QA: {testRows.Count} rows x {seeds.Length} seed(s) ({string.Join(",", seeds)}) from {data}" +
                          (skippedLong > 0 ? $"; {skippedLong} rows skipped as too long" : ""));
        if (sweepResult != null)
            stdout.WriteLine("lambda sweep on " + tuningRows.Count + " tuning rows (mean F1): " +
                string.Join(", ", sweepResult.Candidates.Select(c => string.Format(CultureInfo.InvariantCulture, "{0}: {1:0.00}", c.Lambda, c.TuningF1))) +
                string.Format(CultureInfo.InvariantCulture, " -> lambda {0}; metrics below on the {1} test rows only", sweepResult.Chosen, testRows.Count));
        if (table != null)
            stdout.WriteLine($"gated: {string.Join(", ", report.Gating!.Where(kv => !kv.Key.EndsWith("sha256", StringComparison.Ordinal)).Select(kv => $"{kv.Key} {kv.Value}"))}");
        stdout.Write(report.Table());
        foreach (string warning in report.Warnings) stdout.WriteLine($"warning: {warning}");
        stdout.WriteLine($"wrote {Path.Combine(outDir, HaluEvalReport.ItemsFile)} and {Path.Combine(outDir, HaluEvalReport.MetricsFile)}");
        return 0;
    }

    /// <summary>The run's record at the top of metrics.json; one place, so a merged run writes what one process writes.</summary>
    private static Dictionary<string, object?> RunFields(string modelPath, string modelFormat, int modelContext, string kvCache, string data, string dataSha256,
        int skipFirst, int? limit, int rowsEvaluated, int skippedLong, int[] seeds, long generations, double seconds, JsonNode provenance) => new()
    {
        ["model"] = Path.GetFullPath(modelPath),
        ["model_format"] = modelFormat,
        ["model_context"] = modelContext,
        ["kv_cache"] = kvCache,
        ["data"] = Path.GetFullPath(data),
        ["data_sha256"] = dataSha256,
        ["skip_first"] = skipFirst,
        ["limit"] = limit,
        ["rows_evaluated"] = rowsEvaluated,
        ["rows_skipped_too_long"] = skippedLong,
        ["seeds"] = seeds,
        ["generations"] = generations,
        ["seconds"] = Math.Round(seconds, 1),
        ["provenance"] = provenance,
    };

    public int Merge(ParseResult args, ShardParts parts, TextWriter stdout, TextWriter stderr)
    {
        string outDir = args.GetValue(_out)!;
        int[] seeds = args.Given(_seeds) ?? [1, 2, 3];
        var partRuns = parts.Parts.Select(p => HaluEvalReport.ReadRun(Path.Combine(p.Dir, HaluEvalReport.PartRunFile))).ToList();
        var first = partRuns[0];
        string data = first.Text("data"), dataSha256 = first.Text("data_sha256");
        ShardParts.RequireRecorded(data, dataSha256, "to rebuild the items");
        var rows = HaluEvalData.Select(HaluEvalData.ReadRows(data), args.GetValue(_skipFirst), args.GetValue(_limit), data);
        var replies = HaluEvalReport.ReadReplies(parts.Parts.Select(p => Path.Combine(p.Dir, HaluEvalReport.ItemsFile)).ToList());
        var testRows = rows.Where(r => replies.ContainsKey((r.Index, seeds[0]))).ToList();
        var items = seeds.SelectMany(s => HaluEvalData.Items(testRows, s)).ToList();
        bool gatedRun = first.Gating != null;
        var vanilla = HaluEvalReport.Rejudge(items, replies, gated: false);
        var report = new HaluEvalReport
        {
            Run = RunFields(first.Text("model"), first.Text("model_format"), first.Int("model_context"), first.Text("kv_cache"), data, dataSha256,
                args.GetValue(_skipFirst), args.GetValue(_limit), testRows.Count, partRuns.Sum(r => r.Int("rows_skipped_too_long")), seeds,
                HaluEvalRunner.DistinctPrompts(items) * (gatedRun ? 2L : 1L), partRuns.Sum(r => r.Number("seconds")), first.Provenance),
            Vanilla = vanilla,
            Gated = gatedRun ? HaluEvalReport.Rejudge(items, replies, gated: true) : null,
            Gating = first.Gating,
        };
        if (replies.Count != items.Count)
            throw new UserError($"merge: the parts hold {replies.Count} replies for {items.Count} items of {testRows.Count} rows x {seeds.Length} seeds; they are not one run's parts");
        report.Write(outDir);
        stdout.WriteLine($"merged {parts.Parts.Count} parts: {testRows.Count} rows x {seeds.Length} seed(s)");
        stdout.Write(report.Table());
        foreach (string warning in report.Warnings) stdout.WriteLine($"warning: {warning}");
        stdout.WriteLine($"wrote {Path.Combine(outDir, HaluEvalReport.ItemsFile)} and {Path.Combine(outDir, HaluEvalReport.MetricsFile)}");
        return 0;
    }

    private static string DefaultData() =>
        RepoPaths.Shared() is { } shared && File.Exists(Path.Combine(shared, "data", "halueval", "qa_data_first1000.jsonl"))
            ? Path.Combine(shared, "data", "halueval", "qa_data_first1000.jsonl")
            : throw new UserError("eval halueval: no ../shared/data/halueval/qa_data_first1000.jsonl here; give --data FILE");

    /// <summary>
    /// Rows either of whose two prompts, plus the 7 new tokens, would not fit the context: an error naming
    /// the first such row, or with --skip-long removed from <paramref name="rows"/> and counted. Both
    /// prompts are checked so that the same rows are evaluated whatever the seeds.
    /// </summary>
    private static int DropRowsTooLong(List<HaluEvalRow> rows, Transformer model, string data, bool skipLong)
    {
        int limit = model.Config.MaxContext - MaxNewTokens;
        bool TooLong(HaluEvalRow r, out int tokens)
        {
            tokens = Math.Max(model.Encode(HaluEvalPrompt.Build(r.Knowledge, r.Question, r.RightAnswer)).Length,
                              model.Encode(HaluEvalPrompt.Build(r.Knowledge, r.Question, r.HallucinatedAnswer)).Length);
            return tokens > limit;
        }
        int before = rows.Count;
        foreach (var row in rows)
            if (!skipLong && TooLong(row, out int tokens))
                throw new UserError($"{data}:{row.Line}: the prompt of row {row.Index} is {tokens} tokens; with {MaxNewTokens} new tokens it exceeds {model.Source}'s context of {model.Config.MaxContext}. " +
                                    "Use a model with a longer context or shorter rows, or --skip-long to skip and count such rows");
        if (skipLong) rows.RemoveAll(r => TooLong(r, out _));
        return before - rows.Count;
    }
}
