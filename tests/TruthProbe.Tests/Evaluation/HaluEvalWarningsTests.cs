using System.Text.Json;
using TruthProbe.Evaluation;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Evaluation;

/// <summary>A run whose numbers mislead says so: replies that do not parse (with their share) and a lambda sweep
/// whose candidates tie, printed and in metrics.json.</summary>
public class HaluEvalWarningsTests
{
    private static HaluEvalJudged Judged(int row, string reply, bool parseable, bool saysYes = false) =>
        new(new HaluEvalItem(new HaluEvalRow(row, row + 1, "k", "q", "right", "wrong"), 1, row % 2 == 0), reply, new HaluEvalParsed(saysYes, parseable));

    private static HaluEvalReport Report(IReadOnlyList<HaluEvalJudged> vanilla, IReadOnlyList<HaluEvalJudged>? gated, HaluEvalSweepResult? sweep) => new()
    {
        Run = new Dictionary<string, object?> { ["seeds"] = new[] { 1 } },
        Vanilla = vanilla, Gated = gated, Sweep = sweep,
        Gating = gated == null ? null : new Dictionary<string, string> { ["gate_site"] = "head" },
    };

    [Fact]
    public void NoReplyParses_IsAWarningWithTheShare_PerCondition_AndInMetricsJson()
    {
        var vanilla = Enumerable.Range(0, 7).Select(i => Judged(i, "Once upon", parseable: false)).ToList();
        var gated = Enumerable.Range(0, 7).Select(i => Judged(i, i < 2 ? "Once" : "Yes.", parseable: i >= 2, saysYes: true)).ToList();
        var report = Report(vanilla, gated, null);
        Assert.Equal(
            ["vanilla: 7 of 7 replies (100.0%) start with neither yes nor no and count as no; the metrics then measure the parse rule, not the model",
             "gated: 2 of 7 replies (28.6%) start with neither yes nor no and count as no; the metrics then measure the parse rule, not the model"],
            report.Warnings);

        using var tmp = new TempDir();
        report.Write(tmp.Path);
        using var metrics = JsonDocument.Parse(File.ReadAllText(tmp.File(HaluEvalReport.MetricsFile)));
        Assert.Equal(1.0, metrics.RootElement.GetProperty("unparseable_share").GetProperty("vanilla").GetDouble());
        Assert.Equal(2.0 / 7, metrics.RootElement.GetProperty("unparseable_share").GetProperty("gated").GetDouble(), 12);
        Assert.Equal(2, metrics.RootElement.GetProperty("warnings").GetArrayLength());
    }

    [Fact]
    public void EveryReplyParses_AndTheSweepHasOneBest_NoWarning()
    {
        var vanilla = Enumerable.Range(0, 4).Select(i => Judged(i, "No", parseable: true)).ToList();
        var sweep = new HaluEvalSweepResult(42, [9], [(0.0, 10.0), (2.0, 40.0), (4.0, 40.0 - 1e-9)], 2.0);
        Assert.Empty(Report(vanilla, vanilla, sweep).Warnings);
    }

    [Fact]
    public void SweepCandidatesThatTie_AreNamed_WithTheChoiceCalledArbitrary()
    {
        var vanilla = Enumerable.Range(0, 4).Select(i => Judged(i, "No", parseable: true)).ToList();
        var sweep = new HaluEvalSweepResult(42, [9], [(0.0, 0.0), (2.0, 0.0), (4.5, 0.0)], 0.0);
        Assert.Equal(["lambda sweep: candidates 0, 2, 4.5 tie at tuning F1 0.00; lambda 0 is only the smallest of them, the tuning rows did not choose it"],
            Report(vanilla, vanilla, sweep).Warnings);
    }
}
