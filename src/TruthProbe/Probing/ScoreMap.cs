using System.Globalization;
using TruthProbe.Common;
using TruthProbe.Formats;

namespace TruthProbe.Probing;

/// <summary>
/// A Truth-Score map: one score per (layer, head), layer-major, NaN where a head has no score.
/// Layer and head indices are kept explicitly because a CSV may list any subset of them.
/// </summary>
public sealed class ScoreMap
{
    /// <summary>The file names a score output folder holds, in the order they are looked for.</summary>
    public static readonly string[] FolderFiles = ["scores.npy", "scores.csv"];

    public string Name { get; }
    /// <summary>The file the scores were read from (inside the folder when a folder was given).</summary>
    public string File { get; }
    public int[] LayerIds { get; }
    public int[] HeadIds { get; }
    /// <summary>[LayerIds.Length * HeadIds.Length], row r = LayerIds[r].</summary>
    public double[] Values { get; }
    /// <summary>Things a reader should know about how the file was interpreted (e.g. 1-based indices shifted).</summary>
    public IReadOnlyList<string> Notes { get; }

    public ScoreMap(string name, string file, int[] layerIds, int[] headIds, double[] values, IReadOnlyList<string>? notes = null)
    {
        if (values.Length != layerIds.Length * headIds.Length)
            throw new ArgumentException($"{values.Length} values for {layerIds.Length} layers x {headIds.Length} heads");
        Name = name;
        File = file;
        LayerIds = layerIds;
        HeadIds = headIds;
        Values = values;
        Notes = notes ?? [];
    }

    public int Layers => LayerIds.Length;
    public int Heads => HeadIds.Length;
    public string Shape => $"{Layers}x{Heads}";

    public double this[int row, int col] => Values[row * Heads + col];

    public int ValidCount => Values.Count(v => !double.IsNaN(v));

    /// <summary>
    /// Reads a map from a <c>.npy</c> ([layers, heads], any numeric dtype), a <c>.csv</c> with columns
    /// layer, head, accuracy (the reference's probe output; other columns ignored), or a folder holding
    /// scores.npy or scores.csv. Fails with a <see cref="UserError"/> naming the file when nothing usable is there.
    /// </summary>
    public static ScoreMap Load(string path, string? name = null)
    {
        string file = Resolve(path);
        name ??= DefaultName(path);
        var map = Path.GetExtension(file).ToLowerInvariant() switch
        {
            ".npy" => ReadNpy(file, name),
            ".csv" => ReadCsv(file, name),
            _ => throw new UserError($"{file}: not a score map (expected a .npy, a .csv, or a folder with {string.Join(" or ", FolderFiles)})"),
        };
        foreach (double v in map.Values)
            if (double.IsInfinity(v)) throw new UserError($"{file}: contains an infinite score; scores must be finite numbers or NaN");
        if (map.ValidCount == 0) throw new UserError($"{file}: every score is NaN; there is nothing to compare (was probing interrupted?)");
        return map;
    }

