using System.Runtime.InteropServices;
using System.Text.Json;
using TruthProbe.Common;
using TruthProbe.Probing;
using TruthProbe.Statistics;

namespace TruthProbe.Lineage;

/// <summary>One map whose probing activations are at hand: the map, its activations and the probe settings that made it.</summary>
public sealed record RowSource(ScoreMap Map, ActivationSet Set, ProbeOptions Options, string ActivationsFile)
{
    /// <summary>
    /// A <c>score</c>/<c>probe</c> output folder: scores.npy (or scores.csv), activations.safetensors and the
    /// manifest.json whose solver and folds (count, seed) re-fit the probes as the map was made.
    /// </summary>
    public static RowSource Load(string folder, string? name = null)
    {
        if (!Directory.Exists(folder))
            throw new UserError($"{folder}: a row bootstrap needs a score output folder (scores.npy, activations.safetensors, manifest.json), not a file") { Field = "maps" };
        string activations = Path.Combine(folder, "activations.safetensors"), manifest = Path.Combine(folder, "manifest.json");
        foreach (string needed in (string[])[activations, manifest])
            if (!File.Exists(needed))
                throw new UserError($"{needed}: not found; a row bootstrap re-fits the probes from the activations 'score' stores beside the map and its manifest") { Field = "maps" };
        var map = ScoreMap.Load(folder, name);
        var set = ActivationSet.Load(activations, null);
        if (map.Layers != set.Layers || map.Heads != set.Heads)
            throw new UserError($"{map.File}: the map is {map.Shape} but {activations} holds {set.Layers}x{set.Heads} heads; they come from different runs") { Field = "maps" };
        return new RowSource(map, set, ReadOptions(manifest), activations);
    }

    private static ProbeOptions ReadOptions(string manifest)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(manifest));
        var root = JsonFields.Object(doc.RootElement, manifest);
        JsonElement Field(JsonElement obj, string path, string name) =>
            JsonFields.TryGet(obj, name, out var v) ? v : throw new UserError($"{manifest}: field {path}.{name} is missing; a row bootstrap needs the probe settings of a 'score' or 'probe' manifest");
        var folds = JsonFields.Object(Field(root, "$", "folds"), $"{manifest}: folds");
        var solver = JsonFields.Object(Field(root, "$", "solver"), $"{manifest}: solver");
        string grouping = JsonFields.String(Field(folds, "folds", "grouping"), $"{manifest}: folds.grouping");
        if (grouping != "row")
            throw new UserError($"{manifest}: folds.grouping is '{grouping}'; the row bootstrap resamples single rows and folds by row, so it cannot re-make a map whose folds kept items together; use the bootstrap over heads (drop --bootstrap-rows)") { Field = "bootstrap_rows" };
        string solverName = JsonFields.String(Field(solver, "solver", "name"), $"{manifest}: solver.name");
        var kind = solverName switch
        {
            "exact" => ProbeSolverKind.Exact,
            "reference" => ProbeSolverKind.Reference,
            _ => throw new UserError($"{manifest}: solver.name must be \"exact\" or \"reference\", got \"{solverName}\""),
        };
        return new ProbeOptions(kind, JsonFields.Int32(Field(folds, "folds", "count"), $"{manifest}: folds.count", min: 2),
            JsonFields.Int32(Field(folds, "folds", "seed"), $"{manifest}: folds.seed"), Control: false);
    }
}

/// <summary>
/// The bootstrap over probing rows: each resample draws N rows with replacement, re-fits every head's k-fold
/// probes on them with the map's own solver and fold count, and recomputes the map, so the interval of r
/// carries the sampling noise of the rows behind both maps, which the bootstrap over heads leaves out. Copies
/// of one row share a fold (folds grouped by the drawn row), so no row is validated by a probe that trained on
/// it. Maps probed on the same rows (same row ids and labels) get the same resample in every draw, so rows
/// that are easy for both stay paired; other row sets draw independently. A draw depends only on the seed,
/// the resample's number and the row set, so a pair's interval does not depend on the other maps given.
/// </summary>
public sealed class RowBootstrap
{
    public IReadOnlyList<RowSource> Sources { get; }
    public int Resamples { get; }
    public int Seed { get; }
    /// <summary>Largest |map - re-fit on the original rows| per source: 0 unless the activations or settings are not the map's.</summary>
    public IReadOnlyList<double> RefitDifference { get; }
    private readonly double[][] _maps; // [source][resample * heads + head]; NaN rows for a resample that drew one class only

    private RowBootstrap(IReadOnlyList<RowSource> sources, int resamples, int seed, double[][] maps, double[] refit) =>
        (Sources, Resamples, Seed, _maps, RefitDifference) = (sources, resamples, seed, maps, refit);

