using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using System.Text.Json;
using System.Text;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Numerics;
using TruthProbe.Statistics;
using static TruthProbe.Common.CsvFormat;

namespace TruthProbe.Probing;

/// <param name="GroupFolds">keep each item's rows in one fold (<see cref="Probing.Folds.Grouped"/>) instead of
/// splitting rows independently as the reference does.</param>
public sealed record ProbeOptions(ProbeSolverKind Solver = ProbeSolverKind.Exact, int Folds = 5, int Seed = 42,
    bool Control = true, int Threads = 0, bool GroupFolds = false)
{
    /// <summary>The shuffled-label control task draws its permutation from this seed (recorded in the manifest).</summary>
    public int ControlSeed => unchecked(Seed + 1);
}

/// <summary>Where the activations came from, for the manifest.</summary>
public sealed record ProbeInputs(string ActivationsPath, string? LabelsPath, string Tool = "truthprobe probe");

/// <summary>
/// A whole probing run on stored activations: the head probes on k folds, the shuffled-label control on
/// the same folds, the surface baseline when answer texts are known, the chance test, and the files
/// (scores.csv, scores.npy, probe_weights.safetensors, heatmap.png, manifest.json).
/// </summary>
public sealed class ProbeRun
{
    public required ActivationSet Set { get; init; }
    public required ProbeOptions Options { get; init; }
    public required Folds Folds { get; init; }
    public required HeadScores Scores { get; init; }
    public HeadScores? Control { get; init; }
    public HeadScores? Surface { get; init; }
    public required ChanceTest Chance { get; init; }
    public required Dictionary<string, double> TimingsSeconds { get; init; }

    /// <summary>
    /// Refuses rows and options that cannot be probed (one class only, fewer rows or items than folds); also
    /// called on the probing rows before activations are collected, so that such a run fails before the model runs.
    /// </summary>
    public static void Check(ProbeOptions options, IReadOnlyCollection<byte> labels, IReadOnlyList<long>? itemOfRow)
    {
        int rows = labels.Count, gold = labels.Count(y => y == 1);
        if (gold == 0 || gold == rows)
            throw new UserError($"all {rows} rows have label {(gold == 0 ? "0 (hallucinated)" : "1 (gold)")}: a probe needs both classes");
        if (options.Folds < 2) throw new UserError($"folds must be at least 2, got {options.Folds}") { Field = "folds" };
        if (rows < options.Folds) throw new UserError($"{rows} rows cannot fill {options.Folds} folds; give fewer folds or more rows") { Field = "folds" };
        if (!options.GroupFolds) return;
        if (itemOfRow == null)
            throw new UserError("folds grouped by item need each row's item: give the probing rows the activations came from (jsonl) or an item id per row (.npy)") { Field = "groups" };
        int items = itemOfRow.Distinct().Count();
        if (items < options.Folds) throw new UserError($"{items} items cannot fill {options.Folds} folds; give fewer folds or more items") { Field = "folds" };
    }

    /// <param name="itemOfRow">each row's item (required with <see cref="ProbeOptions.GroupFolds"/>).</param>
    public static ProbeRun Execute(ActivationSet set, ProbeOptions options, IReadOnlyList<long>? itemOfRow = null)
    {
        Check(options, set.Labels, itemOfRow);
        var timings = new Dictionary<string, double>();
        var clock = Stopwatch.StartNew();
        Folds folds;
        if (options.GroupFolds) folds = Folds.Grouped(itemOfRow!, options.Folds, options.Seed);
        else folds = Folds.Shuffled(set.Rows, options.Folds, options.Seed);
        var scores = HeadProber.Fit(set, set.Labels, folds, options.Solver, fitAllRows: true, options.Threads);
        timings["probes"] = clock.Elapsed.TotalSeconds;

        HeadScores? control = null;
        if (options.Control)
        {
            clock.Restart();
            int[] permutation = SeededRandom.Permutation(set.Rows, options.ControlSeed);
            byte[] shuffled = permutation.Select(i => set.Labels[i]).ToArray();
            control = HeadProber.Fit(set, shuffled, folds, options.Solver, fitAllRows: false, options.Threads);
            timings["control"] = clock.Elapsed.TotalSeconds;
        }

        HeadScores? surface = null;
        if (set.Answers != null)
        {
            clock.Restart();
            var features = SurfaceBaseline.Features(set.Answers, set.Labels);
            surface = HeadProber.Fit(features, set.Labels, folds, ProbeSolverKind.Exact, fitAllRows: false, 1);
            timings["surface"] = clock.Elapsed.TotalSeconds;
        }

        return new ProbeRun
        {
            Set = set, Options = options, Folds = folds, Scores = scores, Control = control, Surface = surface,
            Chance = ChanceTest.Run(scores.Accuracy, set.Labels), TimingsSeconds = timings,
        };
    }

