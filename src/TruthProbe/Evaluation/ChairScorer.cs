using System.Text.Json;
using System.Text.RegularExpressions;
using TruthProbe.Common;
using TruthProbe.Numerics;

namespace TruthProbe.Evaluation;

/// <summary>A caption to score: the COCO image it describes and its text.</summary>
public sealed record Caption(long ImageId, string Text);

/// <summary>One object mention: the word as it was read (after lemmatising) and the COCO object it names.</summary>
public readonly record struct Mention(string Word, string Object);

/// <summary>What CHAIR found in one caption.</summary>
public sealed record CaptionScore(
    Caption Caption,
    bool KnownImage,
    int Words,
    IReadOnlyList<Mention> Mentioned,
    IReadOnlyList<Mention> Hallucinated,
    IReadOnlyList<string> GroundTruth,
    IReadOnlyList<string> Recalled);

/// <summary>
/// CHAIR over a set of captions, as percentages. Captions of images without ground truth are not scored
/// (an unknown image would make every mention a hallucination); they are counted and listed instead.
/// </summary>
public sealed record ChairResult(
    double ChairS,
    double? ChairI,
    double? Recall,
    double Len,
    int Captions,
    int Mentions,
    int HallucinatedMentions,
    int EmptyCaptions,
    IReadOnlyList<long> UnknownImageIds,
    IReadOnlyList<CaptionScore> Details);

/// <summary>
/// CHAIR (Rohrbach et al. 2018) exactly as its reference chair.py computes it in the OPERA / "Less is More"
/// evaluations: NLTK tokens of the lower-cased caption, lemmatised (<see cref="ChairLemmatizer"/>), two-word
/// phrases merged left to right (<c>double_word_dict</c>, e.g. "baby dog" -> dog, "toilet seat" -> toilet),
/// "seat" dropped when "toilet" is also in the caption, then every word in the synonym table is a mention of
/// its COCO object. CHAIR_S = captions with a mention missing from the image's ground truth / captions;
/// CHAIR_I = such mentions / all mentions; Recall = distinct ground-truth objects mentioned / ground-truth
/// objects (summed over captions); Len = tokens after phrase merging, per caption.
/// Load once (<see cref="Load"/>), then <see cref="Score"/> any number of caption sets.
/// </summary>
public sealed class ChairScorer
{
    private readonly Dictionary<string, string> _objectOf;
    private readonly Dictionary<string, string> _doubleWords;
    private readonly Dictionary<long, string[]> _groundTruth;
    private readonly ChairLemmatizer _lemmatizer;

    public ChairScorer(Dictionary<string, string> objectOf, Dictionary<string, string> doubleWords, Dictionary<long, string[]> groundTruth)
    {
        _objectOf = objectOf;
        _doubleWords = doubleWords;
        _groundTruth = groundTruth;
        var vocabulary = objectOf.Keys.Where(k => k.Length > 0 && !k.Contains(' '))
            .Concat(doubleWords.Keys.SelectMany(k => k.Split(' ')));
        _lemmatizer = new ChairLemmatizer(vocabulary);
    }

    public int GroundTruthImages => _groundTruth.Count;

    /// <summary>The default ground truth: the NLTK-lemmatiser build the published CHAIR numbers were computed with.</summary>
    public const string DefaultGroundTruth = "coco2014_gt_objects_subset_lemmatizer.json";
    public const string WordMapsFile = "chair_word_maps.json";

    public static ChairScorer Load(string wordMapsPath, string groundTruthPath)
    {
        using var maps = ParseJsonFile(wordMapsPath);
        var objectOf = ReadStringMap(maps.RootElement, "inverse_synonym_dict", wordMapsPath);
        var doubles = ReadStringMap(maps.RootElement, "double_word_dict", wordMapsPath);

        using var gt = ParseJsonFile(groundTruthPath);
        if (gt.RootElement.ValueKind != JsonValueKind.Object)
            throw new UserError($"{groundTruthPath}: expected a JSON object {{\"<coco image id>\": [objects...]}}");
        var groundTruth = new Dictionary<long, string[]>();
        foreach (var p in gt.RootElement.EnumerateObject())
        {
            if (!long.TryParse(p.Name, out long id))
                throw new UserError($"{groundTruthPath}: key '{p.Name}' is not a COCO image id (an integer)");
            if (p.Value.ValueKind != JsonValueKind.Array || p.Value.EnumerateArray().Any(o => o.ValueKind != JsonValueKind.String))
                throw new UserError($"{groundTruthPath}: image {p.Name}: expected a list of object names");
            groundTruth[id] = p.Value.EnumerateArray().Select(o => o.GetString()!).Distinct().Order(StringComparer.Ordinal).ToArray();
        }
        return new ChairScorer(objectOf, doubles, groundTruth);
    }