    /// <summary>
    /// Resamples run in parallel, each on one thread with its own workspace; a resample's draws come from the seed
    /// and its number only and its heads' fits run in order on that thread, so the maps do not depend on threads.
    /// </summary>
    public static RowBootstrap Run(IReadOnlyList<RowSource> sources, int resamples, int seed, IProgress<int>? progress = null, int threads = 0)
    {
        if (resamples < 1) throw new UserError($"the row bootstrap needs at least one resample, got {resamples}") { Field = "bootstrap_rows" };
        var maps = new double[sources.Count][];
        var refit = new double[sources.Count];
        int done = 0;
        var gate = new object();
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = threads > 0 ? threads : Environment.ProcessorCount };
        for (int s = 0; s < sources.Count; s++)
        {
            var src = sources[s];
            ProbeRun.Check(src.Options, src.Set.Labels, null);
            var original = HeadProber.Fit(src.Set, src.Set.Labels, Folds.Shuffled(src.Set.Rows, src.Options.Folds, src.Options.Seed),
                src.Options.Solver, fitAllRows: false, threads);
            refit[s] = MaxDifference(src.Map.Values, original.Accuracy);

            var map = maps[s] = new double[resamples * src.Set.HeadCount];
            var headRows = ResampleFits.HeadRows(src.Set);
            Parallel.For(0, resamples, parallel, () => new ResampleFits(src.Set, headRows, src.Options),
                (b, _, fits) =>
                {
                    fits.Run(Draw(src.Set, seed, b, fits.Drawn), map.AsSpan(b * src.Set.HeadCount, src.Set.HeadCount));
                    if (progress != null) lock (gate) progress.Report(++done);
                    return fits;
                }, _ => { });
        }
        return new RowBootstrap(sources, resamples, seed, maps, refit);
    }

    /// <summary>Resample <paramref name="resample"/>'s rows of <paramref name="set"/> (N draws with replacement) into <paramref name="drawn"/>, which it returns.</summary>
    internal static long[] Draw(ActivationSet set, int seed, int resample, long[] drawn)
    {
        var rng = new SeededRandom(Mix((ulong)(uint)seed ^ RowSetKey(set), (ulong)resample));
        for (int i = 0; i < set.Rows; i++) drawn[i] = rng.NextInt(set.Rows);
        return drawn;
    }

    /// <summary>
    /// The interval of r between sources i and j. <paramref name="pair"/> turns two resampled maps into the paired
    /// samples the comparison correlates (the alignment the point estimate <paramref name="observed"/> used).
    /// A resample holds about 63% distinct rows, so its re-fitted maps are noisier than the originals and their r
    /// is pulled towards 0 (measured: every one of 60 resampled r's below the observed 0.992 on a planted child);
    /// a plain percentile interval would then miss the observed r itself. The interval is therefore the
    /// bias-corrected percentile interval on Fisher's z = atanh(r): the (1 -+ confidence)/2 quantiles of the
    /// resampled z, shifted by the bootstrap's bias estimate mean(z*) - z(observed), mapped back with tanh.
    /// Resamples where r is undefined are skipped.
    /// </summary>
    public Interval PearsonInterval(int i, int j, Func<ScoreMap, ScoreMap, (double[] A, double[] B)> pair, double observed, double confidence = 0.95)
    {
        if (double.IsNaN(observed)) return Interval.Undefined;
        var z = new double[Resamples];
        int kept = 0;
        double mean = 0;
        for (int b = 0; b < Resamples; b++)
        {
            var (x, y) = pair(Resampled(i, b), Resampled(j, b));
            double r = x.Length < 3 ? double.NaN : Correlation.Pearson(x, y);
            if (double.IsNaN(r)) continue;
            z[kept++] = FisherZ(r);
            mean += z[kept - 1];
        }
        if (kept == 0) return Interval.Undefined;
        double bias = mean / kept - FisherZ(observed);
        var q = MapCorrelation.PercentileInterval(z.AsSpan(0, kept), confidence);
        return new Interval(Math.Tanh(q.Low - bias), Math.Tanh(q.High - bias));
    }

    /// <summary>atanh(r) with |r| kept a hair below 1, so identical maps (r = 1 in every resample) give [1, 1] to 1e-15, not NaN.</summary>
    private static double FisherZ(double r) => Math.Atanh(Math.Clamp(r, -1 + 1e-15, 1 - 1e-15));

    internal ScoreMap Resampled(int source, int resample)
    {
        var m = Sources[source].Map;
        int heads = m.Layers * m.Heads;
        return new ScoreMap(m.Name, m.File, m.LayerIds, m.HeadIds, _maps[source].AsSpan(resample * heads, heads).ToArray());
    }

    /// <summary>Identifies the probing rows (their ids and labels): equal for maps probed on the same rows.</summary>
    private static ulong RowSetKey(ActivationSet set)
    {
        var bytes = new byte[set.Rows * (sizeof(long) + 1)];
        MemoryMarshal.AsBytes(set.RowIds.AsSpan()).CopyTo(bytes);
        set.Labels.CopyTo(bytes.AsSpan(set.Rows * sizeof(long)));
        return Convert.ToUInt64(Hashing.Sha256(bytes)[..16], 16);
    }

    private static ulong Mix(ulong stream, ulong resample) => new SeededRandom(stream + 0x9E3779B97F4A7C15UL * (resample + 1)).NextUInt64();

    private static double MaxDifference(double[] map, double[] refit)
    {
        double worst = 0;
        for (int i = 0; i < map.Length; i++)
            if (!double.IsNaN(map[i])) worst = Math.Max(worst, Math.Abs(map[i] - refit[i]));
        return worst;
    }

    public const string Description =
        "95% bias-corrected percentile bootstrap over probing rows: each resample draws the rows with replacement (the same draw for maps probed on the same rows), " +
        "re-fits every head's k-fold probes (the map's solver and fold count; copies of a row share a fold) and recomputes both maps and r; " +
        "interval = tanh(quantiles of atanh(r*) - (mean atanh(r*) - atanh(r))), since resamples' fewer distinct rows pull r* towards 0";
}