    public double Selectivity(int head) => Control == null ? double.NaN : Scores.Accuracy[head] - Control.Accuracy[head];

    public (int Layer, int Head, double Accuracy) TopHead()
    {
        int best = 0;
        for (int i = 1; i < Scores.Accuracy.Length; i++)
            if (Scores.Accuracy[i] > Scores.Accuracy[best]) best = i;
        return (best / Set.Heads, best % Set.Heads, Scores.Accuracy[best]);
    }

    /// <summary>Writes every output file into <paramref name="outDir"/>; each appears whole or not at all.</summary>
    public void Write(string outDir, ProbeInputs inputs, IFigures figures)
    {
        Directory.CreateDirectory(outDir);
        AtomicFile.WriteAllText(Path.Combine(outDir, "scores.csv"), ScoresCsv());
        Npy.WriteFloat64(Path.Combine(outDir, "scores.npy"), Scores.Accuracy, Set.Layers, Set.Heads);
        WriteWeights(Path.Combine(outDir, "probe_weights.safetensors"));
        figures.Heatmap(Path.Combine(outDir, "heatmap.png"), AccuracyGrid(),
            $"Truth Scores{ModelName()}",
            "head", "layer", Caption());
        AtomicFile.WriteAllText(Path.Combine(outDir, "manifest.json"), Manifest(inputs));
    }

