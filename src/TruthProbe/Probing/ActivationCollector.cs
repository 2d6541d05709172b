using System.Text.Json;
using TruthProbe.Common;
using TruthProbe.Model;
using TruthProbe.Sharding;

namespace TruthProbe.Probing;

/// <summary>What collection did: the activations (loaded back from disk) and the rows it left out.</summary>
public sealed record Collection(ActivationSet Set, string Path, IReadOnlyList<SkippedRow> Skipped, bool Reused, int RowsRun, double Seconds)
{
    /// <summary>Rows kept in the whole run; more than <see cref="ActivationSet.Rows"/> when a shard collected only its block.</summary>
    public int RowsInAll { get; init; }
    /// <summary>What a shard's block counts ("rows", or "images" for image rows) and how many the whole run has.</summary>
    public (string Unit, int Total) ShardItems { get; init; }
}

/// <summary>
/// Runs the model over every probing row and keeps <c>blocks.{l}.attn.hook_z</c> of every layer at the
/// scored token: the last token of the prompt, or the one before it when the tokenizer ended the text with
/// EOS. Only the tokens up to the scored one are run. Rows are tokenised (and over-long ones rejected)
/// before the first forward pass; activations go to disk row by row through <see cref="ActivationStore"/>.
/// </summary>
public static class ActivationCollector
{
    public const string FileName = "activations.safetensors";
    public const string PositionRule = "last token of the prompt; a trailing EOS is stepped over";

    /// <summary>The metadata key a shard's activations carry (<see cref="Shard.Label"/>); a merge removes it.</summary>
    public const string ShardKey = "shard";

    /// <param name="shard">collect only this shard's block of the rows that are kept (the rows that fit, in data
    /// order); the label and length checks still see every row, so a part fails exactly when the whole run would.</param>
    public static Collection Collect(Transformer model, ProbingData data, PromptTemplate template, int? samples,
        bool skipBad, string outDir, TextWriter log, Shard? shard = null) =>
        Collect(new TextPrompts(model, template), data, samples, skipBad, outDir, log, shard);

    /// <summary>As above, with rows made into ids and run by <paramref name="prompts"/> (text, or rows with images).</summary>
    public static Collection Collect(RowPrompts prompts, ProbingData data, int? samples, bool skipBad, string outDir, TextWriter log, Shard? shard = null)
    {
        var model = prompts.Model;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var cfg = model.Config;
        var (kept, skipped) = ScoredRows(prompts, data, skipBad);
        int gold = kept.Count(k => k.Row.Label == 1);
        if (gold == 0 || gold == kept.Count)
            throw new UserError($"{data.Path}: after skipping bad rows all {kept.Count} are {(gold == 0 ? "hallucinated" : "gold")}; a probe needs both labels");
        // Over every kept row, so that each shard records what one whole run would.
        var described = prompts.Metadata(kept.Select(k => k.Row).ToList()).ToList();
        int rowsInAll = kept.Count;
        var shardItems = ShardItemsOf(kept);
        if (shard is { } part) kept = ShardRows(kept, part);

        int n = kept.Count, rowValues = cfg.Layers * cfg.Heads * cfg.HeadDim;
        var metadata = new Dictionary<string, string>
        {
            ["hook"] = "blocks.{l}.attn.hook_z",
            ["position"] = PositionRule,
            ["model"] = Path.GetFullPath(model.Source),
            ["model_format"] = model.Format,
            ["kv_cache"] = model.KvCache.Name(),
            ["model_shape"] = $"layers {cfg.Layers}, heads {cfg.Heads}, kv_heads {cfg.KvHeads}, head_dim {cfg.HeadDim}, d_model {cfg.DModel}, vocab {cfg.Vocab}, context {cfg.MaxContext}",
            ["data"] = Path.GetFullPath(data.Path),
            ["data_sha256"] = Hashing.Sha256File(data.Path),
            ["data_layout"] = data.Layout,
            ["samples"] = samples?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "all",
            ["template"] = prompts.Template,
            ["bos"] = model.Tokenizer?.AddsBos == true ? "added by the tokenizer" : "none",
            ["skipped_rows"] = JsonSerializer.Serialize(skipped.Select(s => new { row = s.Index, line = s.Line, reason = s.Reason })),
        };
        foreach (var (key, value) in described) metadata[key] = value;
        if (shard is { } s) metadata[ShardKey] = s.Label;
        string fingerprint = Fingerprint(metadata, kept.Select(k => (long)k.Row.Index));
        string path = System.IO.Path.Combine(outDir, FileName);
        Directory.CreateDirectory(outDir);

        if (ActivationStore.IsFinished(path, fingerprint))
        {
            log.WriteLine($"{path} already holds these rows' activations; probing them again without running the model");
            ActivationStore.RemoveLeftovers(path);
            return new Collection(ActivationSet.Load(path, null), path, skipped, Reused: true, 0, clock.Elapsed.TotalSeconds) { RowsInAll = rowsInAll, ShardItems = shardItems };
        }

        var shape = new ActivationSet(n, cfg.Layers, cfg.Heads, cfg.HeadDim, new float[(long)n * rowValues],
            kept.Select(k => k.Row.Label).ToArray(), kept.Select(k => (long)k.Row.Index).ToArray(),
            metadata, kept.Select(k => k.Row.Answer).ToArray());
        int run = 0;
        using (var store = ActivationStore.OpenOrCreate(path, fingerprint, shape, log))
        {
            var capture = new ActivationCapture(cfg, ["blocks.*.attn.hook_z"], [-1]);
            var rowBuffer = new float[rowValues];
            int perLayer = cfg.Heads * cfg.HeadDim;
            using var progress = new Progress("collect hook_z (rows)", n - store.RowsDone, to: log);
            for (int i = store.RowsDone; i < n; i++)
            {
                prompts.Run(kept[i].Row, kept[i].Tokens, capture);
                for (int l = 0; l < cfg.Layers; l++)
                    capture[HookNames.Name(HookKind.Z, l)].Data.AsSpan(0, perLayer).CopyTo(rowBuffer.AsSpan(l * perLayer, perLayer));
                store.Append(rowBuffer);
                run++;
                progress.Advance();
            }
            store.Complete();
        }
        return new Collection(ActivationSet.Load(path, null), path, skipped, Reused: false, run, clock.Elapsed.TotalSeconds) { RowsInAll = rowsInAll, ShardItems = shardItems };
    }