    /// <summary>Captions from a JSON Lines (or JSON array) file: <c>image_id</c> and <c>caption</c> or <c>text</c>.</summary>
    public static List<Caption> ReadCaptions(string path)
    {
        var captions = new List<Caption>();
        foreach (var r in JsonRecords.Read(path))
        {
            // A JSON number must be an integer id: 2239.5 read as text would match its trailing digits, 5.
            long imageId = r.Value.TryGetProperty("image_id", out var idJson) && idJson.ValueKind == JsonValueKind.Number ? r.Integer("image_id")
                : ParseImageId(r.Text("image_id") ?? throw new UserError($"{r.Where}: missing field 'image_id'"), r.Where);
            string text = r.String("caption") ?? r.String("text")
                ?? throw new UserError($"{r.Where}: missing the caption (field 'caption' or 'text')");
            captions.Add(new Caption(imageId, text));
        }
        if (captions.Count == 0) throw new UserError($"{path}: no captions; expected one {{\"image_id\", \"caption\"}} record per line");
        return captions;
    }

    private static readonly Regex TrailingDigits = new(@"(\d+)(\.[A-Za-z]+)?$", RegexOptions.Compiled);

    /// <summary>An integer, or a COCO file name such as 000000123456.jpg / COCO_val2014_000000123456.jpg.</summary>
    public static long ParseImageId(string key, string where)
    {
        var m = TrailingDigits.Match(key.Trim());
        if (!m.Success || !long.TryParse(m.Groups[1].ValueSpan, out long id))
            throw new UserError($"{where}: image_id '{key}' is neither an integer nor a COCO file name like COCO_val2014_000000123456.jpg");
        return id;
    }

    /// <summary>The words of a caption after lemmatising and phrase merging, and the object mentions among them.</summary>
    public (List<string> Words, List<Mention> Mentions) Extract(string caption)
    {
        var tokens = CaptionTokenizer.Tokenize(caption.ToLowerInvariant());
        var lemmas = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
            lemmas.Add(_lemmatizer.Lemma(tokens[i], i > 0 ? tokens[i - 1] : null, i + 1 < tokens.Count ? tokens[i + 1] : null));

        var words = new List<string>(lemmas.Count);
        for (int i = 0; i < lemmas.Count;)
        {
            if (i + 1 < lemmas.Count && _doubleWords.TryGetValue(lemmas[i] + " " + lemmas[i + 1], out string? merged))
            {
                words.Add(merged);
                i += 2;
            }
            else words.Add(lemmas[i++]);
        }

        // "the seat of the toilet" is not a chair.
        bool dropSeat = words.Contains("toilet") && words.Contains("seat");
        var mentions = new List<Mention>();
        foreach (string w in words)
        {
            if (dropSeat && w == "seat") continue;
            if (_objectOf.TryGetValue(w, out string? obj)) mentions.Add(new Mention(w, obj));
        }
        return (words, mentions);
    }

