using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Xunit.Abstractions;
using TruthProbe.Common;
using TruthProbe.Lineage;
using TruthProbe.Numerics;
using TruthProbe.Probing;
using TruthProbe.Statistics;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Lineage;

public class RowBootstrapTests(ITestOutputHelper output)
{
    // 4 layers x 4 heads like the demo's maps, fewer rows and dims to keep the tests fast; strengths rise with depth and vary within layers.
    private const int Layers = 4, Heads = 4, Dim = 8, Rows = 160;
    private static readonly double[] Strength = Enumerable.Range(0, Layers * Heads).Select(i => 0.1 * (i / Heads) + 0.15 * ((i * 7) % 5)).ToArray();

    /// <summary>A 'score'-like folder: the activations, then 'probe' on them writing the map and manifest beside them.</summary>
    private static string ScoreFolder(TempDir tmp, string name, ActivationSet set)
    {
        string dir = tmp.File(name);
        Directory.CreateDirectory(dir);
        set.Save(Path.Combine(dir, "activations.safetensors"));
        var r = CliRunner.Run("probe", "--activations", Path.Combine(dir, "activations.safetensors"), "--out", dir);
        Assert.True(r.ExitCode == 0, r.Stderr);
        return dir;
    }

    /// <summary>The same rows with every activation moved by sigma * N(0, 1) noise: a child that inherits every head.</summary>
    private static ActivationSet Child(ActivationSet parent, double sigma, int seed, long rowIdOffset = 0)
    {
        var rng = new SeededRandom((ulong)seed);
        var values = parent.Values.Select(v => (float)(v + sigma * rng.NextGaussian())).ToArray();
        return new ActivationSet(parent.Rows, parent.Layers, parent.Heads, parent.HeadDim, values, parent.Labels,
            parent.RowIds.Select(id => id + rowIdOffset).ToArray());
    }

    private static Interval PairInterval(RowBootstrap b) =>
        b.PearsonInterval(0, 1, (x, y) => MapComparison.Align([x, y]) is var (s, _) ? (s[0], s[1]) : default,
            Correlation.Pearson(b.Sources[0].Map.Values, b.Sources[1].Map.Values));

    [Fact]
    public void SameRowsSameActivations_EveryResampleGivesRExactlyOne_AndTheIntervalRepeatsWithItsSeed()
    {
        using var tmp = new TempDir();
        var set = SyntheticActivations.Planted(Rows, Layers, Heads, Dim, Strength, seed: 3);
        string a = ScoreFolder(tmp, "a", set), b = ScoreFolder(tmp, "b", set);
        var same = RowBootstrap.Run([RowSource.Load(a), RowSource.Load(b)], 10, seed: 7);
        // Shared rows get the same draw, so both maps are re-made identically: r = 1 in every resample.
        var one = PairInterval(same);
        Assert.Equal(1, one.Low, 14);
        Assert.Equal(1, one.High, 14);
        Assert.Equal([0.0, 0.0], same.RefitDifference);

        // A noisy child on the same rows: an interval that repeats with its seed and moves with another.
        string child = ScoreFolder(tmp, "child", Child(set, 1.0, 1));
        var interval = PairInterval(RowBootstrap.Run([RowSource.Load(a), RowSource.Load(child)], 10, seed: 7));
        output.WriteLine($"noisy child: [{interval.Low:0.0000}, {interval.High:0.0000}]");
        Assert.True(interval.Low < 0.99 && interval.Low < interval.High, $"[{interval.Low}, {interval.High}]");
        Assert.Equal(interval, PairInterval(RowBootstrap.Run([RowSource.Load(a), RowSource.Load(child)], 10, seed: 7)));
        Assert.NotEqual(interval, PairInterval(RowBootstrap.Run([RowSource.Load(a), RowSource.Load(child)], 10, seed: 8)));
    }

