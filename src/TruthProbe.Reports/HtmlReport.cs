using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Text;
using TruthProbe.Common;
using TruthProbe.Statistics;

namespace TruthProbe.Reports;

/// <summary>
/// One self-contained HTML page (inline CSS, PNG figures as base64 data URIs, nothing fetched from
/// anywhere) built from a run's output files. Every number on the page is read from an output file
/// beside the report when the page is rendered, and carries where it came from (<c>data-file</c> plus
/// <c>data-key</c>, or <c>data-row</c>/<c>data-col</c> in a table), so a reader or a test can check each
/// one against its file.
/// <para>Text may cite numbers as <c>{{FILE#KEY}}</c> or <c>{{FILE#KEY|FORMAT}}</c>: for a .json file KEY is a
/// dotted path (<c>pairs.0.pearson</c>); for a .csv file it is <c>ROW/COLUMN</c>, ROW being the value of
/// the first column (or the row index, 0-based, when it is a number and no row has that name). FORMAT
/// <c>p</c> writes a p-value as <see cref="PValueText"/> does ("p &lt; 1e-4", never "0.0000"); table columns
/// named as p-values (<c>p</c>, <c>p_*</c>, <c>*_p</c>) get it too.</para>
/// </summary>
public sealed partial class HtmlReport
{
    private const string DefaultFormat = "0.0000", PValueFormat = "p";
    private readonly string _baseDir;
    private readonly string _title;
    private readonly List<Section> _sections = [];
    private readonly Dictionary<string, object> _fileCache = new(StringComparer.Ordinal);

    /// <param name="baseDir">the folder the report is written to; cited files are relative to it.</param>
    public HtmlReport(string baseDir, string title)
    {
        _baseDir = baseDir;
        _title = title;
    }

    public Section Add(string id, string heading)
    {
        if (!IdPattern().IsMatch(id)) throw new ArgumentException($"section id '{id}' must be lower-case letters, digits and dashes", nameof(id));
        if (_sections.Any(s => s.Id == id)) throw new ArgumentException($"two sections have the id '{id}'", nameof(id));
        var section = new Section(this, id, heading);
        _sections.Add(section);
        return section;
    }

    public IReadOnlyList<string> SectionIds => _sections.Select(s => s.Id).ToList();

    /// <summary>One part of the page: a heading and its blocks in order.</summary>
    public sealed class Section
    {
        private readonly HtmlReport _report;
        internal readonly StringBuilder Html = new();
        public string Id { get; }
        public string Heading { get; }

        internal Section(HtmlReport report, string id, string heading) => (_report, Id, Heading) = (report, id, heading);

        /// <summary>A paragraph; <c>{{FILE#KEY}}</c> cites a number (see <see cref="HtmlReport"/>).</summary>
        public Section Text(string text)
        {
            Html.Append("<p>").Append(_report.Cite(text)).Append("</p>\n");
            return this;
        }

        /// <summary>A paragraph set off as a finding: pass (green), fail (red) or a caution (amber).</summary>
        /// <param name="label">the word shown first (default PASS, FAIL or NOTE by outcome).</param>
        public Section Verdict(Outcome outcome, string text, string? label = null)
        {
            label ??= outcome switch { Outcome.Pass => "PASS", Outcome.Fail => "FAIL", _ => "NOTE" };
            string style = outcome switch { Outcome.Pass => "pass", Outcome.Fail => "fail", _ => "note" };
            Html.Append(CultureInfo.InvariantCulture, $"<p class=\"verdict {style}\"><b>{Escape(label)}</b> ").Append(_report.Cite(text)).Append("</p>\n");
            return this;
        }

        /// <summary>A list of term/meaning pairs (what each number means).</summary>
        public Section Definitions(IEnumerable<(string Term, string Meaning)> items)
        {
            Html.Append("<dl>\n");
            foreach (var (term, meaning) in items)
                Html.Append("<dt>").Append(Escape(term)).Append("</dt><dd>").Append(_report.Cite(meaning)).Append("</dd>\n");
            Html.Append("</dl>\n");
            return this;
        }

