using System.Text.Json.Nodes;
using System.Text.Json;
using System.Text;
using TruthProbe.Common;
using TruthProbe.Numerics;

using TruthProbe.Lab;

namespace TruthProbe.Demo;

/// <summary>
/// What the demo grows and measures: sizes, step counts and set sizes. <see cref="Default"/> is the demo's
/// (docs/demo.md: 64 heads per map, probing rows enough for a head's score to +-0.02, three unrelated models
/// as the null, evaluation items with twice the trained context); tests use a tiny one. The cache key hashes
/// the part of this plan that shapes the family with the lab's <see cref="Recipe.CodeVersion"/>, so a changed
/// recipe or plan rebuilds the family.
/// </summary>
public sealed record DemoPlan(
    string Size = "wide",
    int? PretrainSteps = DemoPlan.DefaultPretrainSteps,
    int ChatSteps = 150,
    int DomainSteps = 150,
    int LoraRank = 4,
    int[]? CurveSteps = null,
    int ProbeFolds = 5,
    int[]? EvalSeeds = null,
    double[]? LambdaCandidates = null,
    int UnrelatedModels = 3,
    int ProbingEpisodes = 2400,
    int EvalItems = 400,
    int EvalFacts = 8,
    int BootstrapRows = 100,
    DemoVlmPlan? Vlm = null,
    double PretrainHoldPeak = 0,
    double? PretrainHoldUntilReading = DemoPlan.DefaultPretrainHoldUntilReading,
    int PretrainDecaySteps = DemoPlan.DefaultPretrainDecaySteps,
    double LoraLearningRate = DemoPlan.DefaultLoraLearningRate,
    int PretrainCurriculumSteps = DemoPlan.DefaultPretrainCurriculumSteps)
{
    /// <summary>With the stop rule, the cap on a pretraining's steps (the peak held at most to the cap less the decay).</summary>
    public const int DefaultPretrainSteps = 1500;
    /// <summary>The stop rule's monitor threshold (<c>lab pretrain --hold-until-reading</c>; docs/lab.md, issue 18): every
    /// fixed hold tried left some seed on the reading plateau, so the peak is held until the model reads.</summary>
    public const double DefaultPretrainHoldUntilReading = 0.9;
    public const int DefaultPretrainDecaySteps = 200;
    /// <summary>Where the pretraining curriculum ends, fixed rather than a share of the cap (docs/lab.md: seed 1001 read after a 250-step curriculum, not after 300-375).</summary>
    public const int DefaultPretrainCurriculumSteps = 250;
    /// <summary>The LoRA descendant's peak rate: the lab's LoRA default (3e-3) moved its attention ~0.5 from the base,
    /// where lineage stops naming a parent; 1e-3 moved it 0.28 with the same reading accuracy (docs/demo.md).</summary>
    public const double DefaultLoraLearningRate = 1e-3;
    /// <summary>The pretraining stop rule, none when <see cref="PretrainHoldUntilReading"/> is null.</summary>
    public ReadingStopRule? PretrainStop => PretrainHoldUntilReading is { } p ? new ReadingStopRule(p, PretrainDecaySteps, CurriculumSteps: PretrainCurriculumSteps) : null;
    public DemoVlmPlan VlmPlan => Vlm ?? new();
    public static DemoPlan Default => new();

    /// <summary>Steps of the counterfactual descendant, whose checkpoints are the inheritance curve.</summary>
    public int[] Curve => CurveSteps ?? [0, 50, 100, 200, 400];
    public int[] Seeds => EvalSeeds ?? [1, 2, 3];
    public double[] Lambdas => LambdaCandidates ?? [1, 2, 4.5, 6];

    /// <summary>The lab's sums are width-specific, so a family grown on one vector width is not the one another width grows.</summary>
    public string CacheKey(int seed, int vectorBits)
    {
        var json = new JsonObject
        {
            ["vector_width"] = vectorBits,
            ["demo_family_version"] = DemoFamily.Version,
            ["lab_recipe_version"] = Recipe.CodeVersion,
            ["seed"] = seed,
            ["size"] = Size,
            ["pretrain_steps"] = PretrainSteps ?? LabRuns.DefaultSteps(Size),
            ["pretrain_hold_peak"] = PretrainHoldPeak,
            ["pretrain_hold_until_reading"] = PretrainHoldUntilReading,
            ["pretrain_decay_steps"] = PretrainDecaySteps,
            ["pretrain_curriculum_steps"] = PretrainCurriculumSteps,
            ["lora_learning_rate"] = LoraLearningRate,
            ["chat_steps"] = ChatSteps,
            ["domain_steps"] = DomainSteps,
            ["lora_rank"] = LoraRank,
            ["curve_steps"] = new JsonArray(Curve.Select(s => (JsonNode?)s).ToArray()),
            ["unrelated_models"] = UnrelatedModels,
            ["vlm"] = JsonSerializer.SerializeToNode(VlmPlan),
        };
        return Hashing.Sha256(Encoding.UTF8.GetBytes(json.ToJsonString()))[..16];
    }
}

