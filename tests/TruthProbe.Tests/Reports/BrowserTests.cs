using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Reports;

/// <summary>The browser check on pages made to fail it, so a passing report check means something.</summary>
public class BrowserTests
{
    private const string WideTable = "<table><tr>" + "<td>0.123456789</td>" + "</tr></table>";

    private static string Page(string body) =>
        $"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><style>td {{ min-width: 2000px; }} div.scroll {{ overflow-x: auto; }}</style></head><body>{body}</body></html>\n";

    [SkippableFact]
    public void AWideTableOutsideAScrollBox_IsCutOff_InsideOneItIsNot_AndABrokenImageIsSeen()
    {
        string browser = Browser.Require();
        using var tmp = new TempDir();
        File.WriteAllText(tmp.File("bad.html"), Page(WideTable + "<img data-file=\"broken.png\" src=\"data:image/png;base64,AAAA\" width=\"10\">"));
        var bad = Browser.Measure(browser, tmp.File("bad.html"), 1400, tmp.File("bad.png"));
        Assert.True(bad.ScrollWidth > bad.Viewport);
        Assert.Contains(bad.CutOff, c => c.StartsWith("table ", StringComparison.Ordinal));
        Assert.Equal(0, Assert.Single(bad.Images).NaturalWidth);

        File.WriteAllText(tmp.File("good.html"), Page("<div class=\"scroll\">" + WideTable + "</div>"));
        var good = Browser.Measure(browser, tmp.File("good.html"), 1400, tmp.File("good.png"));
        Assert.Empty(good.CutOff);
        Assert.True(good.ScrollWidth <= good.Viewport, $"{good.ScrollWidth} px page in a {good.Viewport} px window");
    }
}
