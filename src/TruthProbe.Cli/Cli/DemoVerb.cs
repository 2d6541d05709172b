using System.Diagnostics;
using TruthProbe.Demo;
using TruthProbe.Common;
using TruthProbe.Lab;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe demo</c>: grow a model family, then score, compare, drift, lineage, gates, eval and report.html.</summary>
public sealed class DemoVerb : IVerb
{
    public string Name => "demo";
    public string Summary => "grow a small model family and show the paper's story end to end (report.html)";
    public string Usage => """
        usage: truthprobe demo [--out DIR] [--seed S] [--cache DIR]
                               [--pretrain-steps N] [--finetune-steps N] [--curve-steps 0,50,100,200,400]

        Builds (first run) or reuses (later runs) a family of lab models: a base, three descendants
        (chat and counterfactual fully fine-tuned for different step counts, domain through LoRA) and an
        unrelated model (the base's recipe from seed S+1000). Then scores each on the probing set, compares
        the maps, measures weight drift and detects parents, draws the inheritance curve from the
        counterfactual descendant's checkpoints, applies the BASE model's gates to every model on the lab's
        HaluEval-layout set, checks the claims (PASS/FAIL) and writes DIR/report.html (one self-contained
        page) next to every file its numbers come from.

          --out DIR            output folder (default out/demo)
          --seed S             seed of the family (default 1); recorded in summary.json
          --cache DIR          where families are kept (default <repo>/.cache/lab); keyed by a hash of the
                               plan and the lab's recipe version, so a changed recipe rebuilds it
          --pretrain-steps N   base and unrelated training steps (default: the lab's default)
          --finetune-steps N   chat and domain descendants' steps (default 150)
          --curve-steps LIST   counterfactual checkpoints (default 0,50,100,200,400; the last is the descendant)
        """;

    public int Run(Args args)
    {
        string outDir = args.Get("out", Path.Combine("out", "demo"));
        int seed = args.Int("seed", 1);
        string cache = args.Get("cache") ?? DefaultCacheRoot();
        int? pretrain = args.Get("pretrain-steps") != null ? args.Int("pretrain-steps", 0) : null;
        int finetune = args.Int("finetune-steps", 150);
        int[]? curve = args.Get("curve-steps") != null ? args.Ints("curve-steps", []) : null;
        args.EnsureAllRead(0);
        if (pretrain is < 1) throw new UserError($"demo: --pretrain-steps must be at least 1, got {pretrain}");
        if (finetune < 1) throw new UserError($"demo: --finetune-steps must be at least 1, got {finetune}");
        if (curve != null) LabCurve.ParseSteps(curve);

        var plan = new DemoPlan(PretrainSteps: pretrain, ChatSteps: finetune, DomainSteps: finetune, CurveSteps: curve);
        var clock = Stopwatch.StartNew();
        var family = DemoFamily.Build(cache, plan, seed, Console.Out);
        double buildSeconds = clock.Elapsed.TotalSeconds;
        var run = DemoRun.Execute(family, plan, seed, outDir);
        Console.Out.Write(run.TextSummary());
        Console.Out.WriteLine($"family {(family.FromCache ? "from cache" : $"built in {buildSeconds:0} s")}; analysis {clock.Elapsed.TotalSeconds - buildSeconds:0} s");
        Console.Out.WriteLine($"wrote {Path.Combine(outDir, "report.html")}");
        return 0;
    }

    /// <summary>&lt;repo&gt;/.cache/lab inside a checkout, else ~/.cache/truthprobe/lab.</summary>
    private static string DefaultCacheRoot() =>
        RepoPaths.RepoRoot() is { } root ? Path.Combine(root, ".cache", "lab")
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "truthprobe", "lab");
}