    /// <summary>
    /// Every row's ids up to its scored token (see <see cref="ScoredLength"/>), tokenised before any forward pass; a
    /// row longer than the model's context is a <see cref="UserError"/>, or with <paramref name="skipBad"/> skipped.
    /// </summary>
    public static (List<(ProbingRow Row, int[] Tokens)> Kept, List<SkippedRow> Skipped) ScoredRows(RowPrompts prompts, ProbingData data, bool skipBad)
    {
        var model = prompts.Model;
        var kept = new List<(ProbingRow Row, int[] Tokens)>();
        var skipped = new List<SkippedRow>(data.Skipped);
        foreach (var row in data.Rows)
        {
            int[] tokens = prompts.Tokens(row);
            int scored = ScoredLength(tokens, model.EosIds);
            if (scored > model.Config.MaxContext)
            {
                string reason = $"{data.Path} line {row.Line}: row {row.Index} is {scored} tokens, more than the model's context of {model.Config.MaxContext}; shorten its context or skip such rows";
                if (!skipBad) throw new UserError(reason) { Field = "skip_bad" };
                skipped.Add(new SkippedRow(row.Index, row.Line, reason));
                continue;
            }
            kept.Add((row, tokens[..scored]));
        }
        skipped.Sort((a, b) => a.Index.CompareTo(b.Index));
        if (kept.Count == 0) throw new UserError($"{data.Path}: every row was skipped ({skipped.Count}); nothing to score");
        return (kept, skipped);
    }

    /// <summary>What shards of these rows count: whole images when the rows have images, else rows; and how many there are.</summary>
    public static (string Unit, int Total) ShardItemsOf(IReadOnlyList<(ProbingRow Row, int[] Tokens)> kept) =>
        kept.Any(k => k.Row.Image != null) ? ("images", kept.Select(k => k.Row.Image ?? "").Distinct().Count()) : ("rows", kept.Count);

    /// <summary>
    /// The shard's rows, in data order: a contiguous block of text rows, or every row of the shard's block of images
    /// (so that each image is encoded in one shard only). A shard with nothing to do is an error.
    /// </summary>
    public static List<(ProbingRow Row, int[] Tokens)> ShardRows(List<(ProbingRow Row, int[] Tokens)> kept, Shard shard)
    {
        if (!kept.Any(k => k.Row.Image != null)) return shard.Block(kept, "rows");
        var images = kept.Select(k => k.Row.Image ?? "").ToList();
        shard.RequireItems(images.Distinct().Count(), "images");
        return shard.ItemsOfGroups(images).Select(i => kept[i]).ToList();
    }

    /// <summary>Names a collection's inputs and rows: a finished file with the same fingerprint is reused, a partial one resumed.</summary>
    public static string Fingerprint(IReadOnlyDictionary<string, string> metadata, IEnumerable<long> rowIds) =>
        Hashing.Sha256(System.Text.Encoding.UTF8.GetBytes(
            JsonSerializer.Serialize(metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) + "|" + string.Join(",", rowIds)));

    /// <summary>How many tokens to run: all of them, less a trailing EOS (the scored token is then the one before).</summary>
    public static int ScoredLength(int[] tokens, IReadOnlyList<int> eosIds) =>
        tokens.Length > 1 && eosIds.Contains(tokens[^1]) ? tokens.Length - 1 : tokens.Length;
}
