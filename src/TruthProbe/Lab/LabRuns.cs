using System.Globalization;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Numerics;
using TruthProbe.Training;

namespace TruthProbe.Lab;

/// <summary>
/// The two ways a lab model is grown, as library calls (the <c>lab</c> verbs and the demo share them):
/// pretraining a base model from scratch, and fine-tuning a descendant from a saved model.
/// </summary>
public static class LabRuns
{
    public const int EvaluationItems = 512;
    public const int ProbingEpisodes = 300;
    public const int HaluEvalItems = 300;

    public sealed record PretrainOptions(string Out, string Size = "tiny", int Seed = 1, int WorldSeed = 1, int? Steps = null, int BatchSize = 64, double? LearningRate = null, int EvaluateEvery = 0,
        IProgress<int>? StepProgress = null, double HoldPeak = 0, ReadingStopRule? HoldUntilReading = null);

    public sealed record FineTuneOptions(string Base, string Out, string Recipe, int Steps, int LoraRank = 0, int Seed = 1, int CheckpointEvery = 0, int BatchSize = 64, double? LearningRate = null,
        IProgress<int>? StepProgress = null);

    /// <summary>Default step counts per size (tiny: the measured run in docs/lab.md; small: not yet measured).</summary>
    public static int DefaultSteps(string size) => size == "small" ? 1500 : 2000;

    public static TrainingResult Pretrain(PretrainOptions o, TextWriter log)
    {
        var world = new SyntheticWorld(o.WorldSeed);
        var tokenizer = WordTokenizer.ForWorld();
        var corpus = new Corpus(world, tokenizer);
        var config = LabModelConfig.ForSize(o.Size, tokenizer.VocabSize, maxPositions: 128, WordTokenizer.BosId, WordTokenizer.EosId);
        int steps = o.Steps ?? DefaultSteps(o.Size);
        if (steps < 1) throw new UserError($"pretraining steps must be at least 1, got {steps}") { Field = "steps" };
        if (o.BatchSize < 1) throw new UserError($"pretraining batch size must be at least 1, got {o.BatchSize}") { Field = "batch" };
        var plan = new TrainingPlan(steps, o.BatchSize, o.LearningRate ?? (o.Size == "small" ? 2e-3 : 3e-3), WarmupSteps: Math.Min(100, steps / 10 + 1), HoldFraction: o.HoldPeak);
        var stop = o.HoldUntilReading;
        stop?.Validate(plan);
        var model = new TrainableLlama(config);
        model.Initialize(o.Seed);
        string hold = stop != null
            ? string.Create(CultureInfo.InvariantCulture, $", peak rate held until the reading monitor reaches {stop.Threshold:0.###} (checked every {stop.CheckEvery} steps, at most to step {stop.LatestDecayStart(plan)}), then {stop.DecaySteps} decay steps")
            : o.HoldPeak > 0 ? $", peak rate held to step {new HeldPeakSchedule(plan).DecayStart}" : "";
        log.WriteLine($"lab pretrain: {o.Size} model, {config.ParameterCount():N0} parameters, {(stop != null ? "at most " : "")}{steps} steps of batch {o.BatchSize}{hold}, seed {o.Seed}, world seed {o.WorldSeed}");

        var evaluation = LabDatasets.Evaluation(world, EvaluationItems);
        var result = Run(model, new PretrainRecipe(corpus), plan, o.Seed, evaluation, "pretrain", o.EvaluateEvery, log, o.StepProgress, stop: stop);
        var metadata = Metadata("pretrain", parent: null, o.Seed, world, plan with { Steps = result.Steps }, result, o.Size, loraRank: 0);
        if (stop != null && result.Hold is { } outcome)
        {
            metadata["hold_until_reading"] = outcome.ToJson(stop, plan.Steps);
            log.WriteLine($"  held peak ended at step {outcome.DecayStart} ({(outcome.ReachedThreshold ? "the monitor read" : "the cap")}), {result.Steps} steps in all");
        }
        LabCheckpoint.Save(o.Out, model, tokenizer, metadata);
        LabDatasets.WriteProbing(Path.Combine(o.Out, "probing.jsonl"), world, ProbingEpisodes);
        LabDatasets.WriteHaluEval(Path.Combine(o.Out, "halueval.jsonl"), world, HaluEvalItems);
        return result;
    }

