using System.Text.Json;
using System.Text.Json.Nodes;
using TruthProbe.Common;

namespace TruthProbe.Vision;

/// <summary>The config.json of a vision-language folder (LLaVA, Qwen2.5-VL / Omni): read whole, and which architecture it names.</summary>
internal static class VisionConfigFile
{
    /// <summary>The file as a JSON object; <paramref name="folderKind"/> ("a LLaVA model folder") names what needs it in the message.</summary>
    public static JsonObject Read(string path, string folderKind)
    {
        if (!File.Exists(path)) throw new UserError($"{path}: file not found ({folderKind} needs config.json)");
        JsonNode? parsed;
        try { parsed = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new UserError($"{path}: not valid JSON ({e.Message})"); }
        return parsed as JsonObject ?? throw new UserError($"{path}: expected a JSON object");
    }

    /// <summary>The strings of field 'architectures' (others as empty), none when it is absent.</summary>
    public static string[] Architectures(JsonObject root) =>
        root["architectures"] is JsonArray a ? a.Select(x => x?.GetValueKind() == JsonValueKind.String ? x.GetValue<string>() : "").ToArray() : [];

    /// <summary>Whether <paramref name="folder"/> has a config.json naming one of <paramref name="supported"/>; a broken file is left to the decoder's reader to report.</summary>
    public static bool Names(string folder, IReadOnlyDictionary<string, string> supported)
    {
        string configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath)) return false;
        try
        {
            return JsonNode.Parse(File.ReadAllText(configPath)) is JsonObject root && Architectures(root).Any(supported.ContainsKey);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // Not JSON, or a name that is not valid text (a lone surrogate): the decoder's reader reports the broken file.
            return false;
        }
    }
}