/// <summary>One model of the family and where it came from.</summary>
public sealed record FamilyMember(string Name, string Dir, string? Parent, string Recipe, int Steps, int LoraRank, int Seed);

/// <summary>
/// The demo's model family: a base, three descendants (chat and counterfactual fully fine-tuned for
/// different step counts, domain through LoRA) and unrelated models (the base's recipe, other
/// initialisation seeds, the same world), the null that within-family correlations must beat. Built once
/// into a cache folder and reused while the plan and the lab's recipe version stay the same.
/// </summary>
public sealed class DemoFamily
{
    /// <summary>Bumped when what the demo grows changes in a way the plan does not show (3: lab vlm's presence-first recipe; 4: its LM's own stage 2 rate; 5: the scenes' probing rows balanced per class and answer; 6: lab vlm's stage 3, captions, which the demo leaves out).</summary>
    public const int Version = 6;
    public const string ManifestFile = "family.json";
    /// <summary>Unrelated model k's (1, 2, ...) initialisation seed is the demo seed plus k times this.</summary>
    public const int UnrelatedSeedOffset = 1000;
    /// <summary>Every model of the family learns the same world (the unrelated ones too: same facts, other weights).</summary>
    public const int WorldSeed = 1;

    public string Dir { get; }
    public IReadOnlyList<FamilyMember> Members { get; }
    public IReadOnlyList<(int Step, string Dir)> CurveCheckpoints { get; }
    public bool FromCache { get; }

    private DemoFamily(string dir, IReadOnlyList<FamilyMember> members, IReadOnlyList<(int, string)> curve, bool fromCache) =>
        (Dir, Members, CurveCheckpoints, FromCache) = (dir, members, curve, fromCache);

    public FamilyMember Base => Members[0];
    /// <summary>The models grown from the base.</summary>
    public IEnumerable<FamilyMember> Descendants => Members.Where(m => m.Parent != null);
    /// <summary>The models of other initialisations: the cross-family null.</summary>
    public IEnumerable<FamilyMember> Unrelated => Members.Skip(1).Where(m => m.Parent == null);

    public static DemoFamily Layout(string dir, DemoPlan plan, int seed)
    {
        string Sub(string name) => Path.Combine(dir, name);
        int curveLast = plan.Curve[^1];
        var members = new List<FamilyMember>
        {
            new("base", Sub("base"), null, "pretrain", plan.PretrainSteps ?? LabRuns.DefaultSteps(plan.Size), 0, seed),
            new("chat", Sub("chat"), "base", "chat", plan.ChatSteps, 0, seed),
            new("counterfactual", Sub("counterfactual"), "base", "counterfactual", curveLast, 0, seed),
            new("domain-lora", Sub("domain-lora"), "base", "domain", plan.DomainSteps, plan.LoraRank, seed),
        };
        for (int k = 1; k <= plan.UnrelatedModels; k++)
            members.Add(new($"unrelated-{k}", Sub($"unrelated-{k}"), null, "pretrain", members[0].Steps, 0, seed + k * UnrelatedSeedOffset));
        var curve = LabCurve.ParseSteps(plan.Curve).Select(s => (s, LabCurve.CheckpointDir(Sub("base"), Sub("counterfactual"), s, curveLast))).ToList();
        return new DemoFamily(dir, members, curve, fromCache: true);
    }

