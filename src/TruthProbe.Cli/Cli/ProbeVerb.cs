using System.Globalization;
using TruthProbe.Reports;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Probing;
using TruthProbe.Training;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe probe</c>: Truth Scores from stored activations (ours or anyone's .npy), no model needed.</summary>
public sealed class ProbeVerb : IVerb
{
    public string Name => "probe";
    public string Summary => "fit per-head probes on stored activations: Truth Scores, controls, heat map";
    public IReadOnlyCollection<string> Flags => ["no-control"];

    public string Usage => """
        usage: truthprobe probe --activations FILE [--labels FILE.npy] --out DIR [--data FILE.jsonl [--samples N]]
                                [--folds 5] [--seed 42] [--group-folds row|item [--groups FILE.npy]]
                                [--solver exact|reference] [--no-control] [--threads N]

        FILE is the activations.safetensors that 'truthprobe score' writes (tensors activations F32
        [N, L, H, D], labels, row_ids; answer texts in its metadata) or a numpy .npy of shape [N, L, H, D]
        (any float dtype), e.g. from PyTorch: np.save('acts.npy', acts.float().numpy()).

          --labels FILE.npy   labels, shape (N,), 1 = gold/truthful, 0 = hallucinated (float, int or bool);
                              required with a .npy, overrides the stored labels otherwise
          --data FILE.jsonl   the probing rows the activations were collected on (as for 'score', same
                              --samples), for the surface baseline when the activations carry no answers
          --folds K           cross-validation folds (default 5), shuffled from --seed (default 42)
          --group-folds G     row (default, as the paper): rows are split independently; item: the rows of
                              one item (same context and question: a gold and a hallucinated answer) stay
                              in one fold, so a probe cannot score by recognising a training row's twin.
                              Items come from --data, or from --groups FILE.npy (an integer id per row)
          --solver S          exact (default): L2-regularised logistic regression solved to convergence
                              by Newton (L2 1e-2 on standardised features, bias unpenalised);
                              reference: the authors' AdamW, lr 1e-2, wd 1e-3, 200 epochs, batch 512
          --no-control        skip the shuffled-label control task (halves the time)
          --threads N         worker threads (default: all cores)

        Writes scores.csv (layer,head,accuracy,precision,recall,f1,auroc,control_accuracy,selectivity;
        accuracy = mean validation accuracy over folds = the Truth Score), scores.npy (float64 [L, H]
        accuracy), probe_weights.safetensors (weight [L, H, D], bias [L, H], fitted on all rows),
        heatmap.png and manifest.json (inputs with sha256, solver, seed, folds, controls, chance test).
        """;

    public int Run(Args args)
    {
        string activations = args.Required("activations", "stored activations: .safetensors from score, or .npy [N, L, H, D]");
        string? labels = args.Get("labels");
        string outDir = args.Required("out", "folder for the results");
        string? data = args.Get("data");
        int? samples = args.Get("samples") != null ? args.Int("samples", 0) : null;
        string? groups = args.Get("groups");
        var options = ReadOptions(args);
        args.EnsureAllRead(0);
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
        Report(run, outDir);
        return 0;
    }

    /// <summary>The probing options shared with <c>score</c>.</summary>
    internal static ProbeOptions ReadOptions(Args args)
    {
        string solverName = args.Get("solver", "exact");
        var solver = solverName switch
        {
            "exact" => ProbeSolverKind.Exact,
            "reference" => ProbeSolverKind.Reference,
            _ => throw new UserError($"{args.Verb}: --solver must be 'exact' or 'reference', got '{solverName}'"),
        };
        int folds = args.Int("folds", 5);
        if (folds < 2) throw new UserError($"{args.Verb}: --folds must be at least 2, got {folds}");
        int threads = args.Int("threads", 0);
        if (threads < 0) throw new UserError($"{args.Verb}: --threads must be positive, got {threads}");
        string grouping = args.Get("group-folds", "row");
        if (grouping is not ("row" or "item")) throw new UserError($"{args.Verb}: --group-folds must be 'row' or 'item', got '{grouping}'");
        return new ProbeOptions(solver, folds, args.Int("seed", 42), !args.Flag("no-control"), threads, GroupFolds: grouping == "item");
    }

    private static long[] ReadGroupsNpy(string path, int rows)
    {
        var npy = Npy.Read(path);
        if (npy.Shape.Length != 1 || npy.Shape[0] != rows)
            throw new UserError($"{path}: groups must have shape ({rows},), one item id per activation row; got ({string.Join(", ", npy.Shape)})");
        return npy.Data.Select(v => v == Math.Floor(v) && double.IsFinite(v) ? (long)v
            : throw new UserError($"{path}: group ids must be integers, got {v}")).ToArray();
    }

    internal static void Report(ProbeRun run, string outDir)
    {
        var (l, h, top) = run.TopHead();
        var inv = CultureInfo.InvariantCulture;
        Console.Out.WriteLine(string.Create(inv,
            $"{run.Set.Layers} layers x {run.Set.Heads} heads, {run.Set.Rows} rows, {run.Folds.Count}-fold{(run.Options.GroupFolds ? " by item" : "")} (seed {run.Options.Seed}), solver {run.Options.Solver.ToString().ToLowerInvariant()}: " +
            $"mean accuracy {run.Scores.Accuracy.Average():0.0000}, top head L{l}H{h} {top:0.0000}"));
        Console.Out.WriteLine(run.Caption());
        if (!run.Chance.DiffersFromChance)
            Console.Out.WriteLine("warning: this map is at chance level; do not read it as evidence of truthful heads");
        Console.Out.WriteLine($"wrote {outDir}");
    }
}
