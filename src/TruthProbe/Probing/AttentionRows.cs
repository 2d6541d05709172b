using System.Runtime.InteropServices;
using System.Text.Json;
using TruthProbe.Common;
using TruthProbe.Formats;

namespace TruthProbe.Probing;

/// <summary>
/// Each row's attention-to-evidence share per head ([rows, layers * heads], layer-major), with its id, label and the
/// lengths the means report: a shard's part of an <c>attention</c> run, joined by the merge in data order so that the
/// means are summed exactly as one process sums them.
/// </summary>
public sealed record AttentionRows(int Layers, int Heads, long[] RowIds, byte[] Labels, int[] SpanTokens, int[] SequenceTokens, double[] Shares)
{
    public const string FileName = "attention_rows.safetensors";
    private const int Leading = 4;   // row id, label, span tokens, sequence tokens

    /// <summary>One F64 tensor <c>rows</c> [n, 4 + layers * heads] (the four leading columns are integers, exact in
    /// float64) and the run's <paramref name="inputs"/> in the metadata.</summary>
    public void Save(string path, IReadOnlyDictionary<string, string> inputs)
    {
        int sites = Layers * Heads, n = RowIds.Length;
        var table = new double[(long)n * (Leading + sites)];
        for (int i = 0; i < n; i++)
        {
            var line = table.AsSpan((int)((long)i * (Leading + sites)), Leading + sites);
            (line[0], line[1], line[2], line[3]) = (RowIds[i], Labels[i], SpanTokens[i], SequenceTokens[i]);
            Shares.AsSpan(i * sites, sites).CopyTo(line[Leading..]);
        }
        SafetensorsWriter.Write(path, [SafetensorToWrite.FromBytes("rows", TensorDType.F64, [n, Leading + sites], MemoryMarshal.AsBytes(table.AsSpan()).ToArray())],
            new Dictionary<string, string>
            {
                ["layers"] = Layers.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["heads"] = Heads.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["inputs"] = JsonSerializer.Serialize(inputs),
            });
    }

    public static (AttentionRows Rows, Dictionary<string, string> Inputs) Load(string path)
    {
        if (!File.Exists(path)) throw new UserError($"{path}: not found; rerun that shard");
        using var file = SafetensorsFile.Open(path);
        int Int(string key) => file.Metadata.TryGetValue(key, out var v) && int.TryParse(v, out int x) && x > 0
            ? x : throw new UserError($"{path}: metadata '{key}' missing or not a positive integer; rerun that shard");
        int layers = Int("layers"), heads = Int("heads"), sites = layers * heads;
        var t = file.Get("rows");
        if (t.DType != TensorDType.F64 || t.Shape.Length != 2 || t.Shape[1] != Leading + sites)
            throw new UserError($"{path}: tensor 'rows' must be F64 [n, {Leading + sites}]; rerun that shard");
        var table = MemoryMarshal.Cast<byte, double>(file.Bytes(t));
        int n = (int)t.Shape[0];
        var rows = new AttentionRows(layers, heads, new long[n], new byte[n], new int[n], new int[n], new double[(long)n * sites]);
        for (int i = 0; i < n; i++)
        {
            var line = table.Slice((int)((long)i * (Leading + sites)), Leading + sites);
            (rows.RowIds[i], rows.Labels[i], rows.SpanTokens[i], rows.SequenceTokens[i]) = ((long)line[0], (byte)line[1], (int)line[2], (int)line[3]);
            line[Leading..].CopyTo(rows.Shares.AsSpan(i * sites, sites));
        }
        var inputs = file.Metadata.TryGetValue("inputs", out var json) ? JsonSerializer.Deserialize<Dictionary<string, string>>(json) : null;
        return (rows, inputs ?? throw new UserError($"{path}: no 'inputs' metadata; rerun that shard"));
    }

    /// <summary>The parts' rows in data order (by row id); a row in two parts, or parts of other shapes, is an error.</summary>
    public static AttentionRows Join(IReadOnlyList<AttentionRows> parts)
    {
        var first = parts[0];
        if (parts.Any(p => (p.Layers, p.Heads) != (first.Layers, first.Heads)))
            throw new UserError("merge: the parts' attention maps have different shapes; they are not parts of one run");
        int sites = first.Layers * first.Heads;
        var order = parts.SelectMany(p => Enumerable.Range(0, p.RowIds.Length).Select(i => (Part: p, Row: i))).OrderBy(x => x.Part.RowIds[x.Row]).ToList();
        for (int i = 1; i < order.Count; i++)
            if (order[i].Part.RowIds[order[i].Row] == order[i - 1].Part.RowIds[order[i - 1].Row])
                throw new UserError($"merge: row {order[i].Part.RowIds[order[i].Row]} is in two parts; give each shard's part once");
        var shares = new double[(long)order.Count * sites];
        for (int i = 0; i < order.Count; i++) Array.Copy(order[i].Part.Shares, (long)order[i].Row * sites, shares, (long)i * sites, sites);
        return new AttentionRows(first.Layers, first.Heads, order.Select(x => x.Part.RowIds[x.Row]).ToArray(), order.Select(x => x.Part.Labels[x.Row]).ToArray(),
            order.Select(x => x.Part.SpanTokens[x.Row]).ToArray(), order.Select(x => x.Part.SequenceTokens[x.Row]).ToArray(), shares);
    }
}