    /// <summary>
    /// Planted inheritance with a known truth: the child's head strengths are the parent's plus noise at two
    /// levels, and each model is probed on its own rows (independent draws). The truth is the correlation of the
    /// two population maps, Phi(s) being a head's best accuracy. Over seeds (new rows, same strengths) the row
    /// bootstrap's 95% interval must hold the observed r and cover the population r about as often as it claims.
    /// </summary>
    [Fact]
    public void PlantedChild_IntervalCoversThePopulationCorrelation()
    {
        const int layers = 3, heads = 4, dim = 4, rows = 160, seeds = 10, resamples = 25;
        var strengthRng = new SeededRandom(99);
        double[] parentStrength = Enumerable.Range(0, layers * heads).Select(_ => 1.5 * strengthRng.NextDouble()).ToArray();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        int maps = 0;
        foreach (double tau in (double[])[0.3, 0.8])
        {
            double[] childStrength = parentStrength.Select(s => Math.Abs(s + tau * strengthRng.NextGaussian())).ToArray();
            double truth = Correlation.Pearson(parentStrength.Select(Phi).ToArray(), childStrength.Select(Phi).ToArray());
            int covered = 0;
            for (int seed = 0; seed < seeds; seed++)
            {
                var sources = new[]
                {
                    Source(SyntheticActivations.Planted(rows, layers, heads, dim, parentStrength, seed: 100 + seed), layers, heads),
                    Source(SyntheticActivations.Planted(rows, layers, heads, dim, childStrength, seed: 500 + seed), layers, heads),
                };
                var boot = RowBootstrap.Run(sources, resamples, seed);
                maps += 2 * (resamples + 1);
                var interval = PairInterval(boot);
                double observed = Correlation.Pearson(sources[0].Map.Values, sources[1].Map.Values);
                Assert.InRange(observed, interval.Low, interval.High);
                if (interval.Low <= truth && truth <= interval.High) covered++;
            }
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"tau {tau}: population r {truth:0.000}, row-bootstrap 95% interval covers it in {covered} of {seeds} seeds"));
            // 10 draws at 95%: at least 8 covered has probability 0.99 (binomial), so fewer means the interval is too narrow or off-centre.
            Assert.True(covered >= 8, $"tau {tau}: covered in {covered} of {seeds}");
        }
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{maps} maps of {layers}x{heads} heads x 5 folds on {rows} rows of {dim} dims in {(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds:0.0} s of process CPU time (other tests included), vector width {Provenance.VectorBits}"));
    }

    private static RowSource Source(ActivationSet set, int layers, int heads)
    {
        var options = new ProbeOptions(Control: false);
        var run = ProbeRun.Execute(set, options);
        var map = new ScoreMap("m", "memory", Enumerable.Range(0, layers).ToArray(), Enumerable.Range(0, heads).ToArray(), run.Scores.Accuracy);
        return new RowSource(map, set, options, "memory");
    }

    private static double Phi(double x) => 0.5 * (1 + Erf(x / Math.Sqrt(2)));

    /// <summary>Abramowitz and Stegun 7.1.26 (|error| &lt; 1.5e-7), enough for a population r.</summary>
    private static double Erf(double x)
    {
        double t = 1 / (1 + 0.3275911 * Math.Abs(x));
        double y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.Exp(-x * x);
        return Math.Sign(x) * y;
    }

    [Fact]
    public void Compare_WithBootstrapRows_WritesTheRowIntervalAndSaysSo_AndRefusesAFolderWithoutActivations()
    {
        using var tmp = new TempDir();
        var parent = SyntheticActivations.Planted(Rows, Layers, Heads, Dim, Strength, seed: 5);
        string a = ScoreFolder(tmp, "parent", parent), b = ScoreFolder(tmp, "child", Child(parent, 0.5, 9));
        string outDir = tmp.File("cmp");
        var r = CliRunner.Run("compare", a, b, "--bootstrap-rows", "12", "--seed", "3", "--bootstrap", "200", "--permutations", "99", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var lines = File.ReadAllLines(Path.Combine(outDir, "pairs.csv"));
        var row = lines[0].Split(',').Zip(lines[1].Split(',')).ToDictionary(p => p.First, p => double.TryParse(p.Second, CultureInfo.InvariantCulture, out double v) ? v : double.NaN);
        Assert.InRange(row["pearson"], row["pearson_low"], row["pearson_high"]);
        Assert.True(row["pearson_high"] - row["pearson_low"] > 0);
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")))!;
        Assert.Equal("rows", (string?)manifest["uncertainty"]!["bootstrap_over"]);
        Assert.Equal(12, (int)manifest["uncertainty"]!["bootstrap_resamples"]!);
        ProvenanceAssert.In(Path.Combine(outDir, "manifest.json"), [("uncertainty", 3), ("row_bootstrap", 3)],
            [("parent", Path.Combine(a, "scores.npy")), ("child", Path.Combine(b, "scores.npy")),
             ("parent_activations", Path.Combine(a, "activations.safetensors")), ("child_activations", Path.Combine(b, "activations.safetensors"))]);

        File.Delete(Path.Combine(b, "activations.safetensors"));
        var refused = CliRunner.Run("compare", a, b, "--bootstrap-rows", "12", "--out", tmp.File("cmp2"));
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("activations.safetensors: not found", refused.Stderr);
    }

    [Fact]
    public void AMapThatIsNotItsActivations_IsWarnedAbout()
    {
        using var tmp = new TempDir();
        var set = SyntheticActivations.Planted(Rows, Layers, Heads, Dim, Strength, seed: 6);
        string a = ScoreFolder(tmp, "a", set), b = ScoreFolder(tmp, "b", Child(set, 0.5, 2));
        // b's map from other activations: the re-fit cannot reproduce it.
        File.Copy(Path.Combine(ScoreFolder(tmp, "c", SyntheticActivations.Planted(Rows, Layers, Heads, Dim, Strength, seed: 7)), "scores.npy"),
            Path.Combine(b, "scores.npy"), overwrite: true);
        var r = CliRunner.Run("compare", a, b, "--bootstrap-rows", "5", "--out", tmp.File("cmp"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("b: re-fitting the probes on its activations differs from the map", r.Stdout);
        Assert.DoesNotContain("a: re-fitting", r.Stdout);
    }
}
