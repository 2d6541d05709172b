using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Numerics;
using static TruthProbe.Common.CsvFormat;

namespace TruthProbe.Probing;

/// <summary>
/// The paper's relative attention to evidence: per head, the share of attention mass that the scored token (the
/// answer's last, as <see cref="ActivationCollector"/> scores it) puts on the evidence span (the image's positions, or
/// the context's tokens), from <c>blocks.{l}.attn.hook_pattern</c> per query head, averaged over rows and per label.
/// </summary>
public sealed class EvidenceAttention
{
    public const string FileName = "attention.npy";
    public required int Layers { get; init; }
    public required int Heads { get; init; }
    /// <summary>Mean share over all rows, [layers * heads] layer-major; and over gold (1) and hallucinated (0) rows (NaN without such rows).</summary>
    public required double[] Share { get; init; }
    public required double[] ShareGold { get; init; }
    public required double[] ShareHallucinated { get; init; }
    public required int Rows { get; init; }
    public required int GoldRows { get; init; }
    /// <summary>Mean length of the evidence span and of the sequence, in tokens.</summary>
    public required double SpanTokens { get; init; }
    public required double SequenceTokens { get; init; }

    /// <summary>
    /// Runs every row (ids up to the scored token) and sums the last query row of each head's pattern over the row's
    /// evidence span. Every row's span is located before the first forward pass, so a row without one fails early.
    /// </summary>
    public static EvidenceAttention Measure(RowPrompts prompts, IReadOnlyList<(ProbingRow Row, int[] Tokens)> rows, TextWriter log) =>
        Of(MeasureRows(prompts, rows, log));

    /// <summary>Each row's share per head, before any mean: what a shard of the rows keeps for the merge.</summary>
    public static AttentionRows MeasureRows(RowPrompts prompts, IReadOnlyList<(ProbingRow Row, int[] Tokens)> rows, TextWriter log)
    {
        var cfg = prompts.Model.Config;
        int layers = cfg.Layers, heads = cfg.Heads, sites = layers * heads;
        var spans = rows.Select(r => prompts.Evidence(r.Row, r.Tokens)).ToArray();
        var shares = new double[(long)rows.Count * sites];
        var capture = new ActivationCapture(cfg, ["blocks.*.attn.hook_pattern"], [-1]);
        using var progress = new Progress("attention to evidence (rows)", rows.Count, to: log);
        for (int i = 0; i < rows.Count; i++)
        {
            var (row, tokens) = rows[i];
            var (start, length) = spans[i];
            prompts.Run(row, tokens, capture);
            for (int l = 0; l < layers; l++)
            {
                var pattern = capture[HookNames.Name(HookKind.Pattern, l)].Data;   // [H, 1, T]
                for (int h = 0; h < heads; h++)
                {
                    var weights = pattern.AsSpan(h * tokens.Length, tokens.Length);
                    double onSpan = 0, total = 0;
                    for (int j = 0; j < weights.Length; j++)
                    {
                        total += weights[j];
                        if (j >= start && j < start + length) onSpan += weights[j];
                    }
                    // Divided by the row's own total, which float32 softmax leaves within ~1e-7 of 1.
                    shares[(long)i * sites + l * heads + h] = onSpan / total;
                }
            }
            progress.Advance();
        }
        return new AttentionRows(layers, heads, rows.Select(r => (long)r.Row.Index).ToArray(), rows.Select(r => r.Row.Label).ToArray(),
            spans.Select(s => s.Length).ToArray(), rows.Select(r => r.Tokens.Length).ToArray(), shares);
    }

