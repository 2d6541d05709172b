using TruthProbe.Common;

namespace TruthProbe.Probing;

/// <summary>
/// Joins the activations the shards of one <c>score</c> run collected into the file one process would have
/// written: rows in data order (by row id), the shard mark removed from the metadata and the fingerprint recomputed
/// over every row, so the merged file is byte for byte the single run's.
/// </summary>
public static class ActivationMerge
{
    public static ActivationSet Merge(IReadOnlyList<string> partFiles, string outPath)
    {
        var parts = partFiles.Select(f => ActivationSet.Load(f, null)).ToList();
        var first = parts[0];
        var metadata = Common(first.Metadata);
        for (int p = 1; p < parts.Count; p++)
        {
            var part = parts[p];
            if ((part.Layers, part.Heads, part.HeadDim) != (first.Layers, first.Heads, first.HeadDim))
                throw new UserError($"{partFiles[p]}: activations of [{part.Layers}, {part.Heads}, {part.HeadDim}] per row, {partFiles[0]} has [{first.Layers}, {first.Heads}, {first.HeadDim}]; these are not parts of one run");
            var other = Common(part.Metadata);
            if (other.Count != metadata.Count || other.Any(kv => !metadata.TryGetValue(kv.Key, out var v) || v != kv.Value))
            {
                string key = other.Keys.Concat(metadata.Keys).First(k => !other.TryGetValue(k, out var a) || !metadata.TryGetValue(k, out var b) || a != b);
                throw new UserError($"{partFiles[p]}: metadata '{key}' differs from {partFiles[0]}'s; these are not parts of one run");
            }
            if (part.Answers == null != (first.Answers == null))
                throw new UserError($"{partFiles[p]}: answer texts present in one part and not the other; these are not parts of one run");
        }

        // Every row with where it is: parts of image rows hold whole images, not blocks, so rows go back into data order by id.
        var rows = parts.SelectMany(p => Enumerable.Range(0, p.Rows).Select(i => (Part: p, Row: i))).OrderBy(r => r.Part.RowIds[r.Row]).ToList();
        long[] rowIds = rows.Select(r => r.Part.RowIds[r.Row]).ToArray();
        for (int i = 1; i < rowIds.Length; i++)
            if (rowIds[i] == rowIds[i - 1])
                throw new UserError($"merge: row {rowIds[i]} is in two parts; the parts overlap, give each shard's part once");
        int rowValues = first.Layers * first.Heads * first.HeadDim;
        var values = new float[(long)rows.Count * rowValues];
        for (int i = 0; i < rows.Count; i++)
            Array.Copy(rows[i].Part.Values, (long)rows[i].Row * rowValues, values, (long)i * rowValues, rowValues);
        metadata["fingerprint"] = ActivationCollector.Fingerprint(metadata, rowIds);
        var merged = new ActivationSet(rows.Count, first.Layers, first.Heads, first.HeadDim, values,
            rows.Select(r => r.Part.Labels[r.Row]).ToArray(), rowIds, metadata,
            first.Answers == null ? null : rows.Select(r => r.Part.Answers![r.Row]).ToArray());
        merged.Save(outPath);
        return ActivationSet.Load(outPath, null);
    }

    /// <summary>The metadata every part shares with the single run: without the shard mark, the fingerprint (it
    /// names the part's rows) and the format (written by <see cref="ActivationSet.Save"/>).</summary>
    private static Dictionary<string, string> Common(IReadOnlyDictionary<string, string> metadata) =>
        metadata.Where(kv => kv.Key is not (ActivationCollector.ShardKey or "fingerprint" or "format")).ToDictionary(kv => kv.Key, kv => kv.Value);
}
