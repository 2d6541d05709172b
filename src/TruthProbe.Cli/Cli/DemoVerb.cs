using System.CommandLine;
using System.Diagnostics;
using TruthProbe.Common;
using TruthProbe.Demo;
using TruthProbe.Lab;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe demo</c>: grow a model family, then score, compare, drift, lineage, gates, eval and report.html.</summary>
public sealed class DemoVerb : IVerb
{
    public string Name => "demo";
    public string Summary => "grow a small model family and show the paper's story end to end (report.html)";
    public string Details => """
        Builds (first run) or reuses (later runs) a family of lab models (8 layers x 8 heads): a base,
        three descendants (chat and counterfactual fully fine-tuned for different step counts, domain
        through LoRA) and three unrelated models (the base's recipe from seeds S+1000, S+2000, S+3000).
        Then scores each on the probing set, compares the maps (intervals from a bootstrap over probing
        rows), measures weight drift and detects parents, draws the inheritance curve from the
        counterfactual descendant's checkpoints, applies the BASE model's gates to every model on harder
        HaluEval-layout items, checks the claims (PASS/FAIL/INCONCLUSIVE) and writes DIR/report.html (one
        self-contained page) next to every file its numbers come from. One progress line covers it all.
        """;

    private readonly Option<string> _out = Opt.Out("DIR", "output folder", Path.Combine("out", "demo"));
    private readonly Option<int> _seed = Opt.Int("--seed", "S", 1, "seed of the family; recorded in summary.json");
    private readonly Option<string?> _cache = Opt.Text("--cache", "DIR",
        "where families are kept (default <repo>/.cache/lab); keyed by a hash of the plan and the lab's recipe version, so a changed recipe rebuilds it");
    private readonly Option<int?> _pretrain = Opt.IntOrNull("--pretrain-steps", "N", $"cap on the base's and unrelated models' training steps: each holds its peak rate until it reads, then decays over {DemoPlan.DefaultPretrainDecaySteps} (default {DemoPlan.DefaultPretrainSteps})", min: 1);
    private readonly Option<int> _finetune = Opt.Int("--finetune-steps", "N", 150, "chat and domain descendants' steps", min: 1);
    private readonly Option<int[]?> _curve = Opt.Ints("--curve-steps", "LIST", "counterfactual checkpoints (default 0,50,100,200,400; the last is the descendant)");
    public IEnumerable<Symbol> Symbols => [_out, _seed, _cache, _pretrain, _finetune, _curve];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        string outDir = args.GetValue(_out)!;
        int seed = args.GetValue(_seed);
        string cache = args.GetValue(_cache) ?? DefaultCacheRoot();
        int? pretrain = args.GetValue(_pretrain);
        int finetune = args.GetValue(_finetune);
        int[]? curve = args.Given(_curve);
        try
        {
            if (curve != null) LabCurve.ParseSteps(curve);
        }
        catch (UserError e) when (e.Field == "steps")
        {
            throw new UserError(e.Message) { Field = "curve_steps" }; // the demo's curve steps are --curve-steps
        }

        var plan = new DemoPlan(PretrainSteps: pretrain ?? DemoPlan.DefaultPretrainSteps, ChatSteps: finetune, DomainSteps: finetune, CurveSteps: curve);
        var clock = Stopwatch.StartNew();
        DemoFamily family;
        DemoRun run;
        double buildSeconds;
        using (var progress = new StageProgress("demo", DemoRun.Stages(plan), to: stderr))
        {
            family = DemoFamily.Build(cache, plan, seed, stdout, progress);
            buildSeconds = clock.Elapsed.TotalSeconds;
            run = DemoRun.Execute(family, plan, seed, outDir, progress);
        }
        stdout.Write(run.TextSummary());
        stdout.WriteLine($"family {(family.FromCache ? "from cache" : $"built in {buildSeconds:0} s")}; analysis {(run.FromCache ? "from cache, " : "")}{clock.Elapsed.TotalSeconds - buildSeconds:0} s");
        stdout.WriteLine($"wrote {Path.Combine(outDir, "report.html")}");
        return 0;
    }

    /// <summary>&lt;repo&gt;/.cache/lab inside a checkout, else ~/.cache/truthprobe/lab.</summary>
    private static string DefaultCacheRoot() =>
        RepoPaths.RepoRoot() is { } root ? Path.Combine(root, ".cache", "lab")
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "truthprobe", "lab");
}
