using TruthProbe.Demo;

namespace TruthProbe.Tests.Demo;

public partial class DemoTests
{
    /// <summary>
    /// The fixture's run computed the analysis and stored it; a rerun into the same folder, with every model's weights
    /// moved away for the while, can only succeed by reading the cache, and must write the computed run's bytes.
    /// </summary>
    [Fact]
    public void Analysis_IsReadFromTheCache_ByteIdentical_WithoutTheModels_AndComputedAgainWhenThePlanChanges()
    {
        string computed = demo.TempPath("analysis-computed");
        var files = Directory.GetFiles(demo.Out, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(demo.Out, f)).Order(StringComparer.Ordinal).ToList();
        foreach (string f in (string[])["summary.json", "report.html", Path.Combine("scores", "base", "scores.npy"), Path.Combine("scores", "base", "scores.csv"), Path.Combine("compare", "pairs.csv")])
            Assert.Contains(f, files);
        Directory.Move(demo.Out, computed);
        var weights = Directory.GetFiles(demo.Family.Dir, "model.safetensors", SearchOption.AllDirectories);
        Assert.True(weights.Length > demo.Family.Members.Count, $"{weights.Length} weight files");
        foreach (string f in weights) File.Move(f, f + ".away");
        try
        {
            var again = DemoRun.Execute(demo.Family, TinyDemo.Plan, TinyDemo.Seed, demo.Out);
            Assert.True(again.FromCache);
            Assert.Equal(files, Directory.GetFiles(demo.Out, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(demo.Out, f)).Order(StringComparer.Ordinal));
            foreach (string f in files) Assert.True(File.ReadAllBytes(Path.Combine(computed, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(demo.Out, f))), f);
            Assert.Equal(demo.Printed, again.TextSummary());
            // Anything else asks for the models again: a changed plan computes, and finds no weights.
            var e = Assert.Throws<TruthProbe.Common.UserError>(() => DemoRun.Execute(demo.Family, TinyDemo.Plan with { BootstrapRows = TinyDemo.Plan.BootstrapRows + 1 }, TinyDemo.Seed, demo.TempPath("analysis-plan")));
            Assert.Contains("no model.safetensors", e.Message);
        }
        finally
        {
            foreach (string f in weights) File.Move(f + ".away", f);
        }
        string Key(DemoPlan plan, int seed, string outDir, string? code = null) => DemoAnalysisCache.For(demo.Family, plan, seed, outDir, code).Key;
        string key = Key(TinyDemo.Plan, TinyDemo.Seed, demo.Out);
        Assert.Equal(key, Key(TinyDemo.Plan, TinyDemo.Seed, demo.Out, DemoAnalysisCache.CodeIdentity));
        Assert.NotEqual(key, Key(TinyDemo.Plan, TinyDemo.Seed, demo.Out, "another build"));
        Assert.NotEqual(key, Key(TinyDemo.Plan, TinyDemo.Seed + 1, demo.Out));
        Assert.NotEqual(key, Key(TinyDemo.Plan with { EvalItems = TinyDemo.Plan.EvalItems + 1 }, TinyDemo.Seed, demo.Out));
        Assert.NotEqual(key, Key(TinyDemo.Plan, TinyDemo.Seed, computed));
    }
}