    public static TrainingResult FineTune(FineTuneOptions o, TextWriter log)
    {
        var (model, tokenizer, parentMeta) = LabCheckpoint.Load(o.Base);
        parentMeta["model_sha256"] = Hashing.Sha256File(Path.Combine(o.Base, "model.safetensors"));
        int worldSeed = parentMeta["world_seed"]?.GetValue<int>() ?? throw new UserError($"{Path.Combine(o.Base, LabCheckpoint.MetadataFile)}: missing 'world_seed'");
        if (o.Steps < 1) throw new UserError($"fine-tuning steps must be at least 1, got {o.Steps}") { Field = "steps" };
        if (o.LoraRank < 0) throw new UserError($"LoRA rank must be positive (0: full fine-tuning), got {o.LoraRank}") { Field = "lora" };
        var world = new SyntheticWorld(worldSeed);
        var corpus = new Corpus(world, tokenizer);
        var recipe = Recipe.FineTune(o.Recipe, corpus);
        if (o.LoraRank > 0) model.AddLora(o.LoraRank, alpha: 2 * o.LoraRank, o.Seed);
        var plan = new TrainingPlan(o.Steps, o.BatchSize, o.LearningRate ?? (o.LoraRank > 0 ? 3e-3 : 5e-4), WarmupSteps: Math.Min(20, o.Steps / 10 + 1), WeightDecay: 0);
        log.WriteLine($"lab finetune: {o.Recipe} from {o.Base}, {(o.LoraRank > 0 ? $"LoRA rank {o.LoraRank} on q/k/v/o" : "full fine-tuning")}, {model.Parameters.TrainableCount:N0} trainable parameters, {o.Steps} steps, seed {o.Seed}");

        var evaluation = LabDatasets.Evaluation(world, EvaluationItems);
        JsonObject Meta(TrainingResult r, int steps) =>
            Metadata(o.Recipe, parentMeta, o.Seed, world, plan with { Steps = steps }, r, parentMeta["size"]?.GetValue<string>() ?? "?", o.LoraRank);
        void Checkpoint(int step)
        {
            string dir = Path.Combine(o.Out, $"step-{step:D5}");
            LabCheckpoint.Save(dir, model, tokenizer, Meta(new TrainingResult(step, double.NaN, 0, 0, null, []), step));
            log.WriteLine($"  checkpoint {dir}");
        }
        var result = Run(model, recipe, plan, o.Seed, evaluation, o.Recipe, 0, log, o.StepProgress, o.CheckpointEvery, Checkpoint);
        LabCheckpoint.Save(o.Out, model, tokenizer, Meta(result, o.Steps));
        return result;
    }

    private static TrainingResult Run(TrainableLlama model, Recipe recipe, TrainingPlan plan, int seed, IReadOnlyList<Episode> evaluation, string label,
        int evaluateEvery, TextWriter log, IProgress<int>? steps, int checkpointEvery = 0, Action<int>? onCheckpoint = null, ReadingStopRule? stop = null)
    {
        // A caller that shows its own progress (the demo's one line over all its stages) takes the steps instead of a bar.
        using var progress = new Progress(label, plan.Steps, quiet: steps != null ? true : null);
        void Point(int step, double loss, ReadingAccuracy? acc) =>
            log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  step {step,5}  loss {loss:0.000}{(acc == null ? "" : $"  held-out reading accuracy {acc.Overall:P1} (consistent {acc.Consistent:P1}, counterfactual {acc.Counterfactual:P1})")}"));
        var result = LabTrainer.Train(model, recipe, plan, seed, evaluation, (step, _) => { progress.Advance(); steps?.Report(step); }, evaluateEvery, checkpointEvery, onCheckpoint, Point, stop);
        progress.Dispose();
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {result.Steps / result.Seconds:0.0} steps/s, {result.TokensPerSecond:N0} tokens/s, {result.Seconds:0.0} s"));
        return result;
    }

    private static JsonObject Metadata(string recipe, JsonObject? parent, int seed, SyntheticWorld world, TrainingPlan plan, TrainingResult result, string size, int loraRank)
    {
        var curve = new JsonArray();
        foreach (var (step, loss, acc) in result.Curve)
            curve.Add(new JsonObject { ["step"] = step, ["loss"] = Finite(loss), ["accuracy"] = acc == null ? null : Finite(acc.Overall) });
        var lineage = new JsonArray();
        if (parent != null)
        {
            foreach (var ancestor in parent["lineage"]?.AsArray() ?? []) lineage.Add(ancestor?.DeepClone());
            lineage.Add(new JsonObject
            {
                ["recipe"] = parent["recipe"]?.DeepClone(), ["seed"] = parent["seed"]?.DeepClone(), ["steps"] = parent["steps"]?.DeepClone(),
                ["model_sha256"] = parent["model_sha256"]?.DeepClone(),
            });
        }
        return new JsonObject
        {
            ["recipe"] = recipe,
            ["code_recipe_version"] = Recipe.CodeVersion,
            ["seed"] = seed,
            ["world_seed"] = world.Seed,
            ["data_hash"] = world.Fingerprint(),
            ["size"] = size,
            ["steps"] = plan.Steps,
            ["batch_size"] = plan.BatchSize,
            ["learning_rate"] = plan.LearningRate,
            ["warmup_steps"] = plan.WarmupSteps,
            ["hold_peak"] = plan.HoldFraction,
            ["weight_decay"] = plan.WeightDecay,
            ["lora_rank"] = loraRank,
            ["lineage"] = lineage,
            ["final_loss"] = Finite(result.FinalLoss),
            ["reading_accuracy"] = result.Accuracy == null ? null : new JsonObject
            {
                ["overall"] = Finite(result.Accuracy.Overall), ["consistent"] = Finite(result.Accuracy.Consistent),
                ["counterfactual"] = Finite(result.Accuracy.Counterfactual), ["items"] = result.Accuracy.Items, ["context_facts"] = Recipe.MaxFacts,
            },
            ["train_seconds"] = Math.Round(result.Seconds, 2),
            ["tokens_per_second"] = Math.Round(result.TokensPerSecond),
            ["curve"] = curve,
            ["provenance"] = Provenance.Of([("train", seed), ("world", world.Seed)],
                parent?["model_sha256"]?.GetValue<string>() is { } parentSha ? [("parent_model", parentSha)] : []),
        };
    }

    private static JsonNode? Finite(double x) => double.IsFinite(x) ? JsonValue.Create(Math.Round(x, 5)) : null;
}
