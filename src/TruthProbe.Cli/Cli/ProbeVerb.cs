using System.CommandLine;
using System.Globalization;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Probing;
using TruthProbe.Reports;
using TruthProbe.Training;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe probe</c>: Truth Scores from stored activations (ours or anyone's .npy), no model needed.</summary>
public sealed class ProbeVerb : IVerb
{
    public string Name => "probe";
    public string Summary => "fit per-head probes on stored activations: Truth Scores, controls, heat map";

    public string Details => """
        FILE is the activations.safetensors that 'truthprobe score' writes (tensors activations F32
        [N, L, H, D], labels, row_ids; answer texts in its metadata) or a numpy .npy of shape [N, L, H, D]
        (any float dtype), e.g. from PyTorch: np.save('acts.npy', acts.float().numpy()).

        Writes scores.csv (layer,head,accuracy,precision,recall,f1,auroc,control_accuracy,selectivity,
        accuracy_low,accuracy_high,p_chance,q_chance,p_surface,accuracy_fold_sd; accuracy = mean validation
        accuracy over folds = the Truth Score, low/high its 95% Wilson interval), scores.npy (float64 [L, H]
        accuracy), probe_weights.safetensors (weight [L, H, D], bias [L, H], fitted on all rows),
        heatmap.png and manifest.json (inputs with sha256, solver, seed, folds, controls, chance test).
        """;

    private readonly Option<string> _activations = Opt.Required("--activations", "FILE", "stored activations: .safetensors from score, or .npy [N, L, H, D]");
    private readonly Option<string?> _labels = Opt.Text("--labels", "FILE.npy",
        "labels, shape (N,), 1 = gold/truthful, 0 = hallucinated (float, int or bool); required with a .npy, overrides the stored labels otherwise");
    private readonly Option<string> _out = Opt.Out("DIR", "folder for the results");
    private readonly Option<string?> _data = Opt.Text("--data", "FILE.jsonl",
        "the probing rows the activations were collected on (as for 'score', same --samples), for the surface baseline when the activations carry no answers");
    private readonly Option<int?> _samples = Samples();
    private readonly Option<string?> _groups = Opt.Text("--groups", "FILE.npy", "an integer item id per row, for --group-folds item without --data");
    private readonly ProbeOptionSet _probe = new();
    public IEnumerable<Symbol> Symbols => [_activations, _labels, _out, _data, _samples, _groups, .. _probe.Symbols];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        string activations = args.GetValue(_activations)!;
        string? labels = args.GetValue(_labels);
        string outDir = args.GetValue(_out)!;
        string? data = args.GetValue(_data);
        int? samples = args.GetValue(_samples);
        string? groups = args.GetValue(_groups);
        var options = _probe.Read(args);
        if (samples != null && data == null) throw new UserError("probe: --samples applies to --data; give the jsonl the activations came from");
        if (groups != null && !options.GroupFolds) throw new UserError("probe: --groups applies to --group-folds item; add it or drop --groups");

        var set = ActivationSet.Load(activations, labels);
        IReadOnlyList<long>? items = null;
        if (data != null)
        {
            var rows = ProbingData.Load(data, samples, skipBad: false);
            // A .npy carries no row ids: its rows are the data's rows in order, all of them.
            if (activations.EndsWith(".npy", StringComparison.OrdinalIgnoreCase) && rows.Rows.Count != set.Rows)
                throw new UserError($"{data}: {rows.Rows.Count} rows but {activations} has {set.Rows}; give the data (and --samples) the activations were collected on");
            set = set.WithAnswers(rows, activations);
            if (options.GroupFolds) items = rows.ItemIds(set.RowIds);
        }
        if (groups != null) items = ReadGroupsNpy(groups, set.Rows);
        var run = ProbeRun.Execute(set, options, items);
        run.Write(outDir, new ProbeInputs(activations, labels), Plots.Writer);
        Report(run, outDir, stdout);
        return 0;
    }

    /// <summary>--samples, as <c>score</c> and <c>probe</c> both read it.</summary>
    internal static Option<int?> Samples() => Opt.IntOrNull("--samples", "N",
        "keep the first N rows, like the reference's max_samples (an HaluEval item is two rows: the paper's 292 = 146 items)", min: 1);

    /// <summary>The probing options shared with <c>score</c>.</summary>
    internal sealed class ProbeOptionSet
    {
        private readonly Option<int> _folds = Opt.Int("--folds", "K", 5, "cross-validation folds, shuffled from --seed", min: 2);
        private readonly Option<int> _seed = Opt.Int("--seed", "S", 42, "seed of the fold shuffle and the control task's labels");
        private readonly Option<string> _groupFolds = Opt.Choice("--group-folds", "row",
            "row (as the paper): rows are split independently; item: the rows of one item (same context and question: " +
            "a gold and a hallucinated answer) stay in one fold, so a probe cannot score by recognising a training row's twin. " +
            "Items come from --data, or from --groups FILE.npy", "row", "item");
        private readonly Option<string> _solver = Opt.Choice("--solver", "exact",
            "exact: L2-regularised logistic regression solved to convergence by Newton (L2 1e-2 on standardised features, bias unpenalised); " +
            "reference: the authors' AdamW, lr 1e-2, wd 1e-3, 200 epochs, batch 512", "exact", "reference");
        private readonly Option<bool> _noControl = Opt.Flag("--no-control", "skip the shuffled-label control task (halves the time)");
        private readonly Option<int> _threads = Opt.Int("--threads", "N", 0, "worker threads (0: all cores)", min: 0);

        public IEnumerable<Symbol> Symbols => [_folds, _seed, _groupFolds, _solver, _noControl, _threads];

        public ProbeOptions Read(ParseResult args) => new(
            args.GetValue(_solver) == "reference" ? ProbeSolverKind.Reference : ProbeSolverKind.Exact,
            args.GetValue(_folds), args.GetValue(_seed), !args.GetValue(_noControl), args.GetValue(_threads),
            GroupFolds: args.GetValue(_groupFolds) == "item");
    }

    private static long[] ReadGroupsNpy(string path, int rows)
    {
        var npy = Npy.Read(path);
        if (npy.Shape.Length != 1 || npy.Shape[0] != rows)
            throw new UserError($"{path}: groups must have shape ({rows},), one item id per activation row; got ({string.Join(", ", npy.Shape)})");
        return npy.Data.Select(v => v == Math.Floor(v) && double.IsFinite(v) ? (long)v
            : throw new UserError($"{path}: group ids must be integers, got {v}")).ToArray();
    }

    internal static void Report(ProbeRun run, string outDir, TextWriter stdout)
    {
        var (l, h, top) = run.TopHead();
        var inv = CultureInfo.InvariantCulture;
        stdout.WriteLine(string.Create(inv,
            $"{run.Set.Layers} layers x {run.Set.Heads} heads, {run.Set.Rows} rows, {run.Folds.Count}-fold{(run.Options.GroupFolds ? " by item" : "")} (seed {run.Options.Seed}), solver {run.Options.Solver.ToString().ToLowerInvariant()}: " +
            $"mean accuracy {run.Scores.Accuracy.Average():0.0000}, top head L{l}H{h} {top:0.0000}"));
        stdout.WriteLine(run.Caption());
        if (!run.Chance.DiffersFromChance)
            stdout.WriteLine("warning: this map is at chance level; do not read it as evidence of truthful heads");
        if (run.SurfaceWarning is { } surface) stdout.WriteLine($"warning: {surface}");
        stdout.WriteLine($"wrote {outDir}");
    }
}
