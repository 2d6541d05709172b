using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Gating;
using TruthProbe.Model;
using TruthProbe.Numerics;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe eval halueval</c>: HaluEval-QA judged by the model, vanilla and gated side by side (docs/design.md §6).</summary>
public sealed class EvalHaluEvalVerb : IVerb
{
    private const int MaxNewTokens = 7;

    public string Name => "eval halueval";
    public string Summary => "HaluEval-QA hallucination detection, vanilla vs gated (Acc/F1/P/R, McNemar)";
    public string Details => "Greedy, 7 new tokens, EOS stop; the reference prompt and parse rule. Yes (hallucinated) is the positive class.";

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
    private readonly Option<string> _out = Opt.Out("DIR", "items.jsonl (every prompt, reply and parse) and metrics.json");
    public IEnumerable<Symbol> Symbols => [.. _model.Symbols, _data, _skipFirst, _limit, _seeds, _sweep, _splitSeed, _skipLong, _out];

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
        int skippedLong = DropRowsTooLong(rows, model, data, skipLong);
        if (rows.Count == 0) throw new UserError($"{data}: every selected row was too long for {modelPath}; nothing to evaluate");

        var state = model.NewState();
        Func<string, string> Generate(Interventions? interventions) => prompt =>
        {
            var result = Generator.Generate(model, model.Encode(prompt), new GenerationOptions { MaxNewTokens = MaxNewTokens, Interventions = interventions }, state);
            return model.Tokenizer!.Decode(result.NewIds);
        };
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
        using (var progress = new Progress("halueval", total, to: stderr))
        {
            if (sweep != null)
            {
                var candidates = new List<(double, double)>();
                foreach (double lambda in sweep)
                {
                    var candidate = gating.Table(config.Layers, config.Heads, modelPath, lambda);
                    var judged = HaluEvalRunner.Judge(tuningItems, Generate(gating.Interventions(config, candidate)), progress);
                    double f1 = judged.GroupBy(j => j.Item.Seed).Average(g => HaluEvalScores.From(g.Select(j => j.Outcome)).F1);
                    candidates.Add((lambda, f1));
                }
                double chosen = HaluEvalSweep.Choose(candidates);
                sweepResult = new HaluEvalSweepResult(splitSeed ?? 42, tuningRows.Select(r => r.Index).ToList(), candidates, chosen);
                table = gating.Table(config.Layers, config.Heads, modelPath, chosen);
            }
            else table = loaded.Gates?.Table;

            vanilla = HaluEvalRunner.Judge(testItems, Generate(null), progress);
            if (table != null) gated = HaluEvalRunner.Judge(testItems, Generate(gating.Interventions(config, table)), progress);
        }

        string dataSha256 = Hashing.Sha256File(data);
        var gatingProvenance = table == null ? null : gating.Provenance(table);
        var report = new HaluEvalReport
        {
            Run = new Dictionary<string, object?>
            {
                ["model"] = Path.GetFullPath(modelPath),
                ["model_format"] = model.Format,
                ["model_context"] = config.MaxContext,
                ["data"] = Path.GetFullPath(data),
                ["data_sha256"] = dataSha256,
                ["skip_first"] = skipFirst,
                ["limit"] = limit,
                ["rows_evaluated"] = testRows.Count,
                ["rows_skipped_too_long"] = skippedLong,
                ["seeds"] = seeds,
                ["generations"] = total,
                ["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 1),
                ["provenance"] = Provenance.Of(
                    seeds.Select((s, i) => ($"eval_{i}", (JsonNode)s))
                        .Concat(sweepResult == null ? [] : [("lambda_split", (JsonNode)sweepResult.SplitSeed)])
                        .Concat(table?.Seed is { } gateSeed ? [("gate", (JsonNode)gateSeed)] : []),
                    new[] { ("data", dataSha256) }.Concat(gatingProvenance == null ? [] : Provenance.HashesIn(gatingProvenance))),
            },
            Vanilla = vanilla,
            Gated = gated,
            Gating = gatingProvenance,
            Sweep = sweepResult,
        };
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
