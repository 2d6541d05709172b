using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Numerics;
using TruthProbe.Probing;
using TruthProbe.Reports;

namespace TruthProbe.Demo;

/// <summary>
/// The demo's analysis (every file <see cref="DemoRun.Execute"/> writes under its output folder: scores, bootstrap
/// intervals, gating evaluations, vlm results, the report) kept beside the family it was computed from, so that a
/// rerun of the same command rewrites those files from the cache instead of scoring, bootstrapping and judging again
/// (about 107 CPU seconds on the default plan, docs/demo.md). The key hashes everything the files' bytes depend on:
/// the family (its folder and its manifest, which records every model's SHA-256), the whole plan, the seed, the
/// output folder (manifests name their inputs by path), the build and the machine's provenance (CPU, vector width,
/// .NET: the lab's sums depend on the width). An entry is <c>analysis/KEY/</c> in the family's folder, filled under
/// another name and renamed into place after its manifest (<see cref="ManifestFile"/>, each file with its SHA-256)
/// is written last, so a folder without the manifest is never read; a file that no longer matches its hash makes
/// the run compute again.
/// </summary>
public sealed class DemoAnalysisCache
{
    public const string Folder = "analysis", ManifestFile = "analysis.json";
    private const string PartialMarker = ".partial-";
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private readonly string _root, _outDir;
    private readonly JsonObject _inputs;
    private readonly Dictionary<string, DateTime> _before;

    public string Key { get; }
    public string EntryDir => Path.Combine(_root, Key);

    /// <summary>
    /// The build: the module version ids of the assemblies that compute and write the outputs. Builds are
    /// deterministic, so the id changes exactly when an assembly's content does (an edited, uncommitted build too).
    /// </summary>
    public static string CodeIdentity { get; } = string.Join(",",
        new[] { typeof(DemoRun), typeof(ProbeRun), typeof(HtmlReport) }.Select(t => t.Assembly.ManifestModule.ModuleVersionId.ToString("N")));

    private DemoAnalysisCache(DemoFamily family, string outDir, JsonObject inputs)
    {
        (_root, _outDir, _inputs) = (Path.Combine(family.Dir, Folder), outDir, inputs);
        Key = Hashing.Sha256(Encoding.UTF8.GetBytes(inputs.ToJsonString()))[..16];
        // What the output folder held before the run: a file counts as this run's when it is new or was rewritten.
        _before = Directory.Exists(outDir)
            ? Directory.EnumerateFiles(outDir, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.GetLastWriteTimeUtc, StringComparer.Ordinal)
            : [];
    }

    /// <summary>The cache of this family's analysis with this plan, seed and output folder, on this build (<paramref name="code"/> stands in for it in tests).</summary>
    public static DemoAnalysisCache For(DemoFamily family, DemoPlan plan, int seed, string outDir, string? code = null) => new(family, outDir, new JsonObject
    {
        ["family"] = Path.GetFullPath(family.Dir),
        ["family_manifest_sha256"] = Hashing.Sha256File(Path.Combine(family.Dir, DemoFamily.ManifestFile)),
        ["plan"] = JsonSerializer.SerializeToNode(plan),
        ["seed"] = seed,
        ["out"] = Path.GetFullPath(outDir),
        ["code"] = code ?? CodeIdentity,
        ["provenance"] = Provenance.Of([], []),
    });

