using System.Text.RegularExpressions;
using TruthProbe.Reports;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Reports;

public class HtmlReportTests
{
    /// <summary>A run folder with a CSV (one quoted name, one NaN), a JSON summary and a PNG heat map.</summary>
    private static void WriteOutputs(string dir)
    {
        Directory.CreateDirectory(Path.Combine(dir, "compare"));
        File.WriteAllText(Path.Combine(dir, "compare", "pearson.csv"),
            "name,base,chat,unrelated\nbase,1,0.98123,0.0412\nchat,0.98123,1,nan\nunrelated,0.0412,nan,1\n");
        File.WriteAllText(Path.Combine(dir, "summary.json"),
            """{"seed": 7, "correlation": {"within": 0.98123, "cross": 0.0412}, "models": [{"name": "chat", "drift": 0.0321}], "missing": null}""");
        Plots.Writer.Heatmap(Path.Combine(dir, "heat.png"), new double[,] { { 0.5, 0.9 }, { 0.6, 0.7 } }, "scores", "head", "layer");
    }

    private static HtmlReport Build(string dir)
    {
        var report = new HtmlReport(dir, "Demo <report> & family");
        report.Add("summary", "Summary")
            .Text("Seed {{summary.json#seed}}; within-family r {{summary.json#correlation.within}} vs cross-family {{summary.json#correlation.cross|0.00}}.")
            .Verdict(HtmlReport.Outcome.Pass, "within > cross ({{compare/pearson.csv#base/chat}} > {{compare/pearson.csv#base/unrelated}})")
            .Verdict(HtmlReport.Outcome.Fail, "gating did not help chat")
            .Verdict(HtmlReport.Outcome.Caution, "drift of chat {{summary.json#models.0.drift}}; nothing is {{summary.json#missing}}");
        report.Add("maps", "Truth-Score maps").Figure("heat.png", "Truth Scores of base (r {{compare/pearson.csv#chat/base}})");
        report.Add("matrix", "Correlation matrix").Table("compare/pearson.csv", "Pearson r between maps");
        report.Add("meaning", "What the numbers mean").Definitions([("Pearson r", "linear correlation of two maps, e.g. {{compare/pearson.csv#1/unrelated}}")]);
        return report;
    }

    [Fact]
    public void Report_IsOneSelfContainedPageWithEverySection()
    {
        using var tmp = new TempDir();
        WriteOutputs(tmp.Path);
        string html = File.ReadAllText(Build(tmp.Path).Write());

        ReportChecks.AssertSelfContained(html);
        Assert.Equal(["summary", "maps", "matrix", "meaning"], ReportChecks.SectionIds(html));
        Assert.Equal(1, ReportChecks.AssertImagesMatchFiles(html, tmp.Path));
        Assert.Contains("<title>Demo &lt;report&gt; &amp; family</title>", html);
        Assert.Contains("<style>", html);
    }

    [Fact]
    public void PValues_CitedWithFormatP_OrInPValueColumns_AreNeverShownAsZero()
    {
        using var tmp = new TempDir();
        File.WriteAllText(Path.Combine(tmp.Path, "eval.csv"), "model,accuracy,mcnemar_p,p_chance\nbase,0.71,0.0000012,0.0023\nchat,0.5,0.5,nan\n");
        var report = new HtmlReport(tmp.Path, "p");
        report.Add("gating", "Gating").Text("McNemar {{eval.csv#base/mcnemar_p|p}}, then {{eval.csv#chat/mcnemar_p|p}}").Table("eval.csv", "eval");
        string html = report.Render();

        Assert.Equal(8, ReportChecks.AssertNumbersMatchFiles(html, tmp.Path));
        Assert.DoesNotContain(">0.0000<", html);
        string[] shown =
        [
            ">p &lt; 1e-4</span>, then <span class=\"n\" data-file=\"eval.csv\" data-key=\"chat/mcnemar_p\">p = 0.5</span>",
            "data-col=\"mcnemar_p\">p &lt; 1e-4</td>", "data-col=\"p_chance\">p = 0.0023</td>", "data-col=\"p_chance\">p = nan</td>",
            "data-col=\"accuracy\">0.7100</td>", // other columns keep the default format
        ];
        Assert.All(shown, s => Assert.Contains(s, html));
    }

