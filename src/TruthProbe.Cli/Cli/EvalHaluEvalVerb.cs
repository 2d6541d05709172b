using System.Globalization;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Gating;
using TruthProbe.Model;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe eval halueval</c>: HaluEval-QA judged by the model, vanilla and gated side by side (docs/design.md §6).</summary>
public sealed class EvalHaluEvalVerb : IVerb
{
    private const int MaxNewTokens = 7;

    public string Name => "eval halueval";
    public string Summary => "HaluEval-QA hallucination detection, vanilla vs gated (Acc/F1/P/R, McNemar)";
    public string Usage =>
        "usage: truthprobe eval halueval <model> [--data FILE] [--skip-first 292] [--limit N] [--seeds 1,2,3]\n" +
        "                                [gating options] [--lambda-sweep 0,1.5,3,4.5,6 [--split-seed 42]]\n" +
        "                                [--skip-long] --out DIR\n" +
        ModelInput.Usage +
        "  --data FILE          HaluEval-QA JSON Lines (knowledge, question, right_answer, hallucinated_answer);\n" +
        "                       default ../shared/data/halueval/qa_data_first1000.jsonl\n" +
        "  --skip-first N       rows used for probing, left out (default 292, the paper's)\n" +
        "  --limit N            evaluate at most N rows after those\n" +
        "  --seeds LIST         one run per seed; each seed shows every row with one of its two answers (default 1,2,3)\n" +
        "  --lambda-sweep LIST  pick lambda (with --scores/--mode, no --lambda) by F1 on a seeded 20% of the rows;\n" +
        "                       report the other 80% at the chosen lambda only (--split-seed, default 42)\n" +
        "  --skip-long          skip (and count) rows whose prompts do not fit the model's context with 7 new\n" +
        "                       tokens; without it such a row is an error\n" +
        "  --out DIR            items.jsonl (every prompt, reply and parse) and metrics.json\n" +
        GatingOptions.Usage +
        "Greedy, 7 new tokens, EOS stop; the reference prompt and parse rule. Yes (hallucinated) is the positive class.";

    public IReadOnlyCollection<string> Flags => ["skip-long"];

    public int Run(Args args)
    {
        string modelPath = args.Positional(0, "<model> (a model folder or file)");
        string data = args.Get("data") ?? DefaultData();
        int skipFirst = args.Int("skip-first", HaluEvalData.DefaultSkipFirst);
        int? limit = args.Get("limit") != null ? args.Int("limit", 0) : null;
        int[] seeds = args.Ints("seeds", [1, 2, 3]);
        double[]? sweep = args.Get("lambda-sweep") != null ? args.Doubles("lambda-sweep", []) : null;
        int? splitSeed = args.Get("split-seed") != null ? args.Int("split-seed", 0) : null;
        var gating = GatingOptions.Read(args, lambdaFromVerb: sweep != null);
        bool skipLong = args.Flag("skip-long");
        string outDir = args.Required("out", "the folder for items.jsonl and metrics.json");
        string? tokenizerPath = args.Get("tokenizer");
        args.EnsureAllRead(1);

        if (seeds.Length == 0 || seeds.Distinct().Count() != seeds.Length)
            throw new UserError($"eval halueval: --seeds must list distinct seeds, got '{string.Join(",", seeds)}'");
        if (sweep != null)
        {
            if (sweep.Length == 0) throw new UserError("eval halueval: --lambda-sweep is empty; give candidates such as 0,1.5,3,4.5,6");
            if (gating.ScoresPath == null || gating.Mode is not { } mode || !GateTable.UsesLambda(mode))
                throw new UserError("eval halueval: --lambda-sweep needs --scores MAP and a --mode that uses lambda (contrast, minmax or plain)");
            if (gating.Lambda != null) throw new UserError("eval halueval: give --lambda or --lambda-sweep, not both");
        }
        else if (splitSeed != null) throw new UserError("eval halueval: --split-seed only applies with --lambda-sweep");

        using var model = Transformer.Load(modelPath, tokenizerPath);
        if (model.Tokenizer == null) throw new UserError($"{modelPath}: no tokenizer found with the model; give one with --tokenizer FILE");
        var config = model.Config;
        var rows = HaluEvalData.Select(HaluEvalData.ReadRows(data), skipFirst, limit, data);
        int skippedLong = DropRowsTooLong(rows, model, data, skipLong);
        if (rows.Count == 0) throw new UserError($"{data}: every selected row was too long for {modelPath}; nothing to evaluate");

        var state = model.NewState();
        Func<string, string> Generate(Interventions? interventions) => prompt =>
        {
            var result = Generator.Generate(model, model.Encode(prompt), new GenerationOptions { MaxNewTokens = MaxNewTokens, Interventions = interventions }, state);
            return model.Tokenizer.Decode(result.NewIds);
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
        using (var progress = new Progress("halueval", total))
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
            else if (gating.Enabled) table = gating.Table(config.Layers, config.Heads, modelPath);

            vanilla = HaluEvalRunner.Judge(testItems, Generate(null), progress);
            if (table != null) gated = HaluEvalRunner.Judge(testItems, Generate(gating.Interventions(config, table)), progress);
        }

        var report = new HaluEvalReport
        {
            Run = new Dictionary<string, object?>
            {
                ["model"] = Path.GetFullPath(modelPath),
                ["model_format"] = model.Format,
                ["model_context"] = config.MaxContext,
                ["data"] = Path.GetFullPath(data),
                ["data_sha256"] = Hashing.Sha256File(data),
                ["skip_first"] = skipFirst,
                ["limit"] = limit,
                ["rows_evaluated"] = testRows.Count,
                ["rows_skipped_too_long"] = skippedLong,
                ["seeds"] = seeds,
                ["generations"] = total,
                ["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 1),
            },
            Vanilla = vanilla,
            Gated = gated,
            Gating = table == null ? null : gating.Provenance(table),
            Sweep = sweepResult,
        };
        report.Write(outDir);

        Console.WriteLine($"HaluEval-QA: {testRows.Count} rows x {seeds.Length} seed(s) ({string.Join(",", seeds)}) from {data}" +
                          (skippedLong > 0 ? $"; {skippedLong} rows skipped as too long" : ""));
        if (sweepResult != null)
            Console.WriteLine("lambda sweep on " + tuningRows.Count + " tuning rows (mean F1): " +
                string.Join(", ", sweepResult.Candidates.Select(c => string.Format(CultureInfo.InvariantCulture, "{0}: {1:0.00}", c.Lambda, c.TuningF1))) +
                string.Format(CultureInfo.InvariantCulture, " -> lambda {0}; metrics below on the {1} test rows only", sweepResult.Chosen, testRows.Count));
        if (table != null)
            Console.WriteLine($"gated: {string.Join(", ", report.Gating!.Where(kv => !kv.Key.EndsWith("sha256", StringComparison.Ordinal)).Select(kv => $"{kv.Key} {kv.Value}"))}");
        Console.Write(report.Table());
        Console.WriteLine($"wrote {Path.Combine(outDir, HaluEvalReport.ItemsFile)} and {Path.Combine(outDir, HaluEvalReport.MetricsFile)}");
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