    /// <summary>
    /// Writes the cached files into the output folder when the entry is complete and every file matches its hash;
    /// false (compute) otherwise. summary.json then says whether this run's family came from the cache, the one fact
    /// about the run itself it records.
    /// </summary>
    public bool TryRestore(DemoRun run)
    {
        if (ReadManifest(EntryDir) is not { } entry) return false;
        foreach (var (path, sha256) in entry.Files)
        {
            string source = Path.Combine(EntryDir, path);
            if (!File.Exists(source)) return false;
            bool intact = true;
            AtomicFile.Write(Path.Combine(_outDir, path), s =>
            {
                // The bytes pass through the hash on their way out: one read of each cached file.
                using var sha = SHA256.Create();
                using (var through = new CryptoStream(s, sha, CryptoStreamMode.Write, leaveOpen: true))
                using (var f = File.OpenRead(source)) f.CopyTo(through);
                intact = Convert.ToHexStringLower(sha.Hash!) == sha256;
            });
            if (!intact) return false; // the run computes and rewrites what was copied; its store replaces the entry
        }
        string summaryPath = Path.Combine(_outDir, "summary.json");
        var summary = JsonNode.Parse(File.ReadAllText(summaryPath))!.AsObject();
        summary["family_from_cache"] = run.Family.FromCache;
        AtomicFile.WriteAllText(summaryPath, summary.ToJsonString(Indented) + "\n");
        run.Checks.AddRange(summary["checks"]!.AsArray().Select(c => new DemoCheck(
            (string)c!["name"]!, Enum.Parse<DemoCheck.Result>((string)c["outcome"]!, ignoreCase: true), (string)c["detail"]!)));
        return true;
    }

    /// <summary>
    /// Copies the files this run wrote into a new entry (replacing one left by an interrupted store or a file that
    /// no longer matched), manifest last, renamed into place; drops entries of other builds, which no run can read.
    /// </summary>
    public void Store()
    {
        var written = Directory.EnumerateFiles(_outDir, "*", SearchOption.AllDirectories)
            .Where(f => !_before.TryGetValue(f, out var t) || File.GetLastWriteTimeUtc(f) != t)
            .Select(f => Path.GetRelativePath(_outDir, f)).Order(StringComparer.Ordinal).ToList();
        string partial = EntryDir + PartialMarker + Guid.NewGuid().ToString("N");
        var list = new JsonArray();
        foreach (string path in written)
        {
            string target = Path.Combine(partial, path);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(Path.Combine(_outDir, path), target);
            list.Add(new JsonObject { ["path"] = path.Replace('\\', '/'), ["sha256"] = Hashing.Sha256File(target) });
        }
        AtomicFile.WriteAllText(Path.Combine(partial, ManifestFile), new JsonObject { ["key"] = Key, ["inputs"] = _inputs.DeepClone(), ["files"] = list }.ToJsonString(Indented) + "\n");
        if (Directory.Exists(EntryDir)) Directory.Delete(EntryDir, recursive: true);
        try { Directory.Move(partial, EntryDir); }
        catch (IOException) when (File.Exists(Path.Combine(EntryDir, ManifestFile)))
        {
            Directory.Delete(partial, recursive: true); // a run beside this one stored the same entry first
        }
        foreach (string other in Directory.EnumerateDirectories(_root).Where(d => d != EntryDir && Stale(d)).ToList())
            Directory.Delete(other, recursive: true);
    }

    /// <summary>An entry's build and (path, sha256) list; null when it is absent, incomplete or unreadable.</summary>
    private static (string Code, List<(string Path, string Sha256)> Files)? ReadManifest(string dir)
    {
        string manifest = Path.Combine(dir, ManifestFile);
        if (!File.Exists(manifest)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(manifest));
            string Text(JsonElement e, string field) => JsonFields.String(JsonFields.Required(e, field, manifest), manifest);
            var inputs = JsonFields.Object(JsonFields.Required(doc.RootElement, "inputs", manifest), manifest);
            var files = JsonFields.Array(JsonFields.Required(doc.RootElement, "files", manifest), manifest);
            return (Text(inputs, "code"), files.EnumerateArray().Select(f => (Text(f, "path"), Text(f, "sha256"))).ToList());
        }
        catch (Exception e) when (e is JsonException or UserError)
        {
            return null;
        }
    }

    /// <summary>An entry of another build (never read again), or one a killed run left half stored an hour ago or more.</summary>
    private bool Stale(string dir) => Path.GetFileName(dir).Contains(PartialMarker, StringComparison.Ordinal)
        ? Directory.GetLastWriteTimeUtc(dir) < DateTime.UtcNow.AddHours(-1)
        : ReadManifest(dir)?.Code != (string)_inputs["code"]!;
}
