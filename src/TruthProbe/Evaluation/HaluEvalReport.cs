using System.Globalization;
using System.Text.Json;
using System.Text;
using TruthProbe.Common;

namespace TruthProbe.Evaluation;

/// <summary>The lambda candidates tried on the tuning rows and the one chosen (see <see cref="HaluEvalSweep"/>).</summary>
public sealed record HaluEvalSweepResult(int SplitSeed, IReadOnlyList<int> TuningRowIds, IReadOnlyList<(double Lambda, double TuningF1)> Candidates, double Chosen);

/// <summary>Everything a HaluEval run produced; written as items.jsonl and metrics.json, and printed.</summary>
public sealed record HaluEvalReport
{
    public required IReadOnlyDictionary<string, object?> Run { get; init; }
    public required IReadOnlyList<HaluEvalJudged> Vanilla { get; init; }
    /// <summary>Null when the run had no gating options.</summary>
    public IReadOnlyList<HaluEvalJudged>? Gated { get; init; }
    public IReadOnlyDictionary<string, string>? Gating { get; init; }
    public HaluEvalSweepResult? Sweep { get; init; }

    public const string ItemsFile = "items.jsonl", MetricsFile = "metrics.json", PartRunFile = "run.json";

    public static readonly IReadOnlyDictionary<string, string> Protocol = new Dictionary<string, string>
    {
        ["task"] = "HaluEval-QA, reference task halueval_remain (knowledge shown, no instruction file)",
        ["answer_choice"] = "per seed, a row shows its hallucinated answer iff the top bit of SplitMix64 mix(seed * 2^32 + row index + 0x9E3779B97F4A7C15) is 1",
        ["decoding"] = "greedy, at most 7 new tokens, stop at EOS",
        ["parse"] = "lower-case, strip; yes iff re.match(r'^(yes|no)\\b') gives yes; anything else (no, unparseable) counts as no",
        ["positive_class"] = "yes = the answer shown is hallucinated",
        ["metrics"] = "accuracy, f1, precision, recall, yes_ratio (of predictions) in percent; precision/recall/f1 are 0 when undefined, as in the reference",
        ["std"] = "sample standard deviation over seeds (n - 1)",
        ["paired_test"] = "exact McNemar, two-sided: p = min(1, 2 P[Binomial(b + c, 1/2) <= min(b, c)]) over the discordant items; per seed, and pooled over (row, seed) pairs (optimistic: a row repeats across seeds)",
        ["lambda_sweep"] = "rows split once by --split-seed: round(20%) with the smallest SplitMix64 hash tune, the rest test; lambda = best mean tuning F1 over seeds, ties to the smaller; metrics are on test rows only",
    };

    public HaluEvalComparison? Comparison => Gated == null ? null : HaluEvalComparison.Of(Vanilla, Gated);

    /// <summary>Share of replies (0..1) that start with neither yes nor no, per condition: they count as "no", so
    /// a model that never answers still gets an accuracy (the share of rows labelled no).</summary>
    public IReadOnlyList<(string Condition, int Unparseable, int Replies)> Unparseable
    {
        get
        {
            var conditions = new List<(string Name, IReadOnlyList<HaluEvalJudged> Judged)> { ("vanilla", Vanilla) };
            if (Gated != null) conditions.Add(("gated", Gated));
            return conditions.Select(c => (c.Name, c.Judged.Count(j => !j.Parsed.Parseable), c.Judged.Count)).ToList();
        }
    }

    /// <summary>What would make these numbers mislead a reader, one line each: printed by the verb and written to metrics.json.</summary>
    public IReadOnlyList<string> Warnings
    {
        get
        {
            var warnings = new List<string>();
            foreach (var (condition, unparseable, replies) in Unparseable)
                if (unparseable > 0)
                    warnings.Add(string.Create(CultureInfo.InvariantCulture,
                        $"{condition}: {unparseable} of {replies} replies ({100.0 * unparseable / replies:0.0}%) start with neither yes nor no and count as no; the metrics then measure the parse rule, not the model"));
            if (Sweep != null)
            {
                double best = Sweep.Candidates.Max(c => c.TuningF1);
                var tied = Sweep.Candidates.Where(c => c.TuningF1 == best).Select(c => c.Lambda).ToList();
                if (tied.Count > 1)
                    warnings.Add(string.Create(CultureInfo.InvariantCulture,
                        $"lambda sweep: candidates {string.Join(", ", tied)} tie at tuning F1 {best:0.00}; lambda {Sweep.Chosen} is only the smallest of them, the tuning rows did not choose it"));
            }
            return warnings;
        }
    }