    [Fact]
    public void CitedNumbers_AreTheFilesNumbersAtTheirShownPrecision()
    {
        using var tmp = new TempDir();
        WriteOutputs(tmp.Path);
        string html = Build(tmp.Path).Render();

        // 9 inline citations + 9 table cells (the names column is text).
        Assert.Equal(18, ReportChecks.AssertNumbersMatchFiles(html, tmp.Path));
        // Shown as written in the files above, rounded by hand: whole numbers plain, 4 decimals by default, NaN/null as n/a.
        Assert.Contains(">7</span>", html);
        Assert.Contains(">0.9812</span>", html);
        Assert.Contains(">0.04</span>", html);
        Assert.Contains(">0.0321</span>", html);
        Assert.Equal(2, Regex.Matches(html, ">n/a</td>").Count);
        Assert.Contains(">n/a</span>", html);
        Assert.Contains("<b>PASS</b>", html);
        Assert.Contains("<b>FAIL</b>", html);
        Assert.Contains("<b>NOTE</b>", html);
        // Attributes hold no markup: the figure's alt text carries the cited number as shown, not the citation.
        Assert.Contains("alt=\"Truth Scores of base (r 0.9812)\"", html);
        Assert.DoesNotContain("{{", html);
    }

    [Fact]
    public void Table_ShowsTheNamedColumnsAndCountsTheRowsLeftOut()
    {
        using var tmp = new TempDir();
        WriteOutputs(tmp.Path);
        var report = new HtmlReport(tmp.Path, "t");
        report.Add("t", "T").Table("compare/pearson.csv", "first rows", columns: ["name", "unrelated"], maxRows: 2);
        string html = report.Render();
        Assert.Equal(2, ReportChecks.AssertNumbersMatchFiles(html, tmp.Path));
        Assert.Contains("<th>name</th><th>unrelated</th></tr>", html);
        Assert.Contains("<td>chat</td><td>n/a</td>", html.Replace("<td class=\"n\" data-row=\"1\" data-col=\"unrelated\">", "<td>"));
        Assert.Contains("1 more rows in compare/pearson.csv.", html);
        Assert.DoesNotContain("<td>unrelated</td>", html);
        Assert.Throws<ArgumentException>(() => report.Add("u", "U").Table("compare/pearson.csv", "x", columns: ["nobody"]));
    }

    [Fact]
    public void Checker_CatchesANumberThatDiffersFromItsFile()
    {
        using var tmp = new TempDir();
        WriteOutputs(tmp.Path);
        string html = Build(tmp.Path).Render().Replace(">0.9812</span>", ">0.9813</span>");
        Assert.ThrowsAny<Exception>(() => ReportChecks.AssertNumbersMatchFiles(html, tmp.Path));
    }

    [Fact]
    public void Checker_CatchesAnExternalResource()
    {
        Assert.ThrowsAny<Exception>(() => ReportChecks.AssertSelfContained("<img src=\"plot.png\">"));
        Assert.ThrowsAny<Exception>(() => ReportChecks.AssertSelfContained("<style>a { background: url(x.png) }</style>"));
    }

    [Fact]
    public void Citation_OfAMissingKeyOrFile_Throws()
    {
        using var tmp = new TempDir();
        WriteOutputs(tmp.Path);
        var report = new HtmlReport(tmp.Path, "t");
        Assert.Throws<ArgumentException>(() => report.Add("a", "A").Text("{{summary.json#correlation.nowhere}}"));
        Assert.Throws<ArgumentException>(() => report.Add("b", "B").Text("{{compare/pearson.csv#base/nobody}}"));
        Assert.Throws<FileNotFoundException>(() => report.Add("c", "C").Figure("absent.png", "x"));
        Assert.Throws<ArgumentException>(() => report.Add("c", "again"));
    }
}