    /// <summary>"vicuna" for vicuna.npy; the folder's name for a folder or a file called scores.*.</summary>
    public static string DefaultName(string path)
    {
        string full = Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar);
        if (Directory.Exists(full)) return Path.GetFileName(full);
        string stem = Path.GetFileNameWithoutExtension(full);
        if (stem == "scores") return Path.GetFileName(Path.GetDirectoryName(full)) ?? stem;
        return stem;
    }

    private static string Resolve(string path)
    {
        if (Directory.Exists(path))
        {
            foreach (string candidate in FolderFiles)
            {
                string file = Path.Combine(path, candidate);
                if (!System.IO.File.Exists(file)) continue;
                // Scores without the manifest that is written last are from a run that stopped (or is still running).
                if (!OutputTarget.IsComplete(path))
                    throw new UserError($"{path}: has {candidate} but no {OutputTarget.CompletionMarker}, so the run that wrote it did not finish; rerun it into this folder, or give the score file itself");
                return file;
            }
            throw new UserError($"{path}: folder has no {string.Join(" or ", FolderFiles)} (give the score file itself, or the output folder of 'truthprobe score')");
        }
        if (!System.IO.File.Exists(path)) throw new UserError($"{path}: no such file or folder");
        return path;
    }

    private static ScoreMap ReadNpy(string file, string name)
    {
        var array = Npy.Read(file);
        if (array.Shape.Length != 2)
            throw new UserError($"{file}: expected a 2-D [layers, heads] array, got shape ({string.Join(", ", array.Shape)})");
        int layers = array.Shape[0], heads = array.Shape[1];
        if (layers == 0 || heads == 0) throw new UserError($"{file}: the map is empty (shape {layers}x{heads})");
        return new ScoreMap(name, file, Enumerable.Range(0, layers).ToArray(), Enumerable.Range(0, heads).ToArray(), array.Data);
    }

    // Column names the reference's correlation script accepts, compared case-insensitively.
    private static readonly string[] LayerColumns = ["layer", "layers", "l"];
    private static readonly string[] HeadColumns = ["head", "heads", "h", "head_idx"];
    private static readonly string[] ScoreColumns = ["accuracy", "acc", "accu", "acc_score"];

    /// <summary>Most heads a CSV map may span (the largest models have ~16,000).</summary>
    private const int MaxCells = 1 << 20;

    private static ScoreMap ReadCsv(string file, string name)
    {
        using var reader = new StreamReader(file);
        string? header = reader.ReadLine();
        if (header == null) throw new UserError($"{file}: empty file (expected a header line with layer,head,accuracy)");
        string[] columns = header.Split(',').Select(c => c.Trim().Trim('"').ToLowerInvariant()).ToArray();
        int layerCol = FindColumn(columns, LayerColumns), headCol = FindColumn(columns, HeadColumns), scoreCol = FindColumn(columns, ScoreColumns);
        var missing = new[] { (layerCol, "layer"), (headCol, "head"), (scoreCol, "accuracy") }.Where(c => c.Item1 < 0).Select(c => c.Item2).ToList();
        if (missing.Count > 0)
            throw new UserError($"{file}: line 1: missing column{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing)} (header is '{header.Trim()}'; expected layer,head,accuracy,...)");

        var rows = new List<(int layer, int head, double score, int line)>();
        int lineNo = 1;
        for (string? line = reader.ReadLine(); line != null; line = reader.ReadLine())
        {
            lineNo++;
            if (line.Trim().Length == 0) continue;
            string[] fields = line.Split(',');
            if (fields.Length != columns.Length)
                throw new UserError($"{file}: line {lineNo}: {fields.Length} fields, the header has {columns.Length}");
            int layer = ParseIndex(fields[layerCol], file, lineNo, "layer");
            int head = ParseIndex(fields[headCol], file, lineNo, "head");
            rows.Add((layer, head, ParseScore(fields[scoreCol], file, lineNo), lineNo));
        }
        if (rows.Count == 0) throw new UserError($"{file}: no data rows after the header");

        var notes = new List<string>();
        // The reference reads 1-based numbering (smallest index 1, no 0) as 0-based minus one; so do we.
        bool layersFromOne = rows.Min(r => r.layer) == 1;
        bool headsFromOne = rows.Min(r => r.head) == 1;
        if (layersFromOne) notes.Add("layers are numbered from 1 in the file; shifted to 0-based as the reference does");
        if (headsFromOne) notes.Add("heads are numbered from 1 in the file; shifted to 0-based as the reference does");

        int[] layerIds = rows.Select(r => r.layer - (layersFromOne ? 1 : 0)).Distinct().Order().ToArray();
        int[] headIds = rows.Select(r => r.head - (headsFromOne ? 1 : 0)).Distinct().Order().ToArray();
        // The table spans every listed layer x every listed head, so n rows can ask for n^2 cells (20,000 rows with
        // distinct layers and heads: 3 GB); no model has near MaxCells heads, so a table that large is a broken file.
        if ((long)layerIds.Length * headIds.Length > MaxCells)
            throw new UserError($"{file}: {layerIds.Length} distinct layers x {headIds.Length} distinct heads in {rows.Count} rows make a table of more than {MaxCells:N0} heads; expected one row per (layer, head) of one model");
        var values = new double[layerIds.Length * headIds.Length];
        Array.Fill(values, double.NaN);
        var seenAt = new Dictionary<(int, int), int>();
        foreach (var (layer, head, score, line) in rows)
        {
            int l = layer - (layersFromOne ? 1 : 0), h = head - (headsFromOne ? 1 : 0);
            if (seenAt.TryGetValue((l, h), out int first))
                throw new UserError($"{file}: line {line}: layer {layer}, head {head} already appeared on line {first}; each head must appear once");
            seenAt[(l, h)] = line;
            values[Array.BinarySearch(layerIds, l) * headIds.Length + Array.BinarySearch(headIds, h)] = score;
        }
        return new ScoreMap(name, file, layerIds, headIds, values, notes);
    }

    private static int FindColumn(string[] columns, string[] names)
    {
        foreach (string n in names)
        {
            int i = Array.IndexOf(columns, n);
            if (i >= 0) return i;
        }
        return -1;
    }

    private static int ParseIndex(string field, string file, int line, string column)
    {
        string s = field.Trim().Trim('"');
        // Indices written by pandas from a float column look like "3.0".
        if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && d >= 0 && d == Math.Floor(d) && d < int.MaxValue)
            return (int)d;
        throw new UserError($"{file}: line {line}: {column} must be a non-negative integer, got '{s}'");
    }

    private static double ParseScore(string field, string file, int line)
    {
        string s = field.Trim().Trim('"');
        // pandas writes a missing score as an empty field or "nan".
        if (s.Length == 0 || s.Equals("nan", StringComparison.OrdinalIgnoreCase)) return double.NaN;
        if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v)) return v;
        throw new UserError($"{file}: line {line}: accuracy must be a number (or empty/nan for a missing head), got '{s}'");
    }

    /// <summary>
    /// The map as a dense [layers, heads] table with layers 0..L-1 and heads 0..H-1 all present and no
    /// NaN, which is what gates need. <paramref name="purpose"/> goes into the error message.
    /// </summary>
    public double[] ToDense(string purpose)
    {
        bool complete = LayerIds.SequenceEqual(Enumerable.Range(0, Layers)) && HeadIds.SequenceEqual(Enumerable.Range(0, Heads));
        if (!complete)
            throw new UserError($"{File}: {purpose} needs every layer 0..{LayerIds.Max()} and head 0..{HeadIds.Max()}; the map lists only some of them");
        int nan = Array.FindIndex(Values, double.IsNaN);
        if (nan >= 0)
            throw new UserError($"{File}: {purpose} needs a score for every head; layer {LayerIds[nan / Heads]}, head {HeadIds[nan % Heads]} is NaN ({Values.Count(double.IsNaN)} NaN in all)");
        return Values;
    }
}