    /// <summary>
    /// One row per head. After the metrics: the 95% Wilson interval of the accuracy read as
    /// round(accuracy * N) right of N rows; the one-sided p-value against chance (<see cref="ChanceTest"/>) and
    /// its Benjamini-Hochberg q over all heads; the one-sided exact McNemar p-value of the head against the
    /// surface baseline on the same rows (NaN without answer texts); the SD of the accuracy over folds.
    /// </summary>
    public string ScoresCsv()
    {
        int n = Set.Rows;
        var qChance = new double[Chance.PValues.Length];
        MultipleTesting.BenjaminiHochberg(Chance.PValues, qChance);
        var sb = new StringBuilder("layer,head,accuracy,precision,recall,f1,auroc,control_accuracy,selectivity,accuracy_low,accuracy_high,p_chance,q_chance,p_surface,accuracy_fold_sd\n");
        for (int i = 0; i < Scores.Accuracy.Length; i++)
        {
            sb.Append(i / Set.Heads).Append(',').Append(i % Set.Heads);
            var interval = double.IsNaN(Scores.Accuracy[i]) ? Interval.Undefined : Proportion.Wilson(Proportion.Correct(Scores.Accuracy[i], n), n);
            foreach (double v in (double[])[Scores.Accuracy[i], Scores.Precision[i], Scores.Recall[i], Scores.F1[i], Scores.Auroc[i],
                         Control?.Accuracy[i] ?? double.NaN, Selectivity(i),
                         interval.Low, interval.High, Chance.PValues[i], qChance[i], SurfacePValue(i),
                         Spread.MeanStdDev(Scores.FoldAccuracy.AsSpan(i * Folds.Count, Folds.Count)).StdDev])
                sb.Append(',').Append(Number(v));
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Does the head beat the surface baseline on the same rows? One-sided exact McNemar; NaN without a baseline.</summary>
    public double SurfacePValue(int head) => Surface == null ? double.NaN
        : Proportion.McNemarGreater(Scores.Correct.AsSpan(head * Set.Rows, Set.Rows), Surface.Correct).PValue;

    /// <summary>Heads whose Benjamini-Hochberg q against the surface baseline is below <paramref name="alpha"/>.</summary>
    public int HeadsAboveSurface(double alpha = 0.05)
    {
        var p = Enumerable.Range(0, Scores.Accuracy.Length).Select(SurfacePValue).ToArray();
        var q = new double[p.Length];
        MultipleTesting.BenjaminiHochberg(p, q);
        return q.Count(v => v < alpha);
    }

    private void WriteWeights(string path)
    {
        var meta = new Dictionary<string, string>
        {
            ["format"] = "truthprobe.probe_weights.v1",
            ["meaning"] = "probe of head (l, h) on raw hook_z activations: P(gold) = sigmoid(weight[l, h] . x + bias[l, h]); fitted on all rows",
            ["solver"] = SolverName,
            ["seed"] = Options.Seed.ToString(CultureInfo.InvariantCulture),
        };
        SafetensorsWriter.Write(path,
        [
            SafetensorToWrite.FromSingles("weight", [Set.Layers, Set.Heads, Set.HeadDim], Scores.Weights!),
            SafetensorToWrite.FromSingles("bias", [Set.Layers, Set.Heads], Scores.Biases!),
        ], meta);
    }

    private double[,] AccuracyGrid()
    {
        var grid = new double[Set.Layers, Set.Heads];
        for (int l = 0; l < Set.Layers; l++)
            for (int h = 0; h < Set.Heads; h++) grid[l, h] = Scores.Accuracy[l * Set.Heads + h];
        return grid;
    }

    /// <summary>": folder/file.bin" for a checkpoint file (llama2.c files are often just model.bin), ": folder" for a model folder.</summary>
    private string ModelName()
    {
        if (!Set.Metadata.TryGetValue("model", out var m)) return "";
        string trimmed = Path.TrimEndingDirectorySeparator(m);
        string name = Path.GetFileName(trimmed);
        string? parent = Path.GetFileName(Path.GetDirectoryName(trimmed));
        return Path.HasExtension(name) && !string.IsNullOrEmpty(parent) ? $": {parent}/{name}" : $": {name}";
    }

    private string SolverName => Options.Solver == ProbeSolverKind.Exact ? "exact" : "reference";

    public string Caption()
    {
        var (l, h, top) = TopHead();
        var parts = new List<string>
        {
            string.Create(CultureInfo.InvariantCulture, $"{SolverName} probes, {Folds.Count}-fold{(Options.GroupFolds ? " by item" : "")} (seed {Options.Seed}), N={Set.Rows}: mean {Scores.Accuracy.Average():0.000}, top L{l}H{h} {top:0.000}"),
        };
        if (Control != null)
            parts.Add(string.Create(CultureInfo.InvariantCulture,
                $"shuffled-label control mean {Control.Accuracy.Average():0.000} (selectivity mean {Scores.Accuracy.Average() - Control.Accuracy.Average():0.000})"));
        // Both counts in one phrase, always in this form: a count above chance alone reads as truthful heads
        // when the answer's form (the surface baseline) does as well.
        parts.Add((Chance.DiffersFromChance ? "" : "AT CHANCE (no head beats the majority share): ") + $"{Chance.HeadsAboveChance} heads above chance, " +
            (Surface == null ? "surface baseline n/a (no answer texts)"
                : string.Create(CultureInfo.InvariantCulture, $"{HeadsAboveSurface()} above the surface baseline (length + words, accuracy {Surface.Accuracy[0]:0.000}; McNemar, BH q < 0.05)")));
        return string.Join("; ", parts);
    }

    /// <summary>Set when heads beat chance but none beats the answer's surface form: the map may read form, not truth.</summary>
    public string? SurfaceWarning => Surface != null && Chance.DiffersFromChance && HeadsAboveSurface() == 0
        ? "no head is significantly above the surface baseline: the answers' length and words tell the labels apart as well as any head; do not read this map as evidence of truthful heads"
        : null;

    public string Manifest(ProbeInputs inputs)
    {
        var (topLayer, topHead, topAccuracy) = TopHead();
        string activationsSha = Hashing.Sha256File(inputs.ActivationsPath);
        string? labelsSha = inputs.LabelsPath == null ? null : Hashing.Sha256File(inputs.LabelsPath);
        var activations = new JsonObject
        {
            ["path"] = Path.GetFullPath(inputs.ActivationsPath),
            ["sha256"] = activationsSha,
            ["rows"] = Set.Rows, ["layers"] = Set.Layers, ["heads"] = Set.Heads, ["head_dim"] = Set.HeadDim,
            ["metadata"] = new JsonObject(Set.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)
                .Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
        };
        var labels = new JsonObject
        {
            ["source"] = inputs.LabelsPath == null ? "the activations file" : Path.GetFullPath(inputs.LabelsPath),
            ["gold_1"] = Set.Labels.Count(y => y == 1),
            ["hallucinated_0"] = Set.Labels.Count(y => y == 0),
        };
        if (labelsSha != null) labels["sha256"] = labelsSha;

        var manifest = new JsonObject
        {
            ["tool"] = inputs.Tool,
            ["activations"] = activations,
            ["labels"] = labels,
            ["solver"] = SolverSettings(),
            ["folds"] = new JsonObject
            {
                ["count"] = Folds.Count, ["seed"] = Options.Seed, ["shuffled"] = true,
                ["grouping"] = Options.GroupFolds ? "item" : "row",
                ["rule"] = Options.GroupFolds
                    ? "items (rows sharing context and question) permuted by SplitMix64 Fisher-Yates from the seed, each joining the fold with the fewest rows so far"
                    : "rows permuted by SplitMix64 Fisher-Yates from the seed, cut into contiguous chunks (first rows % k one longer)",
                ["validation_sizes"] = new JsonArray(Folds.Validation.Select(v => (JsonNode?)v.Length).ToArray()),
                ["fold_of_row"] = new JsonArray(Folds.FoldOfRow.Select(f => (JsonNode?)f).ToArray()),
            },
            ["metrics"] = "per fold on its validation rows, threshold sigmoid > 0.5, positive class = gold (1), empty ratios = 0; reported value = mean over folds (AUROC: over folds holding both classes)",
            ["summary"] = new JsonObject
            {
                ["mean_accuracy"] = Scores.Accuracy.Average(),
                ["max_accuracy"] = topAccuracy,
                ["top_head"] = new JsonArray(topLayer, topHead),
                ["mean_auroc"] = Mean(Scores.Auroc),
            },
            ["fit"] = new JsonObject
            {
                ["max_gradient_norm"] = Options.Solver == ProbeSolverKind.Exact ? Scores.MaxGradientNorm : null,
                ["max_iterations"] = Scores.MaxIterations,
                ["mean_iterations"] = Scores.MeanIterations,
            },
            ["control"] = Control == null ? null : new JsonObject
            {
                ["task"] = "the same probes on the same folds with labels permuted across rows (Hewitt & Liang-style control); selectivity = accuracy - control accuracy",
                ["seed"] = Options.ControlSeed,
                ["mean_accuracy"] = Control.Accuracy.Average(),
                ["max_accuracy"] = Control.Accuracy.Max(),
                ["mean_selectivity"] = Scores.Accuracy.Average() - Control.Accuracy.Average(),
                ["max_selectivity"] = Enumerable.Range(0, Scores.Accuracy.Length).Max(Selectivity),
            },
            ["surface_baseline"] = Surface == null
                ? new JsonObject { ["available"] = false, ["reason"] = "the activations carry no answer texts (score writes them; .npy inputs have none)" }
                : new JsonObject
                {
                    ["available"] = true,
                    ["features"] = SurfaceBaseline.Description,
                    ["accuracy"] = Surface.Accuracy[0], ["precision"] = Surface.Precision[0], ["recall"] = Surface.Recall[0],
                    ["f1"] = Surface.F1[0], ["auroc"] = NullIfNaN(Surface.Auroc[0]),
                    ["heads_above_surface"] = Scores.Accuracy.Count(a => a > Surface.Accuracy[0]),
                    ["heads_significantly_above_surface"] = HeadsAboveSurface(),
                    ["surface_test"] = "per head, one-sided exact McNemar on the rows only one of head and baseline gets right (p_surface in scores.csv); significant: Benjamini-Hochberg q < 0.05 over all heads",
                    ["warning"] = SurfaceWarning,
                },
            ["chance"] = new JsonObject
            {
                ["criterion"] = ChanceTest.Criterion,
                ["majority_share"] = Chance.MajorityShare,
                ["per_head_alpha"] = Chance.HeadAlpha,
                ["heads_above_chance"] = Chance.HeadsAboveChance,
                ["smallest_p_value"] = Chance.SmallestPValue,
                ["differs_from_chance"] = Chance.DiffersFromChance,
                ["warning"] = Chance.DiffersFromChance ? null
                    : "this map is at chance level: no head's accuracy beats the majority share; do not read it as evidence of truthful heads",
            },
            ["outputs"] = new JsonArray("scores.csv", "scores.npy", "probe_weights.safetensors", "heatmap.png", "manifest.json"),
            ["provenance"] = Provenance.Of(
                Control == null ? [("folds", Options.Seed)] : [("folds", Options.Seed), ("control", Options.ControlSeed)],
                labelsSha == null ? [("activations", activationsSha)] : [("activations", activationsSha), ("labels", labelsSha)]),
            ["timings_s"] = new JsonObject(TimingsSeconds.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Math.Round(kv.Value, 3)))),
        };
        return manifest.ToJsonString(JsonOptions) + "\n";
    }

