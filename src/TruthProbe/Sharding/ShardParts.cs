using System.Text.Json.Nodes;
using TruthProbe.Common;

namespace TruthProbe.Sharding;

/// <summary>
/// The part folders of one sharded run, checked for a merge: every part finished, all of one run (same verb,
/// arguments, inputs, shard count, item count and code version), and together covering the items exactly once.
/// Ordered by shard, i.e. in data order.
/// </summary>
public sealed class ShardParts
{
    public IReadOnlyList<(string Dir, ShardManifest Manifest)> Parts { get; }
    /// <summary>What agrees in every part.</summary>
    public ShardManifest First => Parts[0].Manifest;
    /// <summary>Lines a reader should see: parts run on different vector widths or CPUs may differ in last bits.</summary>
    public IReadOnlyList<string> Warnings { get; }

    private ShardParts(IReadOnlyList<(string, ShardManifest)> parts, IReadOnlyList<string> warnings) => (Parts, Warnings) = (parts, warnings);

    public static ShardParts Check(IReadOnlyList<string> dirs)
    {
        if (dirs.Count == 0) throw new UserError("merge: give the part folders the shards wrote");
        var parts = dirs.Select(d => (Dir: d, Manifest: ShardManifest.Read(d))).ToList();
        var (firstDir, first) = parts[0];
        foreach (var (dir, m) in parts.Skip(1))
        {
            string? differs =
                m.Verb != first.Verb ? $"verb '{m.Verb}' vs '{first.Verb}'" :
                m.Shard.Count != first.Shard.Count ? $"shard count {m.Shard.Count} vs {first.Shard.Count}" :
                !m.Arguments.SequenceEqual(first.Arguments) ? $"arguments '{Echo(string.Join(' ', m.Arguments))}' vs '{Echo(string.Join(' ', first.Arguments))}'" :
                !m.Inputs.SequenceEqual(first.Inputs) ? $"input {DifferingInput(m, first)}" :
                m.Total != first.Total ? $"{m.Unit} in all {m.Total} vs {first.Total}" :
                Text(m.Provenance, "code_version") != Text(first.Provenance, "code_version")
                    ? $"code version {Text(m.Provenance, "code_version")} vs {Text(first.Provenance, "code_version")} (rerun the shards with one build)" : null;
            if (differs != null)
                throw new UserError($"merge: {dir} is not a part of the same run as {firstDir}: {differs}");
        }
        var byIndex = parts.GroupBy(p => p.Manifest.Shard.Index).ToDictionary(g => g.Key, g => g.ToList());
        if (byIndex.Values.FirstOrDefault(g => g.Count > 1) is { } twice)
            throw new UserError($"merge: shard {twice[0].Manifest.Shard.Label} is given twice ({string.Join(", ", twice.Select(p => p.Dir))}); give each part once");
        var missing = Enumerable.Range(0, first.Shard.Count).Where(i => !byIndex.ContainsKey(i)).Select(i => new Shard(i, first.Shard.Count)).ToList();
        if (missing.Count > 0)
        {
            string list = string.Join(", ", missing.Take(10).Select(s => s.Label)) + (missing.Count > 10 ? $" and {missing.Count - 10} more" : "");
            throw new UserError($"merge: shard(s) {list} missing ({missing.Count} of {first.Shard.Count}); run them, or add their part folders");
        }
        var ordered = parts.OrderBy(p => p.Manifest.Shard.Index).ToList();
        var warnings = new List<string>();
        foreach (string field in new[] { "vector_width", "cpu" })
        {
            var values = ordered.Select(p => Text(p.Manifest.Provenance, field)).Distinct().ToList();
            if (values.Count > 1)
                warnings.Add($"the shards ran with different {field.Replace('_', ' ')}s ({string.Join(", ", values)}): their last bits may differ from a single run's");
        }
        return new ShardParts(ordered, warnings);
    }

    /// <summary>
    /// A data file the shards read, by the absolute path and SHA-256 they recorded: a merge may run elsewhere, and
    /// needs the file as it was for <paramref name="purpose"/> ("to rebuild the items").
    /// </summary>
    public static void RequireRecorded(string path, string sha256, string purpose)
    {
        if (!File.Exists(path) || Hashing.Sha256File(path) != sha256)
            throw new UserError($"merge: the shards read {path} (sha256 {sha256}); that file is needed, unchanged, {purpose}");
    }

    private static string DifferingInput(ShardManifest a, ShardManifest b)
    {
        var other = b.Inputs.ToDictionary(i => i.Name, i => i.Sha256);
        foreach (var (name, sha) in a.Inputs)
            if (!other.TryGetValue(name, out string? s) || s != sha) return $"'{name}' has another SHA-256 (a changed file?)";
        return "names differ";
    }

    private static string Text(JsonObject o, string field) => o[field]?.ToString() ?? "unknown";

    private static string Echo(string s) => s.Length <= 80 ? s : s[..80] + "...";
}
