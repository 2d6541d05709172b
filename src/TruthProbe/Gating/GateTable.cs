using System.Text.Json.Serialization;
using System.Text.Json.Nodes;
using System.Text.Json;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Probing;

namespace TruthProbe.Gating;

/// <summary>How Truth Scores become gates (docs/design.md §5, the reference's <c>head_gating_truthful_head</c>).</summary>
public enum GateMode
{
    /// <summary><c>1 + lambda (S_h - mean S)</c>: HaluEval and CHAIR. May be negative; never clamped.</summary>
    Contrast,
    /// <summary><c>1 + lambda (S_h - min S) / (max S - min S + 1e-6)</c>: POPE.</summary>
    MinMax,
    /// <summary><c>1 + lambda S_h</c>.</summary>
    Plain,
    /// <summary><c>S_h</c>.</summary>
    Raw,
    /// <summary><c>1 + U(-1, 1)</c> (ablation). The reference redraws per forward call; ours is seeded.</summary>
    Random,
    /// <summary><c>(I_h - min I) / (max I - min I + 1e-6)</c> with <c>I = 1 / (S + 1e-6)</c> (ablation); no 1 +, no lambda.</summary>
    Inverse,
}

/// <summary>
/// A gate per attention head, [layers, query heads] row-major, and where it came from. S is always one
/// layer's row of scores, so every statistic (mean, min, max) is per layer.
/// </summary>
public sealed class GateTable
{
    private const double Eps = 1e-6; // the reference's epsilon, in minmax and in 1 / (S + eps)
    /// <summary>Largest gate magnitude accepted: --lambda 1e30 gave all-NaN activations with exit 0.</summary>
    public const double MaxGate = 1e4;

    public int Layers { get; }
    public int Heads { get; }
    /// <summary>[Layers * Heads], row l = layer l.</summary>
    public double[] Values { get; }
    public GateMode? Mode { get; }
    /// <summary>The amplifying factor, where the mode uses one.</summary>
    public double? Lambda { get; }
    /// <summary>The generator seed of <see cref="GateMode.Random"/>.</summary>
    public ulong? Seed { get; }
    public string? Source { get; }
    public string? SourceSha256 { get; }

    public GateTable(int layers, int heads, double[] values, GateMode? mode = null, double? lambda = null, ulong? seed = null,
        string? source = null, string? sourceSha256 = null)
    {
        if (values.Length != layers * heads) throw new ArgumentException($"{values.Length} gates for {layers} layers x {heads} heads");
        (Layers, Heads, Values, Mode, Lambda, Seed, Source, SourceSha256) = (layers, heads, values, mode, lambda, seed, source, sourceSha256);
    }

    public double this[int layer, int head] => Values[layer * Heads + head];

    /// <summary>The gates as the engine's interventions take them, [layers, heads] float32.</summary>
    public float[,] ToFloats()
    {
        var gates = new float[Layers, Heads];
        for (int l = 0; l < Layers; l++)
            for (int h = 0; h < Heads; h++)
                gates[l, h] = (float)this[l, h];
        return gates;
    }
    public ReadOnlySpan<double> Layer(int layer) => Values.AsSpan(layer * Heads, Heads);

    public static bool UsesLambda(GateMode mode) => mode is GateMode.Contrast or GateMode.MinMax or GateMode.Plain;

    public static GateMode ParseMode(string text) => text.ToLowerInvariant() switch
    {
        "contrast" => GateMode.Contrast,
        "minmax" => GateMode.MinMax,
        "plain" => GateMode.Plain,
        "raw" => GateMode.Raw,
        "random" => GateMode.Random,
        "inverse" => GateMode.Inverse,
        _ => throw new UserError($"gate mode must be contrast, minmax, plain, raw, random or inverse, got '{text}'") { Field = "mode" },
    };

    public static string ModeName(GateMode mode) => mode.ToString().ToLowerInvariant();

