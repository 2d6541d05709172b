using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace TruthProbe.Tests.Reports;

/// <summary>
/// A report looked at in a real browser: headless Chromium (Debian's <c>chromium</c> package; .ci/run installs it
/// where apt is usable) lays the page out at a given width. The report itself carries no script, so a copy of
/// it gets one that measures the laid-out page after load and writes the result into the DOM, which
/// <c>--dump-dom</c> prints.
/// </summary>
public static partial class Browser
{
    /// <param name="Window">the window's width; <paramref name="Viewport"/> is what the page gets of it (less a vertical scrollbar).</param>
    public sealed record Layout(int Window, int Viewport, int ScrollWidth, string[] CutOff, Image[] Images);
    public sealed record Image(string File, int NaturalWidth, double ShownWidth);

    private static readonly string[] Names = ["chromium", "chromium-browser", "google-chrome"];

    /// <summary>The browser on the PATH, or a skip that says how to get one.</summary>
    public static string Require()
    {
        string? found = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .SelectMany(dir => Names.Select(n => Path.Combine(dir, n))).FirstOrDefault(File.Exists);
        Skip.If(found == null, "no headless Chromium on the PATH (apt-get install chromium): the report's browser check needs one");
        return found!;
    }

    // Elements inside a horizontally scrolling box may reach past the page; anything else past the viewport is cut off.
    private const string Probe = """
        <script>
        window.addEventListener('load', () => {
          const vw = document.documentElement.clientWidth, cut = [];
          for (const el of document.body.querySelectorAll('*')) {
            const r = el.getBoundingClientRect();
            if (r.width === 0 || el.parentElement.closest('div.scroll')) continue;
            if (r.right > vw + 0.5 || r.left < -0.5) cut.push(`${el.tagName.toLowerCase()} ${Math.round(r.left)}..${Math.round(r.right)}: ${el.textContent.slice(0, 40)}`);
          }
          const images = [...document.images].map(i => ({ File: i.getAttribute('data-file'), NaturalWidth: i.naturalWidth, ShownWidth: i.getBoundingClientRect().width }));
          const out = document.createElement('pre');
          out.id = 'browser-layout';
          out.textContent = JSON.stringify({ Window: window.innerWidth, Viewport: vw, ScrollWidth: document.documentElement.scrollWidth, CutOff: cut, Images: images });
          document.body.appendChild(out);
        });
        </script>
        """;

    /// <summary>Lays <paramref name="htmlPath"/> out at <paramref name="width"/> px and saves a screenshot beside the copy it measures.</summary>
    public static Layout Measure(string browser, string htmlPath, int width, string screenshot)
    {
        string probed = Path.Combine(Path.GetDirectoryName(screenshot)!, "browser-probe.html");
        File.WriteAllText(probed, File.ReadAllText(htmlPath).Replace("</body>", Probe + "</body>"));
        string dom = Run(browser, $"--window-size={width},1000", "--virtual-time-budget=5000", "--dump-dom", new Uri(probed).AbsoluteUri);
        Run(browser, $"--window-size={width},1000", "--hide-scrollbars", $"--screenshot={screenshot}", new Uri(htmlPath).AbsoluteUri);
        var match = LayoutPattern().Match(dom);
        if (!match.Success) throw new Xunit.Sdk.XunitException($"the browser printed no layout for {htmlPath}; DOM starts: {dom[..Math.Min(300, dom.Length)]}");
        return JsonSerializer.Deserialize<Layout>(System.Net.WebUtility.HtmlDecode(match.Groups[1].Value))!;
    }

    private static string Run(string browser, params string[] args)
    {
        var start = new ProcessStartInfo(browser) { RedirectStandardOutput = true, RedirectStandardError = true };
        // As root (CI containers) Chromium needs --no-sandbox; no GPU, no first-run or crash dialogs.
        foreach (string a in (string[])["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage", .. args]) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(60_000)) { p.Kill(entireProcessTree: true); throw new TimeoutException($"{browser} did not finish in 60 s"); }
        if (p.ExitCode != 0) throw new Xunit.Sdk.XunitException($"{browser} exited {p.ExitCode}: {stderr.Result}");
        return stdout;
    }

    [GeneratedRegex("""<pre id="browser-layout">([^<]*)</pre>""")]
    private static partial Regex LayoutPattern();
}