    /// <summary>
    /// The family for this plan and seed: read from the cache when complete, else built (about all of the first
    /// run's time). <paramref name="progress"/>, when given, must have a stage named "family".
    /// </summary>
    public static DemoFamily Build(string cacheRoot, DemoPlan plan, int seed, TextWriter log, StageProgress? progress = null)
    {
        if (plan.UnrelatedModels < 1) throw new UserError($"the demo needs at least one unrelated model, got {plan.UnrelatedModels}") { Field = "unrelated_models" };
        string dir = Path.Combine(cacheRoot, plan.CacheKey(seed, Provenance.VectorBits));
        var family = Layout(dir, plan, seed);
        if (File.Exists(Path.Combine(dir, ManifestFile)))
        {
            log.WriteLine($"family: cached in {dir}");
            return family;
        }
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); // an interrupted build: start over
        Directory.CreateDirectory(dir);
        log.WriteLine($"family: building into {dir} (first run; later runs reuse it)");
        progress?.Begin("family", FamilyProgress.TotalUnits(plan, family));
        family.Train(plan, seed, TextWriter.Synchronized(log), progress);

        var manifest = new JsonObject
        {
            ["plan"] = JsonSerializer.SerializeToNode(plan),
            ["seed"] = seed,
            ["lab_recipe_version"] = Recipe.CodeVersion,
            ["members"] = new JsonArray(family.Members.Select(m => (JsonNode?)JsonSerializer.SerializeToNode(m)).ToArray()),
            ["provenance"] = Provenance.Of(family.Members.Select(m => (m.Name, (JsonNode)m.Seed)),
                family.Members.Select(m => (m.Name, Hashing.Sha256File(Path.Combine(m.Dir, "model.safetensors"))))),
        };
        AtomicFile.WriteAllText(Path.Combine(dir, ManifestFile), manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return new DemoFamily(dir, family.Members, family.CurveCheckpoints, fromCache: false);
    }

    /// <summary>
    /// Trains every member and grows the vlm, independent jobs at once: the lab's small matrices keep a second core only
    /// partly busy inside one model (norms, attention and AdamW run on one thread), so two models side by side use the
    /// 2-core machines better than one after the other. A free lane takes the first job of the list that can start: the
    /// base, then the vlm (the longest job, so it starts as soon as the base is done, on the lane that trained it), the
    /// unrelated models (taken while the base still trains), then the fine-tunes, longest first (docs/demo.md, "The
    /// family's schedule"). Every model is trained from its own seeds by the same arithmetic whichever lane runs it (a busy
    /// kernel pool makes the GEMM run its same parts on the calling thread), so the bytes do not depend on the lanes.
    /// </summary>
    private void Train(DemoPlan plan, int seed, TextWriter log, StageProgress? progress)
    {
        var b = Base;
        var baseDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        FamilyProgress.Job Job(long units, Func<int, int> total) => new(progress?.Counter(), units, total);
        void Pretrain(FamilyMember m)
        {
            var counter = Job(FamilyProgress.PretrainUnits(plan, m.Steps), step => FamilyProgress.ExpectedTotal(plan, m.Steps, step));
            LabRuns.Pretrain(new LabRuns.PretrainOptions(m.Dir, plan.Size, m.Seed, WorldSeed: WorldSeed, Steps: m.Steps, StepProgress: counter,
                HoldPeak: plan.PretrainHoldPeak, HoldUntilReading: plan.PretrainStop), log);
            counter.Done();
        }
        DemoLanes.Job AfterBase(Action<IProgress<int>> grow, long units, int steps) => new(() =>
        {
            var counter = Job(units, _ => steps);
            grow(counter);
            counter.Done();
        }, baseDone.Task);
        var jobs = new List<DemoLanes.Job>
        {
            new(() =>
            {
                try { Pretrain(b); }
                finally { baseDone.SetResult(); } // a failed base fails its descendants too, instead of leaving them waiting
            }),
            AfterBase(counter => DemoVlm.Grow(this, plan.VlmPlan, seed, log, counter), FamilyProgress.VlmUnits(plan), FamilyProgress.VlmSteps(plan)),
        };
        jobs.AddRange(Unrelated.Select(u => new DemoLanes.Job(() => Pretrain(u))));
        foreach (var m in Descendants.OrderByDescending(m => m.Steps))
            jobs.Add(AfterBase(counter =>
            {
                if (m.Name == "counterfactual") LabCurve.FineTune(b.Dir, m.Recipe, plan.Curve, m.Dir, seed, 0, log, counter);
                else LabRuns.FineTune(new LabRuns.FineTuneOptions(b.Dir, m.Dir, m.Recipe, m.Steps, m.LoraRank, m.Seed, StepProgress: counter,
                    LearningRate: m.LoraRank > 0 ? plan.LoraLearningRate : null), log);
            }, FamilyProgress.FineTuneUnits(plan, m.Steps), m.Steps));
        DemoLanes.Run(jobs);
    }
}
