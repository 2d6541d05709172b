using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.Json;
using System.Text;
using TruthProbe.Common;
using TruthProbe.Numerics;

using TruthProbe.Lab;

namespace TruthProbe.Demo;

/// <summary>
/// What the demo grows: sizes and step counts. <see cref="Default"/> is the demo's; tests use a tiny one.
/// The cache key hashes this plan with the lab's <see cref="Recipe.CodeVersion"/>, so a changed recipe or
/// plan rebuilds the family.
/// </summary>
public sealed record DemoPlan(
    string Size = "tiny",
    int? PretrainSteps = null,
    int ChatSteps = 150,
    int DomainSteps = 150,
    int LoraRank = 4,
    int[]? CurveSteps = null,
    int ProbeFolds = 5,
    int[]? EvalSeeds = null,
    double[]? LambdaCandidates = null,
    DemoVlmPlan? Vlm = null)
{
    public DemoVlmPlan VlmPlan => Vlm ?? new();
    public static DemoPlan Default => new();

    /// <summary>Steps of the counterfactual descendant, whose checkpoints are the inheritance curve.</summary>
    public int[] Curve => CurveSteps ?? [0, 50, 100, 200, 400];
    public int[] Seeds => EvalSeeds ?? [1, 2, 3];
    public double[] Lambdas => LambdaCandidates ?? [1, 2, 4.5, 6];

    public string CacheKey(int seed)
    {
        var json = new JsonObject
        {
            ["demo_family_version"] = DemoFamily.Version,
            ["lab_recipe_version"] = Recipe.CodeVersion,
            ["seed"] = seed,
            ["size"] = Size,
            ["pretrain_steps"] = PretrainSteps ?? LabRuns.DefaultSteps(Size),
            ["chat_steps"] = ChatSteps,
            ["domain_steps"] = DomainSteps,
            ["lora_rank"] = LoraRank,
            ["curve_steps"] = new JsonArray(Curve.Select(s => (JsonNode?)s).ToArray()),
            ["vlm"] = JsonSerializer.SerializeToNode(VlmPlan),
        };
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(json.ToJsonString())))[..16];
    }
}

/// <summary>One model of the family and where it came from.</summary>
public sealed record FamilyMember(string Name, string Dir, string? Parent, string Recipe, int Steps, int LoraRank, int Seed);

/// <summary>
/// The demo's model family: a base, three descendants (chat and counterfactual fully fine-tuned for
/// different step counts, domain through LoRA) and an unrelated model (the base's recipe, another
/// initialisation seed, the same world). Built once into a cache folder and reused while the plan and
/// the lab's recipe version stay the same.
/// </summary>
public sealed class DemoFamily
{
    /// <summary>Bumped when what the demo grows changes in a way the plan does not show.</summary>
    public const int Version = 1;
    public const string ManifestFile = "family.json";
    /// <summary>The unrelated model's initialisation seed is the demo seed plus this.</summary>
    public const int UnrelatedSeedOffset = 1000;

    public string Dir { get; }
    public IReadOnlyList<FamilyMember> Members { get; }
    public IReadOnlyList<(int Step, string Dir)> CurveCheckpoints { get; }
    public bool FromCache { get; }

    private DemoFamily(string dir, IReadOnlyList<FamilyMember> members, IReadOnlyList<(int, string)> curve, bool fromCache) =>
        (Dir, Members, CurveCheckpoints, FromCache) = (dir, members, curve, fromCache);

    public FamilyMember Base => Members[0];
    public string ProbingPath => Path.Combine(Base.Dir, "probing.jsonl");
    public string EvalPath => Path.Combine(Base.Dir, "halueval.jsonl");

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
            new("unrelated", Sub("unrelated"), null, "pretrain", plan.PretrainSteps ?? LabRuns.DefaultSteps(plan.Size), 0, seed + UnrelatedSeedOffset),
        };
        var curve = LabCurve.ParseSteps(plan.Curve).Select(s => (s, LabCurve.CheckpointDir(Sub("base"), Sub("counterfactual"), s, curveLast))).ToList();
        return new DemoFamily(dir, members, curve, fromCache: true);
    }

    /// <summary>The family for this plan and seed: read from the cache when complete, else built (about all of the first run's time).</summary>
    public static DemoFamily Build(string cacheRoot, DemoPlan plan, int seed, TextWriter log)
    {
        string dir = Path.Combine(cacheRoot, plan.CacheKey(seed));
        var family = Layout(dir, plan, seed);
        if (File.Exists(Path.Combine(dir, ManifestFile)))
        {
            log.WriteLine($"family: cached in {dir}");
            return family;
        }
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); // an interrupted build: start over
        Directory.CreateDirectory(dir);
        log.WriteLine($"family: building into {dir} (first run; later runs reuse it)");
        var b = family.Base;
        LabRuns.Pretrain(new LabRuns.PretrainOptions(b.Dir, plan.Size, b.Seed, WorldSeed: 1, Steps: b.Steps), log);
        foreach (var m in family.Members.Where(m => m.Parent == "base" && m.Name != "counterfactual"))
            LabRuns.FineTune(new LabRuns.FineTuneOptions(b.Dir, m.Dir, m.Recipe, m.Steps, m.LoraRank, m.Seed), log);
        LabCurve.FineTune(b.Dir, "counterfactual", plan.Curve, family.Members.First(m => m.Name == "counterfactual").Dir, seed, 0, log);
        var u = family.Members.First(m => m.Name == "unrelated");
        LabRuns.Pretrain(new LabRuns.PretrainOptions(u.Dir, plan.Size, u.Seed, WorldSeed: 1, Steps: u.Steps), log);
        DemoVlm.Grow(family, plan.VlmPlan, seed, log);

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
}