    /// <summary>A reply as items.jsonl records it, by (row id, seed): what a merge of shards needs to rebuild the run.</summary>
    public sealed record StoredReply(string Prompt, string Vanilla, string? Gated);

    /// <summary>The replies of one or more items.jsonl files (the parts of a sharded run); an item twice is an error.</summary>
    public static Dictionary<(int Id, int Seed), StoredReply> ReadReplies(IReadOnlyList<string> itemFiles)
    {
        var replies = new Dictionary<(int, int), StoredReply>();
        foreach (string file in itemFiles)
        {
            int line = 0;
            foreach (string text in JsonText.ReadLines(file))
            {
                line++;
                string where = $"{file} line {line}";
                JsonDocument doc;
                try { doc = JsonDocument.Parse(text); }
                catch (JsonException e) { throw new UserError($"{where}: not valid JSON ({e.Message}); rerun that shard"); }
                using (doc)
                {
                    var o = JsonFields.Object(doc.RootElement, where);
                    string Reply(string condition) => JsonFields.String(JsonFields.Required(JsonFields.Object(JsonFields.Required(o, condition, where), $"{where}: {condition}"), "reply", $"{where}: {condition}"), $"{where}: {condition}.reply");
                    var key = (JsonFields.Int32(JsonFields.Required(o, "id", where), $"{where}: id", 0), JsonFields.Int32(JsonFields.Required(o, "seed", where), $"{where}: seed"));
                    var reply = new StoredReply(JsonFields.String(JsonFields.Required(o, "prompt", where), $"{where}: prompt"), Reply("vanilla"),
                        JsonFields.TryGet(o, "gated", out _) ? Reply("gated") : null);
                    if (!replies.TryAdd(key, reply))
                        throw new UserError($"{where}: row {key.Item1} seed {key.Item2} was already read from an earlier part; give each shard's part once");
                }
            }
        }
        return replies;
    }

    /// <summary>The items judged again from stored replies (the parse rule is the report's own, so the outcome is the original's).</summary>
    public static List<HaluEvalJudged> Rejudge(IReadOnlyList<HaluEvalItem> items, IReadOnlyDictionary<(int Id, int Seed), StoredReply> replies, bool gated) =>
        items.Select(item =>
        {
            if (!replies.TryGetValue((item.Row.Index, item.Seed), out var stored))
                throw new UserError($"no stored reply for row {item.Row.Index} seed {item.Seed}; a part is missing or incomplete");
            if (stored.Prompt != item.Prompt)
                throw new UserError($"the stored prompt of row {item.Row.Index} seed {item.Seed} is not the one the data file gives now; the data changed since the run");
            string reply = gated ? stored.Gated ?? throw new UserError($"row {item.Row.Index} seed {item.Seed} has no gated reply; the parts were not all run with gates")
                                 : stored.Vanilla;
            return new HaluEvalJudged(item, reply, HaluEvalAnswer.Parse(reply));
        }).ToList();

    /// <summary>A part's run record and gating table (<see cref="PartRunFile"/>), read back for a merge.</summary>
    public sealed record StoredRun(JsonElement Root, string Path)
    {
        public string Text(string field) => JsonFields.String(JsonFields.Required(Root, field, Path), $"{Path}: {field}");
        public int Int(string field) => JsonFields.Int32(JsonFields.Required(Root, field, Path), $"{Path}: {field}");
        public double Number(string field) => JsonFields.Number(JsonFields.Required(Root, field, Path), $"{Path}: {field}");
        public System.Text.Json.Nodes.JsonNode Provenance => System.Text.Json.Nodes.JsonNode.Parse(JsonFields.Required(Root, "provenance", Path).GetRawText())!;
        public IReadOnlyDictionary<string, string>? Gating => JsonFields.TryGet(Root, "gating", out var g)
            ? JsonFields.Object(g, $"{Path}: gating").EnumerateObject().ToDictionary(p => p.Name, p => JsonFields.String(p.Value, $"{Path}: gating.{p.Name}"))
            : null;
    }

