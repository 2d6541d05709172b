using System.Text.Json;
using TruthProbe.Demo;
using TruthProbe.Probing;

namespace TruthProbe.Tests.Demo;

public partial class DemoTests
{
    [Fact]
    public void VlmImageRows_AreTheScenesPresenceRowsCutOnePerEpisode_WithNoLabelInTheirText_AndAreWhatTheMapWasScoredOn()
    {
        string rowsPath = Path.Combine(demo.Out, DemoVlm.Name, DemoRun.ProbingFile);
        var rows = ProbingData.Load(rowsPath, samples: null, skipBad: false).Rows;
        Assert.NotEmpty(rows);
        // The cut keeps the affirmative answer of every pair: true on the scene with the class, hallucinated on the other.
        Assert.All(rows, r => Assert.Equal("Yes", r.Answer));
        foreach (var text in rows.GroupBy(r => r.Question))
            Assert.Equal(text.Count(r => r.Label == 1), text.Count(r => r.Label == 0));

        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(demo.Out, DemoVlm.Name, "scores", "manifest.json")));
        var labels = manifest.RootElement.GetProperty("labels");
        Assert.Equal(rows.Count(r => r.Label == 1), labels.GetProperty("gold_1").GetInt32());
        Assert.Equal(rows.Count(r => r.Label == 0), labels.GetProperty("hallucinated_0").GetInt32());
        // One answer text for every row: the surface features are constant, so the baseline can only guess the training folds' majority.
        Assert.InRange(manifest.RootElement.GetProperty("surface_baseline").GetProperty("accuracy").GetDouble(), 0.0, 0.5);

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(demo.Out, "summary.json")));
        string detail = summary.RootElement.GetProperty("checks").EnumerateArray()
            .Single(c => c.GetProperty("name").GetString() == DemoVlm.InheritedCheck).GetProperty("detail").GetString()!;
        Assert.Contains("surface baseline of the image map", detail, StringComparison.Ordinal);
    }
}
