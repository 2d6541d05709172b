using System.Text.Json;
using TruthProbe.Common;

namespace TruthProbe.Model;

/// <summary>One prompt of a prompts file and its continuation.</summary>
public sealed record PromptReply(string Prompt, string Reply, GenerationResult Result);

/// <summary>
/// Many prompts for one generation run: a <c>.jsonl</c> file of objects with a string field <c>prompt</c>
/// (other fields ignored), or any other file as plain text, one prompt per line. Blank lines are skipped in
/// both. Replies are written as JSON Lines in the prompts' order.
/// </summary>
public static class PromptsFile
{
    public static List<string> Read(string path)
    {
        if (!File.Exists(path)) throw new UserError($"{path}: file not found (expected a .jsonl file of {{\"prompt\": ...}} objects or a text file, one prompt per line)");
        bool jsonLines = path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase);
        var prompts = new List<string>();
        int lineNumber = 0;
        foreach (string line in JsonText.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            prompts.Add(jsonLines ? PromptOf(line, $"{path}:{lineNumber}") : line.TrimEnd('\r'));
        }
        if (prompts.Count == 0) throw new UserError($"{path}: no prompts (every line is blank)");
        return prompts;
    }

    private static string PromptOf(string line, string where)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(line); }
        catch (JsonException e) { throw new UserError($"{where}: not valid JSON ({e.Message}); a .jsonl prompts file holds one {{\"prompt\": \"...\"}} object per line"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !JsonFields.TryGet(doc.RootElement, "prompt", out var prompt))
                throw new UserError($"{where}: expected an object with a string field 'prompt', got {JsonFields.Echo(doc.RootElement)}");
            return JsonFields.String(prompt, $"{where}: field 'prompt'");
        }
    }

    /// <summary>One line per prompt, in order: index, prompt, reply, new_ids, stopped_at_eos.</summary>
    public static void WriteReplies(Stream stream, IReadOnlyList<PromptReply> replies)
    {
        var options = new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        for (int i = 0; i < replies.Count; i++)
        {
            using (var json = new Utf8JsonWriter(stream, options))
            {
                json.WriteStartObject();
                json.WriteNumber("index", i);
                json.WriteString("prompt", replies[i].Prompt);
                json.WriteString("reply", replies[i].Reply);
                json.WriteStartArray("new_ids");
                foreach (int id in replies[i].Result.NewIds) json.WriteNumberValue(id);
                json.WriteEndArray();
                json.WriteBoolean("stopped_at_eos", replies[i].Result.StoppedAtEos);
                json.WriteEndObject();
            }
            stream.WriteByte((byte)'\n');
        }
    }
}