        /// <summary>A PNG from the run's outputs, embedded as a data URI, with its caption.</summary>
        public Section Figure(string pngPath, string caption)
        {
            string full = _report.Resolve(pngPath);
            byte[] png = File.ReadAllBytes(full);
            if (png.Length < 8 || png[0] != 0x89 || png[1] != (byte)'P' || png[2] != (byte)'N' || png[3] != (byte)'G')
                throw new ArgumentException($"{full} is not a PNG file", nameof(pngPath));
            Html.Append("<figure><img alt=\"").Append(Escape(_report.Resolved(caption))).Append("\" data-file=\"").Append(Escape(pngPath))
                .Append("\" src=\"data:image/png;base64,").Append(Convert.ToBase64String(png)).Append("\">")
                .Append("<figcaption>").Append(_report.Cite(caption)).Append(" <span class=\"file\">(").Append(Escape(pngPath)).Append(")</span></figcaption></figure>\n");
            return this;
        }

        /// <summary>Figures side by side (wrapping on a narrow page), for maps meant to be compared by eye.</summary>
        public Section FigureRow(IEnumerable<(string PngPath, string Caption)> figures)
        {
            Html.Append("<div class=\"figrow\">\n");
            foreach (var (png, caption) in figures) Figure(png, caption);
            Html.Append("</div>\n");
            return this;
        }

        /// <summary>
        /// A CSV output as a table: the columns named (default all), rows in file order (at most
        /// <paramref name="maxRows"/>, the rest counted). Numbers are shown in 4 decimals, whole ones as they are.
        /// </summary>
        public Section Table(string csvPath, string caption, IReadOnlyList<string>? columns = null, int maxRows = 200)
        {
            var csv = _report.Csv(csvPath);
            var shown = columns ?? csv.Header;
            foreach (string c in shown)
                if (!csv.Header.Contains(c)) throw new ArgumentException($"{csvPath} has no column '{c}' (columns: {string.Join(", ", csv.Header)})", nameof(columns));
            Html.Append("<div class=\"scroll\"><table data-file=\"").Append(Escape(csvPath)).Append("\"><caption>").Append(_report.Cite(caption))
                .Append(" <span class=\"file\">(").Append(Escape(csvPath)).Append(")</span></caption>\n<thead><tr>");
            foreach (string c in shown) Html.Append("<th>").Append(Escape(c)).Append("</th>");
            Html.Append("</tr></thead>\n<tbody>\n");
            int listed = Math.Min(maxRows, csv.Rows.Count);
            for (int r = 0; r < listed; r++)
            {
                var row = csv.Row(r);
                Html.Append("<tr>");
                foreach (string c in shown)
                {
                    string cell = row[c];
                    if (TryNumber(cell, out double v))
                        Html.Append(CultureInfo.InvariantCulture, $"<td class=\"n\" data-row=\"{r}\" data-col=\"{Escape(c)}\">")
                            .Append(Escape(Format(v, IsPValueColumn(c) ? PValueFormat : DefaultFormat))).Append("</td>");
                    else Html.Append("<td>").Append(Escape(cell)).Append("</td>");
                }
                Html.Append("</tr>\n");
            }
            Html.Append("</tbody></table></div>\n");
            if (csv.Rows.Count > listed)
                Html.Append(CultureInfo.InvariantCulture, $"<p class=\"file\">{csv.Rows.Count - listed} more rows in {Escape(csvPath)}.</p>\n");
            return this;
        }
    }

    public enum Outcome { Pass, Fail, Caution }

