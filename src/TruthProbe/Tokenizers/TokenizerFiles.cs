using System.Text.Json;
using TruthProbe.Common;

namespace TruthProbe.Tokenizers;

/// <summary>File reads that turn a missing, unreadable or unparsable file into a <see cref="UserError"/> naming it.</summary>
internal static class TokenizerFiles
{
    public static byte[] ReadAll(string path)
    {
        try { return File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserError($"{path}: cannot read tokenizer file ({e.Message})", e);
        }
    }

    public static string[] ReadAllLines(string path)
    {
        try { return File.ReadAllLines(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserError($"{path}: cannot read tokenizer file ({e.Message})", e);
        }
    }

    public static JsonDocument ReadJson(string path)
    {
        byte[] bytes = ReadAll(path);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip }); }
        catch (JsonException e) { throw new UserError($"{path}: not valid JSON ({e.Message})"); }
        return JsonText.WithValidStrings(doc, path);
    }
}