    public ChairResult Score(IEnumerable<Caption> captions)
    {
        var details = new List<CaptionScore>();
        var unknown = new List<long>();
        int scored = 0, hallucinatedCaptions = 0, mentionCount = 0, hallucinatedCount = 0, empty = 0;
        long words = 0, gtTotal = 0, recalledTotal = 0;
        foreach (var caption in captions)
        {
            var (captionWords, mentions) = Extract(caption.Text);
            if (!_groundTruth.TryGetValue(caption.ImageId, out string[]? gt))
            {
                unknown.Add(caption.ImageId);
                details.Add(new CaptionScore(caption, false, captionWords.Count, mentions, [], [], []));
                continue;
            }
            var hallucinated = mentions.Where(m => Array.BinarySearch(gt, m.Object, StringComparer.Ordinal) < 0).ToList();
            var recalled = mentions.Select(m => m.Object).Where(o => Array.BinarySearch(gt, o, StringComparer.Ordinal) >= 0)
                .Distinct().Order(StringComparer.Ordinal).ToList();
            scored++;
            if (string.IsNullOrWhiteSpace(caption.Text)) empty++;
            if (hallucinated.Count > 0) hallucinatedCaptions++;
            mentionCount += mentions.Count;
            hallucinatedCount += hallucinated.Count;
            words += captionWords.Count;
            gtTotal += gt.Length;
            recalledTotal += recalled.Count;
            details.Add(new CaptionScore(caption, true, captionWords.Count, mentions, hallucinated, gt, recalled));
        }
        return new ChairResult(
            ChairS: scored > 0 ? 100.0 * hallucinatedCaptions / scored : 0,
            ChairI: mentionCount > 0 ? 100.0 * hallucinatedCount / mentionCount : null,
            Recall: gtTotal > 0 ? 100.0 * recalledTotal / gtTotal : null,
            Len: scored > 0 ? (double)words / scored : 0,
            Captions: scored,
            Mentions: mentionCount,
            HallucinatedMentions: hallucinatedCount,
            EmptyCaptions: empty,
            UnknownImageIds: unknown,
            Details: details);
    }

    /// <summary>Writes <c>captions.jsonl</c>, then <c>metrics.json</c>, into <paramref name="outDir"/>.</summary>
    public static void Write(ChairResult result, string outDir, IReadOnlyDictionary<string, string> inputs)
    {
        var metrics = new Dictionary<string, object?>
        {
            ["chair_s"] = result.ChairS,
            ["chair_i"] = result.ChairI,
            ["recall"] = result.Recall,
            ["len"] = result.Len,
            ["captions"] = result.Captions,
            ["mentions"] = result.Mentions,
            ["hallucinated_mentions"] = result.HallucinatedMentions,
            ["empty_captions"] = result.EmptyCaptions,
            ["unknown_images"] = result.UnknownImageIds.Count,
            ["unknown_image_ids"] = result.UnknownImageIds,
            ["inputs"] = inputs,
            ["provenance"] = Provenance.Of([], Provenance.HashesIn(inputs)),
        };
        AtomicFile.Write(Path.Combine(outDir, "captions.jsonl"), stream =>
        {
            foreach (var d in result.Details)
            {
                using var w = new Utf8JsonWriter(stream);
                w.WriteStartObject();
                w.WriteNumber("image_id", d.Caption.ImageId);
                w.WriteString("caption", d.Caption.Text);
                w.WriteBoolean("known_image", d.KnownImage);
                w.WriteNumber("words", d.Words);
                WriteMentions(w, "mentioned", d.Mentioned);
                WriteMentions(w, "hallucinated", d.Hallucinated);
                w.WriteStartArray("ground_truth");
                foreach (string o in d.GroundTruth) w.WriteStringValue(o);
                w.WriteEndArray();
                w.WriteStartArray("recalled");
                foreach (string o in d.Recalled) w.WriteStringValue(o);
                w.WriteEndArray();
                w.WriteEndObject();
                w.Flush();
                stream.WriteByte((byte)'\n');
            }
        });
        // Last: a folder with metrics.json holds a finished run.
        AtomicFile.WriteAllText(Path.Combine(outDir, "metrics.json"),
            JsonSerializer.Serialize(metrics, new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    private static void WriteMentions(Utf8JsonWriter w, string name, IReadOnlyList<Mention> mentions)
    {
        w.WriteStartArray(name);
        foreach (var m in mentions)
        {
            w.WriteStartObject();
            w.WriteString("word", m.Word);
            w.WriteString("object", m.Object);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static JsonDocument ParseJsonFile(string path)
    {
        if (!File.Exists(path)) throw new UserError($"{path}: file not found");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new UserError($"{path}:{(e.LineNumber ?? 0) + 1}: malformed JSON"); }
        return JsonText.WithValidStrings(doc, path);
    }

    private static Dictionary<string, string> ReadStringMap(JsonElement root, string name, string path)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty(name, out var map) || map.ValueKind != JsonValueKind.Object)
            throw new UserError($"{path}: missing object '{name}' (expected the CHAIR word maps file)");
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in map.EnumerateObject())
            result[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : throw new UserError($"{path}: {name}['{p.Name}'] is not a string");
        return result;
    }
}