    /// <summary>The whole page.</summary>
    public string Render()
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>").Append(Escape(_title)).Append("</title>\n");
        sb.Append("<style>\n").Append(Css).Append("</style>\n</head>\n<body>\n<h1>").Append(Escape(_title)).Append("</h1>\n<nav><ol>\n");
        foreach (var s in _sections) sb.Append("<li><a href=\"#").Append(s.Id).Append("\">").Append(Escape(s.Heading)).Append("</a></li>\n");
        sb.Append("</ol></nav>\n");
        foreach (var s in _sections)
            sb.Append("<section id=\"").Append(s.Id).Append("\">\n<h2>").Append(Escape(s.Heading)).Append("</h2>\n").Append(s.Html).Append("</section>\n");
        sb.Append("</body>\n</html>\n");
        return sb.ToString();
    }

    /// <summary>Writes the page atomically to <paramref name="fileName"/> inside the report's folder.</summary>
    public string Write(string fileName = "report.html")
    {
        string path = Path.Combine(_baseDir, fileName);
        AtomicFile.WriteAllText(path, Render());
        return path;
    }

    // ---- numbers cited from files ----

    private string Cite(string text)
    {
        var sb = new StringBuilder();
        int last = 0;
        foreach (Match m in CitationPattern().Matches(text))
        {
            sb.Append(Escape(text[last..m.Index]));
            string file = m.Groups["file"].Value, key = m.Groups["key"].Value;
            string format = m.Groups["format"].Success ? m.Groups["format"].Value : DefaultFormat;
            double v = Lookup(file, key);
            sb.Append("<span class=\"n\" data-file=\"").Append(Escape(file)).Append("\" data-key=\"").Append(Escape(key)).Append("\">")
              .Append(Escape(Format(v, format))).Append("</span>");
            last = m.Index + m.Length;
        }
        sb.Append(Escape(text[last..]));
        return sb.ToString();
    }

    /// <summary>The text with each citation replaced by its number as shown (for attributes, which hold no markup).</summary>
    private string Resolved(string text) => CitationPattern().Replace(text, m =>
        Format(Lookup(m.Groups["file"].Value, m.Groups["key"].Value), m.Groups["format"].Success ? m.Groups["format"].Value : DefaultFormat));

    /// <summary>The number a citation names; a missing file, key or non-number is a bug in the caller, so it throws.</summary>
    public double Lookup(string file, string key)
    {
        if (file.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            var root = Json(file);
            JsonElement e = root;
            foreach (string part in key.Split('.'))
            {
                if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty(part, out var child)) e = child;
                else if (e.ValueKind == JsonValueKind.Array && int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int i) && i < e.GetArrayLength()) e = e[i];
                else throw new ArgumentException($"{file} has no '{key}' (stopped at '{part}')");
            }
            return e.ValueKind switch
            {
                JsonValueKind.Number => e.GetDouble(),
                JsonValueKind.Null => double.NaN,
                JsonValueKind.String when TryNumber(e.GetString()!, out double s) => s,
                _ => throw new ArgumentException($"{file}: '{key}' is {e.ValueKind}, not a number"),
            };
        }
        var csv = Csv(file);
        int slash = key.LastIndexOf('/');
        if (slash < 0) throw new ArgumentException($"a CSV citation needs ROW/COLUMN, got '{key}' for {file}");
        string rowKey = key[..slash], column = key[(slash + 1)..];
        int row = csv.Rows.FindIndex(r => r[0] == rowKey);
        if (row < 0 && !int.TryParse(rowKey, NumberStyles.None, CultureInfo.InvariantCulture, out row))
            throw new ArgumentException($"{file} has no row '{rowKey}'");
        if (row >= csv.Rows.Count) throw new ArgumentException($"{file} has {csv.Rows.Count} rows, not {row + 1}");
        int col = csv.Header.IndexOf(column);
        if (col < 0) throw new ArgumentException($"{file} has no column '{column}'");
        return TryNumber(csv.Rows[row][col], out double v) ? v : throw new ArgumentException($"{file}: row '{rowKey}', column '{column}' is '{csv.Rows[row][col]}', not a number");
    }

    private string Resolve(string relative)
    {
        string full = Path.GetFullPath(Path.Combine(_baseDir, relative));
        if (!File.Exists(full)) throw new FileNotFoundException($"the report cites {relative}, but {full} does not exist", full);
        return full;
    }

    private JsonElement Json(string file)
    {
        if (!_fileCache.TryGetValue(file, out var cached))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Resolve(file)), new JsonDocumentOptions { AllowTrailingCommas = false });
            _fileCache[file] = cached = doc.RootElement.Clone();
        }
        return (JsonElement)cached;
    }

    private CsvTable Csv(string file)
    {
        if (!_fileCache.TryGetValue(file, out var cached)) _fileCache[file] = cached = CsvTable.Read(Resolve(file));
        return (CsvTable)cached;
    }

    /// <summary>A CSV file as written by this project: a header line, then rows; fields may be quoted.</summary>
    private sealed class CsvTable(List<string> header, List<List<string>> rows)
    {
        public List<string> Header { get; } = header;
        public List<List<string>> Rows { get; } = rows;

        public IReadOnlyDictionary<string, string> Row(int r)
        {
            var d = new Dictionary<string, string>(StringComparer.Ordinal);
            for (int c = 0; c < Header.Count; c++) d[Header[c]] = c < Rows[r].Count ? Rows[r][c] : "";
            return d;
        }

        public static CsvTable Read(string path)
        {
            var lines = File.ReadAllLines(path).Where(l => l.Length > 0).Select(Split).ToList();
            if (lines.Count == 0) throw new ArgumentException($"{path} is empty");
            return new CsvTable(lines[0], lines.Skip(1).ToList());
        }

        private static List<string> Split(string line)
        {
            var fields = new List<string>();
            var field = new StringBuilder();
            bool quoted = false;
            for (int i = 0; i < line.Length; i++)
            {
                char c = line[i];
                if (quoted)
                {
                    if (c == '"' && i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; }
                    else if (c == '"') quoted = false;
                    else field.Append(c);
                }
                else if (c == '"') quoted = true;
                else if (c == ',') { fields.Add(field.ToString()); field.Clear(); }
                else field.Append(c);
            }
            fields.Add(field.ToString());
            return fields;
        }
    }

    private static bool TryNumber(string s, out double v)
    {
        if (s is "nan" or "NaN") { v = double.NaN; return true; }
        return double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out v);
    }

    private static bool IsPValueColumn(string column) =>
        column == "p" || column.StartsWith("p_", StringComparison.Ordinal) || column.EndsWith("_p", StringComparison.Ordinal);

    /// <summary>p-values as <see cref="PValueText"/> writes them; whole numbers as they are; others in the format; NaN as "n/a".</summary>
    private static string Format(double v, string format) =>
        format == PValueFormat ? PValueText.Format(v)
        : double.IsNaN(v) ? "n/a"
        : v == Math.Round(v) && Math.Abs(v) < 1e15 ? v.ToString("0", CultureInfo.InvariantCulture)
        : v.ToString(format, CultureInfo.InvariantCulture);

    private static string Escape(string s) => WebUtility.HtmlEncode(s);

    [GeneratedRegex(@"\{\{(?<file>[^#{}]+)#(?<key>[^|{}]+)(\|(?<format>[^{}]+))?\}\}")]
    private static partial Regex CitationPattern();

    [GeneratedRegex("^[a-z0-9-]+$")]
    private static partial Regex IdPattern();

    private const string Css = """
        body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
        h1 { font-size: 1.7em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
        nav ol { columns: 2; }
        figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
        figcaption, .file { font-size: .85em; color: #555; }
        table { border-collapse: collapse; margin: 1em 0; font-size: .9em; }
        caption { text-align: left; font-size: .9em; color: #333; padding-bottom: .3em; }
        th, td { border: 1px solid #ccc; padding: .2em .6em; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
        th { background: #f3f3f3; }
        .verdict { padding: .4em .7em; border-left: 5px solid; }
        .pass { border-color: #2a8a2a; background: #eef8ee; } .fail { border-color: #b22; background: #fbeeee; } .note { border-color: #c90; background: #fdf6e6; }
        dt { font-weight: bold; margin-top: .5em; } dd { margin-left: 1.5em; }
        span.n { font-variant-numeric: tabular-nums; }
        div.scroll { overflow-x: auto; max-width: 100%; }
        div.figrow { display: flex; flex-wrap: wrap; gap: .5em; } div.figrow figure { flex: 1 1 30%; min-width: 260px; margin: .3em 0; }

        """;
}
