using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Numerics;

namespace TruthProbe.Sharding;

/// <summary>
/// <c>shard.json</c>, written last into a shard's part folder: the verb, its arguments (all but <c>--shard</c> and
/// <c>--out</c>), the shard, the block of items it covers, the input hashes and the provenance. Its presence marks
/// the part as finished; <c>truthprobe merge</c> checks that the parts' manifests agree and cover the items once.
/// </summary>
/// <param name="Unit">what the items are ("rows", "images"), for messages.</param>
/// <param name="Inputs">name to SHA-256 of every input the outputs depend on (model, data, gates...).</param>
public sealed record ShardManifest(string Verb, IReadOnlyList<string> Arguments, Shard Shard, string Unit, int Start, int End, int Total,
    IReadOnlyList<(string Name, string Sha256)> Inputs)
{
    public const string FileName = "shard.json", FormatName = "truthprobe.shard.v1";

    /// <summary>Read back from a part; the provenance as written (code version, CPU, vector width).</summary>
    public JsonObject Provenance { get; init; } = Numerics.Provenance.Of([], []);

    public static ShardManifest For(string verb, IReadOnlyList<string> arguments, Shard shard, string unit, int total,
        IEnumerable<(string Name, string Sha256)> inputs)
    {
        var (start, end) = shard.Range(total);
        return new ShardManifest(verb, arguments, shard, unit, start, end, total, inputs.ToList());
    }

    /// <summary>Writes <c>DIR/shard.json</c>; call it after every other output of the part is in place.</summary>
    public void Write(string dir)
    {
        var json = new JsonObject
        {
            ["format"] = FormatName,
            ["verb"] = Verb,
            ["arguments"] = new JsonArray(Arguments.Select(a => (JsonNode?)a).ToArray()),
            ["shard"] = new JsonObject { ["index"] = Shard.Index, ["count"] = Shard.Count, ["label"] = Shard.Label },
            ["items"] = new JsonObject { ["unit"] = Unit, ["start"] = Start, ["end"] = End, ["total"] = Total },
            ["provenance"] = Numerics.Provenance.Of([], Inputs),
        };
        AtomicFile.WriteAllText(Path.Combine(dir, FileName), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    public static ShardManifest Read(string dir)
    {
        string path = Path.Combine(dir, FileName);
        if (!Directory.Exists(dir)) throw new UserError($"{dir}: part folder not found");
        if (!File.Exists(path))
            throw new UserError($"{dir}: no {FileName}, so this shard did not finish; rerun it with the same command (it resumes) and merge again");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new UserError($"{path}: not valid JSON ({e.Message}); rerun this shard"); }
        using (doc)
        {
            var root = JsonFields.Object(doc.RootElement, path);
            JsonElement Field(JsonElement obj, string name, string where) => JsonFields.Required(obj, name, where, "rerun this shard");
            if (JsonFields.String(Field(root, "format", path), $"{path}: format") != FormatName)
                throw new UserError($"{path}: format is not {FormatName}; it was written by another tool or version, rerun this shard");
            var shard = JsonFields.Object(Field(root, "shard", path), $"{path}: shard");
            int count = JsonFields.Int32(Field(shard, "count", $"{path}: shard"), $"{path}: shard.count", 1, Shard.MaxCount);
            int index = JsonFields.Int32(Field(shard, "index", $"{path}: shard"), $"{path}: shard.index", 0, count - 1);
            var items = JsonFields.Object(Field(root, "items", path), $"{path}: items");
            int total = JsonFields.Int32(Field(items, "total", $"{path}: items"), $"{path}: items.total", 0);
            var provenance = JsonFields.Object(Field(root, "provenance", path), $"{path}: provenance");
            var hashes = JsonFields.Object(Field(provenance, "input_hashes", $"{path}: provenance"), $"{path}: provenance.input_hashes");
            var manifest = new ShardManifest(
                JsonFields.String(Field(root, "verb", path), $"{path}: verb"),
                JsonFields.Array(Field(root, "arguments", path), $"{path}: arguments").EnumerateArray()
                    .Select((a, i) => JsonFields.String(a, $"{path}: arguments[{i}]")).ToList(),
                new Shard(index, count),
                JsonFields.String(Field(items, "unit", $"{path}: items"), $"{path}: items.unit"),
                JsonFields.Int32(Field(items, "start", $"{path}: items"), $"{path}: items.start", 0, total),
                JsonFields.Int32(Field(items, "end", $"{path}: items"), $"{path}: items.end", 0, total),
                total,
                hashes.EnumerateObject().Select(p => (p.Name, JsonFields.String(p.Value, $"{path}: provenance.input_hashes.{p.Name}"))).ToList())
            {
                Provenance = (JsonObject)JsonNode.Parse(provenance.GetRawText())!,
            };
            if ((manifest.Start, manifest.End) != manifest.Shard.Range(total))
                throw new UserError($"{path}: shard {manifest.Shard.Label} of {total} {manifest.Unit} must cover [{manifest.Shard.Range(total).Start}, {manifest.Shard.Range(total).End}), " +
                                    $"the manifest says [{manifest.Start}, {manifest.End}); rerun this shard");
            return manifest;
        }
    }

    /// <summary>
    /// A SHA-256 naming a model's content: the file's own hash, or for a folder the hash of the list of its weight,
    /// config and tokenizer files with each one's hash (other files, e.g. a README, do not change what runs).
    /// </summary>
    public static string HashModel(string path)
    {
        if (File.Exists(path)) return Hashing.Sha256File(path);
        var files = Directory.GetFiles(path)
            .Where(f => Path.GetExtension(f) is ".safetensors" or ".json" or ".model" or ".gguf" or ".bin")
            .Order(StringComparer.Ordinal);
        var list = new StringBuilder();
        foreach (string f in files) list.Append(Path.GetFileName(f)).Append('\t').Append(Hashing.Sha256File(f)).Append('\n');
        return Hashing.Sha256(Encoding.UTF8.GetBytes(list.ToString()));
    }
}
