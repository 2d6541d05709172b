using System.Globalization;
using System.Text.Json;
using System.Text;
using TruthProbe.Common;
using TruthProbe.Numerics;

namespace TruthProbe.Lineage;

/// <summary>The files and the printed table of <c>truthprobe drift</c>: drift.csv, summary.json, drift.png.</summary>
public static class DriftReport
{
    public const string CsvHeader = "layer,head,matrix,rel_frobenius,cosine";

    /// <summary>Writes every output into <paramref name="outDir"/> and returns their names.</summary>
    public static IReadOnlyList<string> Write(DriftResult r, string outDir, IFigures figures)
    {
        Directory.CreateDirectory(outDir);
        string[] outputs = ["drift.csv", "drift.png", "summary.json"];
        AtomicFile.WriteAllText(Path.Combine(outDir, "drift.csv"), Csv(r));
        double[] layers = Enumerable.Range(0, r.Layers).Select(l => (double)l).ToArray();
        figures.Lines(Path.Combine(outDir, "drift.png"), "Attention weight drift per layer", "layer", "||A - B||_F / ||A||_F",
            WeightDrift.Attention.Select(m => (m.ToUpperInvariant(), layers,
                Enumerable.Range(0, r.Layers).Select(l => r.Whole(l, m)!.RelFrobenius).ToArray())).ToList(),
            caption: $"A = parent {r.Parent.Name}, B = child {r.Child.Name}; whole W_Q, W_K, W_V, W_O per layer. " +
                     $"Mean over layers and the four matrices: {Fixed(r.ModelMean(WeightDrift.Attention))}. Independent matrices of equal norm give sqrt(2) = 1.41.",
            integerX: true, yFromZero: true);
        AtomicFile.WriteAllText(Path.Combine(outDir, "summary.json"), Summary(r, outputs));
        return outputs;
    }

    public static string Csv(DriftResult r)
    {
        var sb = new StringBuilder(CsvHeader).Append('\n');
        foreach (var e in r.Entries)
            sb.Append(CultureInfo.InvariantCulture, $"{e.Layer},{e.Head},{e.Matrix},{CsvFormat.Number(e.RelFrobenius)},{CsvFormat.Number(e.Cosine)}\n");
        return sb.ToString();
    }

    private static string Summary(DriftResult r, IReadOnlyList<string> outputs)
    {
        object? Stat(DriftEntry? e) => e == null ? null : new { rel_frobenius = e.RelFrobenius, cosine = e.Cosine };
        object Matrix(int layer, string m)
        {
            var heads = r.Heads(layer, m).Select(h => h.RelFrobenius).ToArray();
            var whole = r.Whole(layer, m)!;
            return new
            {
                rel_frobenius = whole.RelFrobenius,
                cosine = whole.Cosine,
                heads = heads.Length,
                head_mean_rel_frobenius = heads.Average(),
                head_max_rel_frobenius = heads.Max(),
                head_argmax = Array.IndexOf(heads, heads.Max()),
            };
        }
        var summary = new
        {
            tool = "truthprobe drift",
            parent = Model(r.Parent),
            child = Model(r.Child),
            normalisation = WeightDrift.Normalisation,
            layers_compared = r.Layers,
            attention_mean_rel_frobenius = r.ModelMean(WeightDrift.Attention),
            attention_mean_cosine = r.ModelMeanCosine(WeightDrift.Attention),
            mlp_mean_rel_frobenius = r.ModelMean(WeightDrift.Mlp),
            per_layer = Enumerable.Range(0, r.Layers).Select(l => new
            {
                layer = l,
                attention_mean_rel_frobenius = r.LayerMean(l, WeightDrift.Attention),
                mlp_mean_rel_frobenius = r.LayerMean(l, WeightDrift.Mlp),
                q = Matrix(l, "q"),
                k = Matrix(l, "k"),
                v = Matrix(l, "v"),
                o = Matrix(l, "o"),
                gate = Stat(r.Whole(l, "gate")),
                up = Stat(r.Whole(l, "up")),
                down = Stat(r.Whole(l, "down")),
                attn_norm = Stat(r.Whole(l, "attn_norm")),
                mlp_norm = Stat(r.Whole(l, "mlp_norm")),
            }),
            embed = Stat(r.Whole(null, "embed")),
            embed_rows_compared = r.Whole(null, "embed") is { } e ? e.Sums.Count / r.Parent.Config.DModel : 0,
            lm_head = Stat(r.Whole(null, "lm_head")),
            final_norm = Stat(r.Whole(null, "final_norm")),
            notes = r.Notes,
            outputs,
            provenance = Provenance.Of([], []), // deterministic, no seeds; checkpoints are not hashed (gigabytes each)
        };
        return JsonSerializer.Serialize(summary, CompareReport.JsonOptions) + "\n";
    }

    private static object Model(DriftModel m) => new
    {
        path = m.Path,
        format = m.Format,
        shape = m.Shape,
        ffn = m.Config.Ffn,
        vocab = m.Config.Vocab,
        tied_embeddings = m.Config.TiedEmbeddings,
    };

    /// <summary>Per layer the whole-matrix distances, then the model-level tensors, the notes and the normalisation.</summary>
    public static string FormatTable(DriftResult r)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"parent: {r.Parent.Path} ({r.Parent.Shape})");
        sb.AppendLine($"child:  {r.Child.Path} ({r.Child.Shape})");
        sb.AppendLine("rel. Frobenius distance ||A - B||_F / ||A||_F per layer (A = parent; whole matrices):");
        string[] columns = [.. WeightDrift.Attention, "attn mean", .. WeightDrift.Mlp, "mlp mean"];
        sb.Append("layer");
        foreach (string c in columns) sb.Append("  ").Append(c.PadLeft(9));
        sb.AppendLine();
        for (int l = 0; l < r.Layers; l++)
        {
            sb.Append(l.ToString(CultureInfo.InvariantCulture).PadRight(5));
            foreach (string m in WeightDrift.Attention) sb.Append("  ").Append(Fixed(r.Whole(l, m)?.RelFrobenius).PadLeft(9));
            sb.Append("  ").Append(Fixed(r.LayerMean(l, WeightDrift.Attention)).PadLeft(9));
            foreach (string m in WeightDrift.Mlp) sb.Append("  ").Append(Fixed(r.Whole(l, m)?.RelFrobenius).PadLeft(9));
            sb.Append("  ").Append(Fixed(r.LayerMean(l, WeightDrift.Mlp)).PadLeft(9));
            sb.AppendLine();
        }
        sb.AppendLine($"attention mean rel. Frobenius {Fixed(r.ModelMean(WeightDrift.Attention))} (mean cosine {Fixed(r.ModelMeanCosine(WeightDrift.Attention))}); " +
                      $"mlp mean {Fixed(r.ModelMean(WeightDrift.Mlp))}");
        foreach (string m in new[] { "embed", "lm_head", "final_norm" })
            if (r.Whole(null, m) is { } e)
                sb.AppendLine($"{m}: rel. Frobenius {Fixed(e.RelFrobenius)}, cosine {Fixed(e.Cosine)}");
        foreach (string n in r.Notes) sb.AppendLine($"note: {n}");
        sb.AppendLine($"normalisation: {WeightDrift.Normalisation}");
        return sb.ToString();
    }

    internal static string Fixed(double? v) => v is not double x || double.IsNaN(x) ? "n/a" : x.ToString("0.0000", CultureInfo.InvariantCulture);
}