    /// <summary>
    /// Gates from a dense [layers, heads] score table. <paramref name="lambda"/> is required by contrast,
    /// minmax and plain and ignored (recorded as absent) by the others, as in the reference.
    /// </summary>
    public static GateTable FromScores(ReadOnlySpan<double> scores, int layers, int heads, GateMode mode, double? lambda,
        ulong seed = 0, string? source = null, string? sourceSha256 = null)
    {
        if (scores.Length != layers * heads) throw new ArgumentException($"{scores.Length} scores for {layers} layers x {heads} heads");
        string where = source ?? "scores";
        for (int i = 0; i < scores.Length; i++)
            if (!double.IsFinite(scores[i]))
                throw new UserError($"{where}: layer {i / heads}, head {i % heads} has score {scores[i]}; gates need a finite score for every head");
        if (UsesLambda(mode) && lambda is null)
            throw new UserError($"gate mode {ModeName(mode)} needs lambda (the amplifying factor)") { Field = "lambda" };
        if (lambda is { } given && !double.IsFinite(given)) throw new UserError($"lambda must be a finite number, got {given}") { Field = "lambda" };

        var gates = new double[scores.Length];
        var random = new SeededRandom(seed);
        for (int layer = 0; layer < layers; layer++)
        {
            var s = scores.Slice(layer * heads, heads);
            var g = gates.AsSpan(layer * heads, heads);
            switch (mode)
            {
                case GateMode.Contrast:
                    {
                        double mean = 0;
                        foreach (double v in s) mean += v;
                        mean /= heads;
                        for (int h = 0; h < heads; h++) g[h] = 1 + lambda!.Value * (s[h] - mean);
                        break;
                    }
                case GateMode.MinMax:
                    MinMax(s, g);
                    for (int h = 0; h < heads; h++) g[h] = 1 + lambda!.Value * g[h];
                    break;
                case GateMode.Plain:
                    for (int h = 0; h < heads; h++) g[h] = 1 + lambda!.Value * s[h];
                    break;
                case GateMode.Raw:
                    s.CopyTo(g);
                    break;
                case GateMode.Random:
                    for (int h = 0; h < heads; h++) g[h] = 1 + (2 * random.NextDouble() - 1);
                    break;
                case GateMode.Inverse:
                    for (int h = 0; h < heads; h++) g[h] = 1.0 / (s[h] + Eps);
                    MinMax(g, g);
                    break;
            }
        }
        for (int i = 0; i < gates.Length; i++)
            if (!double.IsFinite(gates[i]))
                throw new UserError($"{where}: gate mode {ModeName(mode)} gives a non-finite gate at layer {i / heads}, head {i % heads} (score {scores[i]}); inverse needs scores away from -1e-6");
        for (int i = 0; i < gates.Length; i++)
            if (Math.Abs(gates[i]) > MaxGate)
                throw new UserError($"{where}: {(lambda is { } l ? $"lambda {l}" : $"gate mode {ModeName(mode)}")} gives a gate of {gates[i]:G3} at layer {i / heads}, head {i % heads}; a head's output scaled beyond {MaxGate:G0} overflows float32 activations within a few layers (NaN logits), so choose a smaller lambda") { Field = "lambda" };
        return new GateTable(layers, heads, gates, mode, UsesLambda(mode) ? lambda : null, mode == GateMode.Random ? seed : null, source, sourceSha256);
    }

    /// <summary>(x - min x) / (max x - min x + 1e-6), the reference's normalize_minmax.</summary>
    private static void MinMax(ReadOnlySpan<double> x, Span<double> result)
    {
        double min = double.PositiveInfinity, max = double.NegativeInfinity;
        foreach (double v in x) { min = Math.Min(min, v); max = Math.Max(max, v); }
        for (int i = 0; i < x.Length; i++) result[i] = (x[i] - min) / (max - min + Eps);
    }

    /// <summary>Gates from a score map on disk (npy, csv or score folder; see <see cref="ScoreMap.Load"/>).</summary>
    public static GateTable FromScoreFile(string path, GateMode mode, double? lambda, ulong seed = 0)
    {
        var map = ScoreMap.Load(path);
        double[] scores = map.ToDense("gating");
        return FromScores(scores, map.Layers, map.Heads, mode, lambda, seed, map.File, Hashing.Sha256File(map.File));
    }