    public static StoredRun ReadRun(string path)
    {
        if (!File.Exists(path)) throw new UserError($"{path}: not found; rerun that shard");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            return new StoredRun(JsonFields.Object(doc.RootElement, path).Clone(), path);
        }
        catch (JsonException e) { throw new UserError($"{path}: not valid JSON ({e.Message}); rerun that shard"); }
    }

    public IReadOnlyList<HaluEvalScores> VanillaPerSeed =>
        Vanilla.GroupBy(j => j.Item.Seed).Select(g => HaluEvalScores.From(g.Select(j => j.Outcome))).ToList();

    public void Write(string outDir)
    {
        Directory.CreateDirectory(outDir);
        AtomicFile.Write(Path.Combine(outDir, ItemsFile), WriteItems);
        AtomicFile.Write(Path.Combine(outDir, MetricsFile), WriteMetrics);
    }

    /// <summary>A shard's part: its items.jsonl and <see cref="PartRunFile"/> (the run record and gating, no metrics:
    /// those are the merged run's, and a shard may even hold no rows when all of its are too long).</summary>
    public void WritePart(string outDir)
    {
        Directory.CreateDirectory(outDir);
        AtomicFile.Write(Path.Combine(outDir, ItemsFile), WriteItems);
        AtomicFile.Write(Path.Combine(outDir, PartRunFile), stream =>
        {
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
            json.WriteStartObject();
            foreach (var (k, v) in Run) { json.WritePropertyName(k); JsonSerializer.Serialize(json, v); }
            if (Gating != null) { json.WritePropertyName("gating"); JsonSerializer.Serialize(json, Gating); }
            json.WriteEndObject();
        });
    }

    private void WriteItems(Stream stream)
    {
        var options = new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        var newline = "\n"u8.ToArray();
        for (int i = 0; i < Vanilla.Count; i++)
        {
            var item = Vanilla[i].Item;
            using (var json = new Utf8JsonWriter(stream, options))
            {
                json.WriteStartObject();
                json.WriteNumber("id", item.Row.Index);
                json.WriteNumber("line", item.Row.Line);
                json.WriteNumber("seed", item.Seed);
                json.WriteString("answer_shown", item.ShowsHallucinated ? "hallucinated" : "right");
                json.WriteString("label", item.Label);
                json.WriteString("prompt", item.Prompt);
                WriteReply(json, "vanilla", Vanilla[i]);
                if (Gated != null) WriteReply(json, "gated", Gated[i]);
                json.WriteEndObject();
            }
            stream.Write(newline);
        }
    }

    private static void WriteReply(Utf8JsonWriter json, string name, HaluEvalJudged judged)
    {
        json.WriteStartObject(name);
        json.WriteString("reply", judged.Reply);
        json.WriteString("parsed", judged.Parsed.Answer);
        json.WriteBoolean("parseable", judged.Parsed.Parseable);
        json.WriteBoolean("correct", judged.Outcome.Correct);
        json.WriteEndObject();
    }

    private void WriteMetrics(Stream stream)
    {
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        json.WriteStartObject();
        foreach (var (k, v) in Run) { json.WritePropertyName(k); JsonSerializer.Serialize(json, v); }
        json.WriteStartObject("unparseable_share");
        foreach (var (condition, unparseable, replies) in Unparseable) json.WriteNumber(condition, (double)unparseable / replies);
        json.WriteEndObject();
        json.WriteStartArray("warnings");
        foreach (string w in Warnings) json.WriteStringValue(w);
        json.WriteEndArray();
        json.WritePropertyName("protocol");
        JsonSerializer.Serialize(json, Protocol);
        if (Gating != null) { json.WritePropertyName("gating"); JsonSerializer.Serialize(json, Gating); }
        if (Sweep != null)
        {
            json.WriteStartObject("lambda_sweep");
            json.WriteNumber("split_seed", Sweep.SplitSeed);
            json.WriteNumber("tuning_rows", Sweep.TuningRowIds.Count);
            json.WriteStartArray("tuning_row_ids");
            foreach (int id in Sweep.TuningRowIds) json.WriteNumberValue(id);
            json.WriteEndArray();
            json.WriteStartArray("candidates");
            foreach (var (lambda, f1) in Sweep.Candidates)
            {
                json.WriteStartObject();
                json.WriteNumber("lambda", lambda);
                json.WriteNumber("tuning_f1_mean", f1);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteNumber("chosen_lambda", Sweep.Chosen);
            json.WriteEndObject();
        }
        var comparison = Comparison;
        WriteCondition(json, "vanilla", comparison?.Seeds.Select(s => (s.Seed, s.Vanilla)).ToList()
            ?? Vanilla.GroupBy(j => j.Item.Seed).Select(g => (g.Key, HaluEvalScores.From(g.Select(j => j.Outcome)))).ToList());
        if (comparison != null)
        {
            WriteCondition(json, "gated", comparison.Seeds.Select(s => (s.Seed, s.Gated)).ToList());
            json.WriteStartObject("difference_gated_minus_vanilla");
            foreach (var (name, _) in comparison.Seeds[0].Vanilla.Metrics)
                json.WriteNumber(name, comparison.Gated(name).Mean - comparison.Vanilla(name).Mean);
            json.WriteEndObject();
            json.WriteStartObject("mcnemar_exact");
            json.WriteStartArray("per_seed");
            foreach (var s in comparison.Seeds) WriteMcNemar(json, s.McNemar, s.Seed);
            json.WriteEndArray();
            json.WritePropertyName("pooled");
            WriteMcNemar(json, comparison.Pooled, null);
            json.WriteEndObject();
        }
        json.WriteEndObject();
    }

    private static void WriteCondition(Utf8JsonWriter json, string name, IReadOnlyList<(int Seed, HaluEvalScores Scores)> perSeed)
    {
        json.WriteStartObject(name);
        json.WriteStartArray("per_seed");
        foreach (var (seed, s) in perSeed)
        {
            json.WriteStartObject();
            json.WriteNumber("seed", seed);
            json.WriteNumber("items", s.Count);
            json.WriteNumber("tp", s.TruePositives);
            json.WriteNumber("fp", s.FalsePositives);
            json.WriteNumber("fn", s.FalseNegatives);
            json.WriteNumber("tn", s.TrueNegatives);
            foreach (var (metric, value) in s.Metrics) json.WriteNumber(metric, value);
            json.WriteNumber("label_yes_ratio", s.LabelYesRatio);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        foreach (var (part, pick) in new (string, Func<MeanStd, double>)[] { ("mean", m => m.Mean), ("std", m => m.Std) })
        {
            json.WriteStartObject(part);
            foreach (var (metric, _) in perSeed[0].Scores.Metrics)
                json.WriteNumber(metric, pick(MeanStd.Of(perSeed.Select(p => p.Scores.Metrics.First(m => m.Name == metric).Value).ToList())));
            json.WriteEndObject();
        }
        json.WriteEndObject();
    }

    private static void WriteMcNemar(Utf8JsonWriter json, McNemarTest.Result r, int? seed)
    {
        json.WriteStartObject();
        if (seed != null) json.WriteNumber("seed", seed.Value);
        json.WriteNumber("only_vanilla_correct", r.OnlyFirstCorrect);
        json.WriteNumber("only_gated_correct", r.OnlySecondCorrect);
        json.WriteNumber("p", r.PValue);
        json.WriteEndObject();
    }

    /// <summary>The side-by-side table printed at the end of a run.</summary>
    public string Table()
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        var comparison = Comparison;
        var vanillaSeeds = VanillaPerSeed;
        MeanStd Of(IEnumerable<HaluEvalScores> scores, string metric) =>
            MeanStd.Of(scores.Select(s => s.Metrics.First(m => m.Name == metric).Value).ToList());
        string Cell(MeanStd m) => string.Format(inv, "{0,7:0.00} ± {1,5:0.00}", m.Mean, m.Std);
        sb.AppendLine(comparison == null ? $"{"metric",-12} {"vanilla",15}" : $"{"metric",-12} {"vanilla",15}   {"gated",15}   {"gated - vanilla",15}");
        foreach (var (metric, _) in vanillaSeeds[0].Metrics)
        {
            var v = Of(vanillaSeeds, metric);
            sb.Append($"{metric,-12} {Cell(v)}");
            if (comparison != null)
            {
                var g = comparison.Gated(metric);
                sb.Append($"   {Cell(g)}   {string.Format(inv, "{0,15:+0.00;-0.00;0.00}", g.Mean - v.Mean)}");
            }
            sb.AppendLine();
        }
        if (comparison != null)
        {
            sb.Append("McNemar exact p (vanilla vs gated):");
            foreach (var s in comparison.Seeds)
                sb.Append(string.Format(inv, " seed {0}: {1:G3} (b={2}, c={3});", s.Seed, s.McNemar.PValue, s.McNemar.OnlyFirstCorrect, s.McNemar.OnlySecondCorrect));
            sb.AppendLine(string.Format(inv, " pooled: {0:G3}", comparison.Pooled.PValue));
            sb.AppendLine("(b = only vanilla correct, c = only gated correct; mean ± sample std over seeds, in percent; unparseable = count)");
        }
        return sb.ToString();
    }
}
