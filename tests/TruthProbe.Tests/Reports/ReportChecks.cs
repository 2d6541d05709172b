using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace TruthProbe.Tests.Reports;

/// <summary>
/// Checks of a report.html that read the page and its cited files on their own (regular expressions over
/// the page, a plain CSV split, System.Text.Json), so they do not trust the report's own lookups.
/// </summary>
public static partial class ReportChecks
{
    /// <summary>Fails on anything the page would fetch: links, scripts, stylesheets, non-data images, URLs.</summary>
    public static void AssertSelfContained(string html)
    {
        foreach (Match m in SrcPattern().Matches(html))
            Assert.StartsWith("data:image/png;base64,", m.Groups[1].Value);
        // Base64 payloads may spell anything ("http" included); what is left must name no resource.
        html = SrcPattern().Replace(html, "src=\"\"");
        Assert.DoesNotContain("http", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<link", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<iframe", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("@import", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("href=\"/", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("//", html.Replace("<!DOCTYPE html>", ""), StringComparison.Ordinal);
        foreach (Match m in UrlPattern().Matches(html))
            Assert.StartsWith("data:", m.Groups[1].Value.Trim('\'', '"', ' '));
    }

    /// <summary>
    /// Every cited number (inline spans and table cells) equals the value in its file, to the precision
    /// shown; returns how many were checked.
    /// </summary>
    public static int AssertNumbersMatchFiles(string html, string baseDir)
    {
        int checkedCount = 0;
        foreach (Match m in SpanPattern().Matches(html))
        {
            string file = Decode(m.Groups["file"].Value), key = Decode(m.Groups["key"].Value), shown = Decode(m.Groups["value"].Value);
            AssertEqualAsShown(FromFile(baseDir, file, key), shown, $"{file}#{key}");
            checkedCount++;
        }
        foreach (Match table in TablePattern().Matches(html))
        {
            string file = Decode(table.Groups["file"].Value);
            var (header, rows) = ReadCsv(Path.Combine(baseDir, file));
            foreach (Match cell in CellPattern().Matches(table.Groups["body"].Value))
            {
                int row = int.Parse(cell.Groups["row"].Value, CultureInfo.InvariantCulture);
                string col = Decode(cell.Groups["col"].Value);
                string raw = rows[row][header.IndexOf(col)];
                AssertEqualAsShown(ParseNumber(raw), Decode(cell.Groups["value"].Value), $"{file} row {row} column {col}");
                checkedCount++;
            }
        }
        return checkedCount;
    }

    /// <summary>The embedded images decode to exactly the bytes of the PNG files they cite.</summary>
    public static int AssertImagesMatchFiles(string html, string baseDir)
    {
        int n = 0;
        foreach (Match m in ImagePattern().Matches(html))
        {
            byte[] embedded = Convert.FromBase64String(m.Groups["data"].Value);
            Assert.Equal(File.ReadAllBytes(Path.Combine(baseDir, Decode(m.Groups["file"].Value))), embedded);
            n++;
        }
        return n;
    }

    public static IReadOnlyList<string> SectionIds(string html) =>
        SectionPattern().Matches(html).Select(m => m.Groups[1].Value).ToList();

    private static void AssertEqualAsShown(double expected, string shown, string where)
    {
        if (shown == "n/a")
        {
            Assert.True(double.IsNaN(expected), $"{where}: page shows n/a, file has {expected}");
            return;
        }
        if (shown == "p < 1e-4")
        {
            Assert.True(expected < 1e-4, $"{where}: page shows {shown}, file has {expected}");
            return;
        }
        if (shown == "p = nan")
        {
            Assert.True(double.IsNaN(expected), $"{where}: page shows {shown}, file has {expected}");
            return;
        }
        bool pValue = shown.StartsWith("p = ", StringComparison.Ordinal);
        if (pValue) shown = shown["p = ".Length..];
        double value = double.Parse(shown, NumberStyles.Float, CultureInfo.InvariantCulture);
        int dot = shown.IndexOf('.');
        double halfUnit = dot < 0 ? 0 : 0.5 * Math.Pow(10, -(shown.Length - dot - 1));
        // p-values carry two significant digits, so 0.9985 shows as "1" with no decimals at all.
        if (pValue && value > 0) halfUnit = Math.Max(halfUnit, 0.5 * Math.Pow(10, Math.Floor(Math.Log10(value)) - 1));
        Assert.True(Math.Abs(value - expected) <= halfUnit + 1e-12, $"{where}: page shows {shown}, file has {expected.ToString("R", CultureInfo.InvariantCulture)}");
    }

    private static double FromFile(string baseDir, string file, string key)
    {
        string path = Path.Combine(baseDir, file);
        if (file.EndsWith(".json", StringComparison.Ordinal))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var e = doc.RootElement;
            foreach (string part in key.Split('.'))
                e = e.ValueKind == JsonValueKind.Array ? e[int.Parse(part, CultureInfo.InvariantCulture)] : e.GetProperty(part);
            return e.ValueKind == JsonValueKind.Null ? double.NaN : e.GetDouble();
        }
        var (header, rows) = ReadCsv(path);
        int slash = key.LastIndexOf('/');
        string rowKey = key[..slash], col = key[(slash + 1)..];
        var row = rows.FirstOrDefault(r => r[0] == rowKey) ?? rows[int.Parse(rowKey, CultureInfo.InvariantCulture)];
        return ParseNumber(row[header.IndexOf(col)]);
    }

    /// <summary>Plain split: the files the tests cite have no quoted commas.</summary>
    public static (List<string> Header, List<string[]> Rows) ReadCsv(string path)
    {
        var lines = File.ReadAllLines(path).Where(l => l.Length > 0).ToList();
        return (lines[0].Split(',').ToList(), lines.Skip(1).Select(l => l.Split(',')).ToList());
    }

    private static double ParseNumber(string s) =>
        s.Equals("nan", StringComparison.OrdinalIgnoreCase) ? double.NaN : double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture);

    private static string Decode(string s) => WebUtility.HtmlDecode(s);

    [GeneratedRegex("""src\s*=\s*"([^"]*)""", RegexOptions.IgnoreCase)]
    private static partial Regex SrcPattern();

    [GeneratedRegex(@"url\(([^)]*)\)", RegexOptions.IgnoreCase)]
    private static partial Regex UrlPattern();

    [GeneratedRegex("""<span class="n" data-file="(?<file>[^"]*)" data-key="(?<key>[^"]*)">(?<value>[^<]*)</span>""")]
    private static partial Regex SpanPattern();

    [GeneratedRegex("""<table data-file="(?<file>[^"]*)">(?<body>.*?)</table>""", RegexOptions.Singleline)]
    private static partial Regex TablePattern();

    [GeneratedRegex("""<td class="n" data-row="(?<row>\d+)" data-col="(?<col>[^"]*)">(?<value>[^<]*)</td>""")]
    private static partial Regex CellPattern();

    [GeneratedRegex("""<img alt="[^"]*" data-file="(?<file>[^"]*)" src="data:image/png;base64,(?<data>[^"]*)">""")]
    private static partial Regex ImagePattern();

    [GeneratedRegex("""<section id="([^"]+)">""")]
    private static partial Regex SectionPattern();
}