    private JsonObject SolverSettings() => Options.Solver == ProbeSolverKind.Exact
        ? new JsonObject
        {
            ["name"] = "exact",
            ["model"] = "L2-regularised logistic regression, (1/n) sum BCE + (l2/2) ||w||^2, solved by damped Newton to the gradient tolerance",
            ["l2"] = ExactLogistic.L2,
            ["bias_penalised"] = false,
            ["standardised"] = "yes: each feature centred and scaled by the training rows' mean and population sd; weights are reported mapped back to raw activations",
            ["gradient_tolerance"] = ExactLogistic.GradientTolerance,
            ["max_iterations"] = ExactLogistic.MaxIterations,
        }
        : new JsonObject
        {
            ["name"] = "reference",
            ["model"] = "the authors' settings: w, b zero-init; AdamW (PyTorch semantics, decoupled weight decay on w and b); BCE with logits averaged over batch and all L*H heads; batches in row order",
            ["lr"] = ReferenceLogistic.LearningRate, ["betas"] = new JsonArray(ReferenceLogistic.Beta1, ReferenceLogistic.Beta2),
            ["eps"] = ReferenceLogistic.Epsilon, ["weight_decay"] = ReferenceLogistic.WeightDecay,
            ["epochs"] = ReferenceLogistic.Epochs, ["batch_size"] = ReferenceLogistic.BatchSize,
        };

    private static double Mean(double[] values)
    {
        var valid = values.Where(v => !double.IsNaN(v)).ToArray();
        return valid.Length == 0 ? double.NaN : valid.Average();
    }

    private static JsonNode? NullIfNaN(double v) => double.IsNaN(v) ? null : JsonValue.Create(v);

    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