    /// <summary>The sidecar that records how a gates .npy was made: gates.npy -> gates.json.</summary>
    public static string SidecarPath(string npyPath) => Path.ChangeExtension(npyPath, ".json");

    /// <summary>Writes float64 [layers, heads] .npy and its JSON sidecar (mode, lambda, seed, source hash, summary).</summary>
    public void Save(string npyPath)
    {
        var stats = Summary();
        var sidecar = new Sidecar(Mode is { } m ? ModeName(m) : null, Lambda, Seed, Source, SourceSha256, [Layers, Heads],
            Mode is { } mode ? Formula(mode) : null, stats.Min, stats.Max, stats.Mean, stats.Negative,
            Numerics.Provenance.Of(Seed is { } seed ? [("gate", seed)] : [], SourceSha256 is { } sha ? [("scores", sha)] : []));
        Npy.WriteFloat64(npyPath, Values, Layers, Heads);
        AtomicFile.WriteAllText(SidecarPath(npyPath), JsonSerializer.Serialize(sidecar, JsonOptions) + "\n");
    }

    /// <summary>Reads a gate table written by <see cref="Save"/> (or any float [layers, heads] .npy; the sidecar is optional).</summary>
    public static GateTable Load(string npyPath)
    {
        var array = Npy.Read(npyPath);
        if (array.Shape.Length != 2)
            throw new UserError($"{npyPath}: expected a 2-D [layers, heads] gate table, got shape ({string.Join(", ", array.Shape)})");
        for (int i = 0; i < array.Data.Length; i++)
            if (!double.IsFinite(array.Data[i]))
                throw new UserError($"{npyPath}: gate at layer {i / array.Shape[1]}, head {i % array.Shape[1]} is {array.Data[i]}; gates must be finite");
        Sidecar? sidecar = null;
        string sidecarPath = SidecarPath(npyPath);
        if (File.Exists(sidecarPath))
        {
            try { sidecar = JsonSerializer.Deserialize<Sidecar>(File.ReadAllText(sidecarPath), JsonOptions); }
            catch (JsonException e) { throw new UserError($"{sidecarPath}: not a valid gate sidecar ({e.Message}); fix or delete it"); }
        }
        GateMode? mode = sidecar?.Mode is { } name ? ParseMode(name) : null;
        return new GateTable(array.Shape[0], array.Shape[1], array.Data, mode, sidecar?.Lambda, sidecar?.Seed, sidecar?.Source, sidecar?.SourceSha256);
    }

    /// <summary>Fails unless the table has one gate per layer and query head of the model.</summary>
    public void EnsureMatches(int modelLayers, int modelQueryHeads, string modelName)
    {
        if (Layers != modelLayers || Heads != modelQueryHeads)
            throw new UserError($"gates{(Source != null ? $" from {Source}" : "")} are {Layers} layers x {Heads} heads, but {modelName} has " +
                                $"{modelLayers} layers x {modelQueryHeads} query heads; use a score map of this model");
    }

    public readonly record struct Stats(double Min, double Max, double Mean, int Negative);

    public Stats Summary() => new(Values.Min(), Values.Max(), Values.Average(), Values.Count(v => v < 0));

    public static string Formula(GateMode mode) => mode switch
    {
        GateMode.Contrast => "g = 1 + lambda * (S_h - mean_h S), per layer; not clamped",
        GateMode.MinMax => "g = 1 + lambda * (S_h - min S) / (max S - min S + 1e-6), per layer",
        GateMode.Plain => "g = 1 + lambda * S_h",
        GateMode.Raw => "g = S_h",
        GateMode.Random => "g = 1 + U(-1, 1), SplitMix64(seed), layer-major, u = (next >> 11) * 2^-53",
        GateMode.Inverse => "I = 1 / (S_h + 1e-6); g = (I - min I) / (max I - min I + 1e-6), per layer",
        _ => throw new ArgumentOutOfRangeException(nameof(mode)),
    };

    private sealed record Sidecar(
        string? Mode, double? Lambda, ulong? Seed, string? Source, string? SourceSha256, int[] Shape, string? Formula,
        double Min, double Max, double Mean, int Negative, JsonObject? Provenance);

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // keep "+" and "<" readable
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };
}
