using System.Globalization;
using TruthProbe.Common;
using TruthProbe.Probing;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe probe</c>: Truth Scores from stored activations (ours or anyone's .npy), no model needed.</summary>
public sealed class ProbeVerb : IVerb
{
    public string Name => "probe";
    public string Summary => "fit per-head probes on stored activations: Truth Scores, controls, heat map";
    public IReadOnlyCollection<string> Flags => ["no-control"];

    public string Usage => """
        usage: truthprobe probe --activations FILE [--labels FILE.npy] --out DIR [--data FILE.jsonl [--samples N]]
                                [--folds 5] [--seed 42] [--solver exact|reference] [--no-control] [--threads N]

        FILE is the activations.safetensors that 'truthprobe score' writes (tensors activations F32
        [N, L, H, D], labels, row_ids; answer texts in its metadata) or a numpy .npy of shape [N, L, H, D]
        (any float dtype), e.g. from PyTorch: np.save('acts.npy', acts.float().numpy()).

          --labels FILE.npy   labels, shape (N,), 1 = gold/truthful, 0 = hallucinated (float, int or bool);
                              required with a .npy, overrides the stored labels otherwise
          --data FILE.jsonl   the probing rows the activations were collected on (as for 'score', same
                              --samples), for the surface baseline when the activations carry no answers
          --folds K           cross-validation folds (default 5), shuffled from --seed (default 42)
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
        var options = ReadOptions(args);
        args.EnsureAllRead(0);
        if (samples != null && data == null) throw new UserError("probe: --samples applies to --data; give the jsonl the activations came from");

        var set = ActivationSet.Load(activations, labels);
        if (data != null) set = set.WithAnswers(ProbingData.Load(data, samples, skipBad: false), activations);
        var run = ProbeRun.Execute(set, options);
        run.Write(outDir, new ProbeInputs(activations, labels));
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
        return new ProbeOptions(solver, folds, args.Int("seed", 42), !args.Flag("no-control"), threads);
    }

    internal static void Report(ProbeRun run, string outDir)
    {
        var (l, h, top) = run.TopHead();
        var inv = CultureInfo.InvariantCulture;
        Console.Out.WriteLine(string.Create(inv,
            $"{run.Set.Layers} layers x {run.Set.Heads} heads, {run.Set.Rows} rows, {run.Folds.Count}-fold (seed {run.Options.Seed}), solver {run.Options.Solver.ToString().ToLowerInvariant()}: " +
            $"mean accuracy {run.Scores.Accuracy.Average():0.0000}, top head L{l}H{h} {top:0.0000}"));
        Console.Out.WriteLine(run.Caption());
        if (!run.Chance.DiffersFromChance)
            Console.Out.WriteLine("warning: this map is at chance level; do not read it as evidence of truthful heads");
        Console.Out.WriteLine($"wrote {outDir}");
    }
}