    /// <summary>The means over the rows (and per label), summed row by row in the order given.</summary>
    public static EvidenceAttention Of(AttentionRows r)
    {
        int sites = r.Layers * r.Heads, n = r.RowIds.Length;
        var sum = new double[sites];
        var byLabel = new double[2][] { new double[sites], new double[sites] };
        int gold = 0;
        for (int i = 0; i < n; i++)
        {
            gold += r.Labels[i];
            for (int k = 0; k < sites; k++)
            {
                double share = r.Shares[(long)i * sites + k];
                sum[k] += share;
                byLabel[r.Labels[i]][k] += share;
            }
        }
        int hallucinated = n - gold;
        return new EvidenceAttention
        {
            Layers = r.Layers, Heads = r.Heads, Rows = n, GoldRows = gold,
            Share = sum.Select(s => s / n).ToArray(),
            ShareGold = byLabel[1].Select(s => gold == 0 ? double.NaN : s / gold).ToArray(),
            ShareHallucinated = byLabel[0].Select(s => hallucinated == 0 ? double.NaN : s / hallucinated).ToArray(),
            SpanTokens = r.SpanTokens.Average(t => (double)t),
            SequenceTokens = r.SequenceTokens.Average(t => (double)t),
        };
    }

    /// <summary>layer, head, share, then the per-label means; layer-major, shortest round-trip decimals.</summary>
    public string Csv()
    {
        var sb = new StringBuilder("layer,head,share,share_gold,share_hallucinated\n");
        for (int i = 0; i < Share.Length; i++)
            sb.Append(i / Heads).Append(',').Append(i % Heads).Append(',').Append(Number(Share[i]))
              .Append(',').Append(Number(ShareGold[i])).Append(',').Append(Number(ShareHallucinated[i])).Append('\n');
        return sb.ToString();
    }

    /// <summary>
    /// attention.npy (float64 [layers, heads]), attention.csv, heatmap.png and manifest.json into <paramref name="outDir"/>,
    /// each whole or not at all; <paramref name="inputs"/> (model, data, template, images...) go into the manifest.
    /// </summary>
    public void Write(string outDir, IReadOnlyDictionary<string, string> inputs, IFigures figures)
    {
        Directory.CreateDirectory(outDir);
        Npy.WriteFloat64(Path.Combine(outDir, FileName), Share, Layers, Heads);
        AtomicFile.WriteAllText(Path.Combine(outDir, "attention.csv"), Csv());
        var grid = new double[Layers, Heads];
        for (int i = 0; i < Share.Length; i++) grid[i / Heads, i % Heads] = Share[i];
        int top = Array.IndexOf(Share, Share.Max());
        figures.Heatmap(Path.Combine(outDir, "heatmap.png"), grid, "Attention to evidence (share of the answer's last token)", "head", "layer",
            string.Create(CultureInfo.InvariantCulture,
                $"N={Rows} ({GoldRows} gold): mean share {Share.Average():0.000}, top L{top / Heads}H{top % Heads} {Share[top]:0.000}; evidence {SpanTokens:0.#} of {SequenceTokens:0.#} tokens on average"),
            min: 0);
        var manifest = new JsonObject
        {
            ["tool"] = "truthprobe attention",
            ["measure"] = "per head, sum of blocks.{l}.attn.hook_pattern (per query head) of the scored token over the evidence span, divided by the row's total; mean over rows",
            ["position"] = ActivationCollector.PositionRule,
            ["evidence"] = "the image's positions (image rows), else the tokens of the text through {context} less those of the text before it",
            ["inputs"] = new JsonObject(inputs.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["rows"] = Rows, ["gold_1"] = GoldRows, ["hallucinated_0"] = Rows - GoldRows,
            ["mean_span_tokens"] = SpanTokens, ["mean_sequence_tokens"] = SequenceTokens,
            ["summary"] = new JsonObject
            {
                ["mean_share"] = Share.Average(),
                ["max_share"] = Share[top],
                ["top_head"] = new JsonArray(top / Heads, top % Heads),
            },
            ["outputs"] = new JsonArray(FileName, "attention.csv", "heatmap.png", "manifest.json"),
            ["provenance"] = Provenance.Of([], Provenance.HashesIn(inputs)),
        };
        AtomicFile.WriteAllText(Path.Combine(outDir, "manifest.json"), manifest.ToJsonString(ProbeRun.JsonOptions) + "\n");
    }
}
