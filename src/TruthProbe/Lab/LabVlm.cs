using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text.Json;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Imaging;
using TruthProbe.Numerics;
using TruthProbe.Training;

namespace TruthProbe.Lab;

/// <summary>
/// <c>lab vlm</c>: the LLaVA recipe at lab scale. A CLIP-style tower over the synthetic scenes (a seeded random one, or
/// one pre-trained here on the class and colour of each grid cell), then frozen; stage 1 trains the 2-layer projector (and the
/// embeddings of the words the base never saw) on object-presence questions with the LM frozen; stage 2 trains projector
/// and LM (full, or LoRA) on presence questions and the base's own text episodes, so its reading skill is kept; stage 3
/// brings the scenes' captions in, once the answers use the image. Written as an llava-hf folder (<see cref="LabVlmFolder"/>).
/// </summary>
public static class LabVlm
{
    /// <param name="Base">the base lab model folder (<c>lab pretrain</c>): the LM the descendant grows from.</param>
    /// <param name="Scenes">a <c>lab scenes</c> folder: its image size is the tower's, its POPE files are the held-out test.</param>
    /// <param name="Tower">"random" (frozen as initialised) or "pretrained" (each cell's class and colour first, then frozen).</param>
    /// <param name="LoraRank">stage 2: 0 for full fine-tuning, else LoRA of this rank on q/k/v/o.</param>
    /// <param name="ReadingItems">held-out text episodes that measure the reading skill before and after.</param>
    /// <param name="Stage1Mix">stage 1's shares of (image questions, captions, text episodes).</param>
    /// <param name="Stage2Mix">stage 2's shares of (image questions, captions, text episodes).</param>
    /// <param name="AttributeShare">share of the image questions that ask an object's colour or a colour's object; the rest ask presence (the image probing rows ask presence since demo family version 5).</param>
    /// <param name="Stage2LearningRate">stage 2's peak learning rate with full fine-tuning (LoRA uses 2e-3).</param>
    /// <param name="LmLearningRate">stage 2's peak rate for the LM's trainable weights (full or adapters) alone; null: the stage's rate. The projector keeps the stage's rate.</param>
    /// <param name="Stage3Steps">steps of a third stage after stage 2 (0: none), at stage 2's rates on <paramref name="Stage3Mix"/>: captions once the answers use the image.</param>
    /// <param name="Stage3Mix">stage 3's shares of (image questions, captions, text episodes).</param>
    /// <param name="Stage3NewWords">with adapters, stage 3 also trains the new words' embedding rows (the head is tied), as stage 1 does.</param>
    public sealed record Options(string Base, string Scenes, string Out, VlmPromptFormat Prompts, int Seed = 1, string Tower = "pretrained",
        int TrainScenes = 2000, int TowerSteps = 300, int Stage1Steps = 400, int Stage2Steps = 900, int BatchSize = 32, int LoraRank = 0,
        int TowerHidden = 64, int TowerLayers = 2, int TowerHeads = 4, int ReadingItems = LabRuns.EvaluationItems,
        Mix? Stage1Mix = null, Mix? Stage2Mix = null, double AttributeShare = 0, double Stage2LearningRate = 3e-3,
        double? LmLearningRate = null, int Stage3Steps = 600, Mix? Stage3Mix = null, bool Stage3NewWords = false,
        IProgress<int>? StepProgress = null);

    /// <summary>Shares of a stage's batches (relative weights, not necessarily summing to 1).</summary>
    public sealed record Mix(double Questions, double Captions, double Text);

    /// <summary>Stage 2's peak rate for the projector: 2e-3 with adapters, the options' rate with full fine-tuning.</summary>
    private static double Stage2Rate(Options o) => o.LoraRank > 0 ? 2e-3 : o.Stage2LearningRate;

    /// <summary>Stage 2's peak rate for the LM's trainable weights: its own when given, else the stage's.</summary>
    private static double LmRate(Options o) => o.LmLearningRate ?? Stage2Rate(o);

    /// <summary>The measured defaults (docs/lab.md): presence questions only in stage 1; stage 2 keeps the reading skill with 15% text episodes.</summary>
    public static readonly Mix DefaultStage1Mix = new(1, 0, 0), DefaultStage2Mix = new(0.85, 0, 0.15), DefaultStage3Mix = new(0.4, 0.45, 0.15);

    /// <summary>Held-out POPE accuracy per setting (greedy first token: "Yes", "No", or anything else counted wrong).</summary>
    public sealed record PopeAccuracy(string Setting, int Questions, double Accuracy, double YesRate);

    public sealed record Result(IReadOnlyList<PopeAccuracy> Pope, double TowerCellAccuracy, ReadingAccuracy BaseReading, ReadingAccuracy Reading,
        double TowerSeconds, double Stage1Seconds, double Stage2Seconds, double Stage3Seconds, double Stage1Loss, double Stage2Loss, double Stage3Loss);

    public const int ImagesPerEvalBatch = 64;
    private const string EmbeddingName = "model.embed_tokens.weight";

    public static Result Train(Options o, TextWriter log)
    {
        if (o.Tower is not ("random" or "pretrained")) throw new UserError($"tower must be random or pretrained, got '{o.Tower}'") { Field = "tower" };
        foreach (var (value, name) in new[] { (o.TrainScenes, "train-scenes"), (o.BatchSize, "batch"), (o.Stage1Steps, "stage1-steps"), (o.Stage2Steps, "stage2-steps") })
            if (value < 1) throw new UserError($"{name} must be at least 1, got {value}") { Field = name };
        if (o.Stage3Steps < 0) throw new UserError($"stage3-steps must be 0 (no third stage) or more, got {o.Stage3Steps}") { Field = "stage3-steps" };
        if (o.AttributeShare is < 0 or > 1) throw new UserError($"attribute share must be between 0 and 1, got {o.AttributeShare}") { Field = "attribute-share" };
        if (!(o.Stage2LearningRate > 0)) throw new UserError($"stage 2 learning rate must be positive, got {o.Stage2LearningRate}") { Field = "stage2-lr" };
        if (o.LmLearningRate is { } lmRate && !(lmRate > 0)) throw new UserError($"the LM's stage 2 learning rate must be positive, got {lmRate}; pass --lm-lr with a rate such as 2e-4") { Field = "lm-lr" };
        foreach (var (mix, name) in new[] { (o.Stage1Mix, "stage1-mix"), (o.Stage2Mix, "stage2-mix"), (o.Stage3Mix, "stage3-mix") })
            if (mix is { } m && (m.Questions < 0 || m.Captions < 0 || m.Text < 0 || !(m.Questions + m.Captions + m.Text > 0)))
                throw new UserError($"{name} shares must be non-negative with a positive sum, got {m}") { Field = name };
        if (o.LoraRank < 0) throw new UserError($"LoRA rank must be positive (0: full fine-tuning), got {o.LoraRank}") { Field = "lora" };
        var (baseModel, baseTokenizer, baseMeta) = LabCheckpoint.Load(o.Base);
        string baseSha = Hashing.Sha256File(Path.Combine(o.Base, "model.safetensors"));
        int worldSeed = baseMeta["world_seed"]?.GetValue<int>() ?? throw new UserError($"{Path.Combine(o.Base, LabCheckpoint.MetadataFile)}: missing 'world_seed'");
        var (size, sceneSeed) = ReadManifest(o.Scenes);
        if (size % SceneWorld.Grid != 0)
            throw new UserError($"{Path.Combine(o.Scenes, "manifest.json")}: scene size {size} is not a multiple of {SceneWorld.Grid}; the tower's patch is one grid cell, write the scenes at a multiple of {SceneWorld.Grid} (e.g. 64)") { Field = "scenes" };

        var text = new VlmText(baseTokenizer, o.Prompts);
        var lm = GrowVocabulary(baseModel, text, o.Seed);
        var shape = new ClipShape(size, size / SceneWorld.Grid, o.TowerHidden, o.TowerHeads, o.TowerLayers, 4 * o.TowerHidden, lm.Config.DModel, ClassLabels + ColourLabels);
        var clip = new TrainableClip(shape);
        clip.Initialize(o.Seed);
        var preprocessor = new ClipPreprocessor(LabVlmFolder.Preprocessor(size));
        // Training scenes come from their own stream, never the held-out folder's.
        var train = SceneDatasets.Sample(o.TrainScenes, unchecked(sceneSeed + 1_000_003UL + (ulong)o.Seed));
        float[] Pixels(Scene s) => preprocessor.Preprocess(SceneWorld.Render(s, size));
        log.WriteLine($"lab vlm: {o.Tower} tower ({shape.Layers} layers, width {shape.Hidden}, {shape.Patches} patches of {shape.PatchSize}px over {size}x{size}), " +
            $"{text.NewWords.Count} new words + {VlmText.ImageToken}, {o.TrainScenes} training scenes, seed {o.Seed}");

        var clock = Stopwatch.StartNew();
        double presence = double.NaN;
        if (o.Tower == "pretrained") presence = PretrainTower(clip, train, Pixels, o, log);
        double towerSeconds = clock.Elapsed.TotalSeconds;
        clip.SetTowerTrainable(tower: false, projector: true);
        var cache = TowerFeatures(clip, train.Scenes.Select(Pixels), train.Scenes.Count);

        var world = new SyntheticWorld(worldSeed);
        var corpus = new Corpus(world, text.Tokenizer);
        var evaluation = LabDatasets.Evaluation(world, o.ReadingItems);
        var baseReading = LabTrainer.Evaluate(lm, corpus, evaluation);
        var session = new Session(lm, clip, text, train, cache, new PretrainRecipe(corpus), o.AttributeShare);

        clock.Restart();
        // Stage 1: the LM frozen but for the new words' embedding rows (LLaVA trains new token rows with the projector).
        lm.Parameters.SetTrainable(t => t.Name == EmbeddingName);
        double loss1 = session.Run("stage 1", o.Stage1Steps, o.BatchSize, o.Seed, 2e-3, o.Stage1Mix ?? DefaultStage1Mix, log, 2e-3, o.StepProgress, o.TowerSteps);
        double stage1Seconds = clock.Elapsed.TotalSeconds;

        clock.Restart();
        if (o.LoraRank > 0) lm.AddLora(o.LoraRank, alpha: 2 * o.LoraRank, o.Seed);
        else lm.Parameters.SetTrainable(_ => true);
        double loss2 = session.Run("stage 2", o.Stage2Steps, o.BatchSize, o.Seed + 1, Stage2Rate(o), o.Stage2Mix ?? DefaultStage2Mix, log, LmRate(o), o.StepProgress, o.TowerSteps + o.Stage1Steps);
        double stage2Seconds = clock.Elapsed.TotalSeconds;

        clock.Restart();
        // Stage 3: captions join once stage 2's answers use the image; in stage 2 from its start they delayed that and
        // the captions named the frequent classes whatever the scene (docs/lab.md). 300 steps left captions that stopped
        // after "There is"; 600 name the scene's objects. Optionally the new words' rows train again: the head is tied,
        // and a caption's words ("top", "left", the singular class names) were never an answer in stages 1-2.
        if (o.Stage3NewWords && o.LoraRank > 0 && o.Stage3Steps > 0) lm.Parameters.SetTrainable(t => t.Trainable || t.Name == EmbeddingName);
        double loss3 = o.Stage3Steps == 0 ? double.NaN
            : session.Run("stage 3", o.Stage3Steps, o.BatchSize, o.Seed + 2, Stage2Rate(o), o.Stage3Mix ?? DefaultStage3Mix, log, LmRate(o), o.StepProgress, o.TowerSteps + o.Stage1Steps + o.Stage2Steps);
        double stage3Seconds = clock.Elapsed.TotalSeconds;

        var pope = SceneDatasets.PopeSettings.Select(setting => session.Pope(o.Scenes, setting, preprocessor)).ToList();
        var reading = LabTrainer.Evaluate(lm, corpus, evaluation);
        foreach (var p in pope) log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  held-out POPE {p.Setting,-11} {p.Accuracy:P1} of {p.Questions} (yes rate {p.YesRate:P1})"));
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  text reading accuracy {reading.Overall:P1} (base {baseReading.Overall:P1}); tower {towerSeconds:0.0} s, stage 1 {stage1Seconds:0.0} s, stage 2 {stage2Seconds:0.0} s, stage 3 {stage3Seconds:0.0} s"));

        var result = new Result(pope, presence, baseReading, reading, towerSeconds, stage1Seconds, stage2Seconds, stage3Seconds, loss1, loss2, loss3);
        LabVlmFolder.Write(o.Out, lm.MergeLora(), clip, text, Metadata(o, baseMeta, baseSha, worldSeed, sceneSeed, result));
        return result;
    }

    /// <summary>
    /// The base LM with the grown vocabulary: base rows copied; a new word with a base counterpart (its plural "lamps",
    /// its lower case "the") starts as that row, so the question's class is told apart from step 0; any other new row
    /// is the base rows' mean plus N(0, 0.02) (seeded).
    /// </summary>
    private static TrainableLlama GrowVocabulary(TrainableLlama baseModel, VlmText text, int seed)
    {
        // Room for the caption prompt, 16 image rows and the longest caption; RoPE has no learned positions to grow.
        var config = baseModel.Config with { Vocab = text.Tokenizer.VocabSize, MaxContext = Math.Max(baseModel.Config.MaxContext, 256) };
        var lm = new TrainableLlama(config);
        var rng = new SeededSystemRandom(seed * 7 + 3);
        int d = config.DModel, baseVocab = baseModel.Config.Vocab;
        var baseIds = Enumerable.Range(0, baseVocab).ToDictionary(text.Tokenizer.Word, StringComparer.Ordinal);
        foreach (var t in lm.Parameters.Tensors)
        {
            var from = baseModel.Parameters.Value(t.Name);
            var to = lm.Parameters.Value(t.Name);
            from.CopyTo(to);
            if (from.Length == to.Length) continue;
            var mean = new float[d];
            for (int r = 0; r < baseVocab; r++) TensorPrimitives.Add(mean, from.Slice(r * d, d), mean);
            TensorPrimitives.Divide(mean, baseVocab, mean);
            for (int r = baseVocab; r < config.Vocab; r++)
            {
                string word = text.Tokenizer.Word(r);
                var row = to.Slice(r * d, d);
                if (baseIds.TryGetValue(word + "s", out int twin) || baseIds.TryGetValue(word.ToLowerInvariant(), out twin)) from.Slice(twin * d, d).CopyTo(row);
                else for (int i = 0; i < d; i++) row[i] = mean[i] + (float)(0.02 * TrainableLlama.Gaussian(rng));
            }
        }
        return lm;
    }

    /// <summary>Per cell: its object's class or "empty", and its colour or "none" (two softmax groups of the tower's head).</summary>
    private const int ClassLabels = 16 + 1, ColourLabels = 12 + 1;

    /// <summary>
    /// Pre-trains the tower on the scenes' ground truth: each patch (one grid cell) labelled with the class and colour of
    /// its object, cross-entropy over each group, AdamW. Returns the held-out share of cells whose class is right.
    /// </summary>
    private static double PretrainTower(TrainableClip clip, SceneDatasets train, Func<Scene, float[]> pixels, Options o, TextWriter log)
    {
        var shape = clip.Shape;
        clip.SetTowerTrainable(tower: true, projector: false);
        var optimizer = new AdamW(clip.Parameters, weightDecay: 0);
        var schedule = new LearningRateSchedule(2e-3, o.TowerSteps / 10 + 1, o.TowerSteps);
        int batch = 64, heldOut = Math.Min(256, train.Scenes.Count / 5);
        var fit = train.Scenes.Take(train.Scenes.Count - heldOut).ToList();
        var input = new float[batch * shape.PixelValues];
        var dLogits = new float[batch * shape.Patches * shape.Labels];
        // A caller that shows its own progress (the demo's one line) takes the steps instead of a bar.
        using (var progress = new Progress("tower", o.TowerSteps, quiet: o.StepProgress != null ? true : null))
            for (int step = 0; step < o.TowerSteps; step++)
            {
                var rng = Corpus.StepRandom(o.Seed + 7, step);
                var scenes = Enumerable.Range(0, batch).Select(_ => fit[rng.Next(fit.Count)]).ToList();
                for (int b = 0; b < batch; b++) pixels(scenes[b]).CopyTo(input, b * shape.PixelValues);
                clip.Parameters.ZeroGrads();
                clip.TowerForward(input, batch);
                clip.CellLogits().CopyTo(dLogits);
                for (int b = 0; b < batch; b++)
                    for (int cell = 0; cell < shape.Patches; cell++)
                    {
                        var (cls, colour) = CellLabel(scenes[b], cell);
                        var row = dLogits.AsSpan((b * shape.Patches + cell) * shape.Labels, shape.Labels);
                        SoftmaxGradient(row[..ClassLabels], cls, batch * shape.Patches);
                        SoftmaxGradient(row[ClassLabels..], colour, batch * shape.Patches);
                    }
                clip.CellBackward(dLogits);
                optimizer.ClipGradients(1.0);
                optimizer.Step(schedule.At(step));
                progress.Advance();
                o.StepProgress?.Report(step + 1);
            }
        int right = 0, total = 0;
        foreach (var chunk in train.Scenes.Skip(train.Scenes.Count - heldOut).Chunk(batch))
        {
            for (int b = 0; b < chunk.Length; b++) pixels(chunk[b]).CopyTo(input, b * shape.PixelValues);
            clip.TowerForward(input, chunk.Length);
            var logits = clip.CellLogits();
            for (int b = 0; b < chunk.Length; b++)
                for (int cell = 0; cell < shape.Patches; cell++, total++)
                    if (TensorPrimitives.IndexOfMax(logits.Slice((b * shape.Patches + cell) * shape.Labels, ClassLabels)) == CellLabel(chunk[b], cell).Class) right++;
        }
        double accuracy = (double)right / total;
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  tower pre-training: {o.TowerSteps} steps, held-out cell class accuracy {accuracy:P1} over {heldOut} scenes"));
        return accuracy;
    }

    private static (int Class, int Colour) CellLabel(Scene scene, int cell)
    {
        foreach (var o in scene.Objects) if (o.Cell == cell) return (o.Class, o.Colour);
        return (ClassLabels - 1, ColourLabels - 1);
    }

    /// <summary>In place: softmax(logits) − onehot(target), divided by <paramref name="count"/> (the mean over cells).</summary>
    private static void SoftmaxGradient(Span<float> logits, int target, int count)
    {
        TensorPrimitives.SoftMax(logits, logits);
        logits[target] -= 1;
        TensorPrimitives.Divide(logits, count, logits);
    }

    /// <summary>The frozen tower's selected features [scenes·patches, hidden], computed once (stages 1 and 2 never change them).</summary>
    private static float[] TowerFeatures(TrainableClip clip, IEnumerable<float[]> images, int count)
    {
        var shape = clip.Shape;
        int rows = shape.Patches * shape.Hidden;
        var cache = new float[count * rows];
        var input = new float[ImagesPerEvalBatch * shape.PixelValues];
        int done = 0;
        foreach (var chunk in images.Chunk(ImagesPerEvalBatch))
        {
            for (int b = 0; b < chunk.Length; b++) chunk[b].CopyTo(input, b * shape.PixelValues);
            clip.TowerForward(input, chunk.Length).CopyTo(cache.AsSpan(done * rows));
            done += chunk.Length;
        }
        return cache;
    }

    /// <summary>The LM, the tower's cached features and the projector, trained together on mixed batches.</summary>
    private sealed class Session(TrainableLlama lm, TrainableClip clip, VlmText text, SceneDatasets train, float[] cache, Recipe textRecipe, double attributeShare)
    {
        private readonly ClipShape _shape = clip.Shape;

        /// <summary>One stage; <paramref name="mix"/> = shares of (questions, captions, text episodes). Returns the last smoothed loss.</summary>
        /// <param name="learningRate">the projector's peak rate.</param>
        /// <param name="lmRate">the LM's peak rate (its trainable weights: the new rows, all, or adapters).</param>
        /// <param name="report">when given, takes the running step count (<paramref name="before"/> plus this stage's) instead of a bar.</param>
        public double Run(string label, int steps, int batchSize, int seed, double learningRate, Mix mix, TextWriter log, double lmRate, IProgress<int>? report, int before)
        {
            var lmOptimizer = new AdamW(lm.Parameters, weightDecay: 0);
            var clipOptimizer = new AdamW(clip.Parameters, weightDecay: 0);
            var schedule = new LearningRateSchedule(learningRate, steps / 10 + 1, steps);
            var lmSchedule = schedule with { Peak = lmRate };
            // The embedding trains beside frozen base weights (stage 1; stage 3 with adapters): only its new words' rows move.
            bool onlyNewRows = lm.Parameters.Tensors.Any(t => t.Trainable && t.Name == EmbeddingName) && lm.Parameters.Tensors.Any(t => !t.Trainable);
            double smoothed = double.NaN, lmNorm = 0, projectorNorm = 0;
            var probe = ImageProbe(seed);
            using (var progress = new Progress(label, steps, quiet: report != null ? true : null))
                for (int step = 0; step < steps; step++)
                {
                    if (step % Math.Max(1, steps / 4) == 0) LogReliance(label, step, probe, lmNorm, projectorNorm, log);
                    var rng = Corpus.StepRandom(seed, step);
                    var samples = new List<(Sequence Sequence, int Scene)>(batchSize);
                    for (int i = 0; i < batchSize; i++) samples.Add(Sample(rng, mix, steps));
                    double loss = Step(samples, cache, out _);
                    if (!double.IsFinite(loss)) throw new UserError($"lab vlm {label} diverged at step {step + 1} (loss {loss}); lower the learning rate (peak {learningRate:G3})");
                    lm.Backward(_dFeatures);
                    clip.Backward(_dFeatures);
                    // The base's rows keep their values (zero gradient, zero Adam update).
                    if (onlyNewRows) lm.Parameters.Grad(lm.Parameters.IndexOf(EmbeddingName))[..(text.BaseVocab * lm.Config.DModel)].Clear();
                    lmNorm = lmOptimizer.ClipGradients(1.0);
                    projectorNorm = clipOptimizer.ClipGradients(1.0);
                    lmOptimizer.Step(lmSchedule.At(step));
                    clipOptimizer.Step(schedule.At(step));
                    smoothed = double.IsNaN(smoothed) ? loss : 0.95 * smoothed + 0.05 * loss;
                    progress.Advance();
                    report?.Report(before + step + 1);
                }
            LogReliance(label, steps, probe, lmNorm, projectorNorm, log);
            log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {label}: {steps} steps of batch {batchSize}, loss {smoothed:0.000}, {lm.Parameters.TrainableCount + clip.Parameters.TrainableCount:N0} trainable parameters"));
            return smoothed;
        }

        /// <summary>
        /// A fixed batch of presence questions (half Yes) about their own scenes, and the same questions shown the next
        /// question's scene: the loss gap between the two says how much the answers use the image (0: not at all). The
        /// same for the captions of those scenes.
        /// </summary>
        private (List<(Sequence, int)> Questions, List<(Sequence, int)> Captions) ImageProbe(int seed)
        {
            var rng = new SeededSystemRandom(seed * 31 + 7);
            var questions = new List<(Sequence, int)>(ImagesPerEvalBatch);
            for (int i = 0; i < ImagesPerEvalBatch; i++)
            {
                int id = rng.Next(train.Scenes.Count);
                var scene = train.Scenes[id];
                var absent = Enumerable.Range(0, SceneWorld.Classes.Length).Where(c => !scene.Has(c)).ToList();
                bool yes = i % 2 == 0;
                int cls = yes ? scene.Objects[rng.Next(scene.Objects.Count)].Class : absent[rng.Next(absent.Count)];
                questions.Add((text.Question(cls, yes, _shape.Patches), id));
            }
            return (questions, [.. questions.Select(q => (text.Caption(train.Scenes[q.Item2], _shape.Patches), q.Item2))]);
        }

        private void LogReliance(string label, int step, (List<(Sequence, int)> Questions, List<(Sequence, int)> Captions) probe, double lmNorm, double projectorNorm, TextWriter log)
        {
            (double Own, double Other) Losses(List<(Sequence, int)> seen) =>
                (Step(seen, cache, out _), Step([.. seen.Select((s, i) => (s.Item1, seen[(i + 1) % seen.Count].Item2))], cache, out _));
            var (question, caption) = (Losses(probe.Questions), Losses(probe.Captions));
            log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {label} step {step}: presence loss {question.Own:0.000} with its own images, {question.Other:0.000} with another scene's; caption loss {caption.Own:0.000} / {caption.Other:0.000}; gradient norm LM {lmNorm:0.000}, projector {projectorNorm:0.000}"));
        }

        private float[] _features = [], _dFeatures = [], _selected = [];

        /// <summary>Forward of one batch (image rows from the cache through the projector, spliced in); zeroes the gradients first.</summary>
        /// <param name="towerFeatures">the tower's features of the scenes the samples name, [scenes·patches, hidden].</param>
        private double Step(IReadOnlyList<(Sequence Sequence, int Scene)> samples, float[] towerFeatures, out TrainingBatch batch)
        {
            batch = Corpus.Batch(samples.Select(s => s.Sequence).ToList());
            var rows = new List<int>();
            for (int i = 0; i < batch.Tokens.Length; i++) if (batch.Tokens[i] == text.ImageId) rows.Add(i);
            var scenes = samples.Where(s => s.Scene >= 0).Select(s => s.Scene).ToList();
            int perImage = _shape.Patches * _shape.Hidden, width = lm.Config.DModel;
            if (rows.Count != scenes.Count * _shape.Patches) throw new InvalidOperationException("image rows do not match the images of the batch");
            Grow(ref _selected, scenes.Count * perImage);
            Grow(ref _features, rows.Count * width);
            Grow(ref _dFeatures, rows.Count * width);
            for (int i = 0; i < scenes.Count; i++) towerFeatures.AsSpan(scenes[i] * perImage, perImage).CopyTo(_selected.AsSpan(i * perImage));
            clip.Project(_selected, rows.Count).CopyTo(_features);
            lm.Parameters.ZeroGrads();
            clip.Parameters.ZeroGrads();
            return lm.Forward(batch, out _, out _, new EmbeddingSplice([.. rows], _features));
        }

        private static void Grow(ref float[] buffer, int length)
        {
            if (buffer.Length < length) buffer = new float[length];
        }

        private (Sequence, int) Sample(Random rng, Mix mix, int steps)
        {
            double roll = rng.NextDouble() * (mix.Questions + mix.Captions + mix.Text);
            if (roll >= mix.Questions + mix.Captions) return (textRecipe.Sample(rng, steps, steps), -1);
            int id = rng.Next(train.Scenes.Count);
            var scene = train.Scenes[id];
            if (roll >= mix.Questions) return (text.Caption(scene, _shape.Patches), id);
            if (rng.NextDouble() < attributeShare) return (text.Attribute(scene, rng, _shape.Patches), id);
            if (rng.Next(2) == 0) return (text.Question(scene.Objects[rng.Next(scene.Objects.Count)].Class, true, _shape.Patches), id);
            // Negatives as POPE draws them, a third each: a random absent class, a frequent one, one that co-occurs with the scene's.
            var absent = Enumerable.Range(0, SceneWorld.Classes.Length).Where(c => !scene.Has(c)).ToList();
            var ranked = rng.Next(3) switch
            {
                0 => absent,
                1 => absent.OrderByDescending(c => train.Frequency[c]).ThenBy(c => c).Take(3).ToList(),
                _ => absent.OrderByDescending(c => scene.Objects.Sum(x => train.CoOccurrence[x.Class, c])).ThenBy(c => c).Take(3).ToList(),
            };
            return (text.Question(ranked[rng.Next(ranked.Count)], false, _shape.Patches), id);
        }

        /// <summary>Held-out POPE of one setting of the scenes folder, the first greedy token read as the answer.</summary>
        public PopeAccuracy Pope(string scenesDir, string setting, ClipPreprocessor preprocessor)
        {
            string path = Path.Combine(scenesDir, $"pope_{setting}.jsonl");
            var questions = ReadPope(path);
            var images = questions.Select(q => q.Image).Distinct().ToList();
            var index = images.Select((name, i) => (name, i)).ToDictionary(x => x.name, x => x.i);
            var features = TowerFeatures(clip, images.Select(name => preprocessor.Preprocess(ImageFile.Load(Path.Combine(scenesDir, "images", name)))), images.Count);
            int right = 0, yes = 0;
            foreach (var chunk in questions.Chunk(ImagesPerEvalBatch))
            {
                var samples = chunk.Select(q =>
                {
                    var ids = text.Prompt(text.Prompts.Question(q.Text), _shape.Patches);
                    ids.Add(text.YesId);
                    var weights = new float[ids.Count];
                    weights[^1] = 1;
                    return (new Sequence([.. ids], weights), index[q.Image]);
                }).ToList();
                Step(samples, features, out var batch);
                var logits = lm.Logits;
                int vocab = lm.Config.Vocab;
                for (int b = 0; b < chunk.Length; b++)
                {
                    int row = Array.FindLastIndex(batch.Weights, batch.Start(b) + batch.Length(b) - 1, batch.Length(b), w => w != 0);
                    int answer = TensorPrimitives.IndexOfMax(logits.Slice(row * vocab, vocab));
                    if (answer == text.YesId) yes++;
                    if (answer == (chunk[b].Yes ? text.YesId : text.NoId)) right++;
                }
            }
            return new PopeAccuracy(setting, questions.Count, (double)right / Math.Max(1, questions.Count), (double)yes / Math.Max(1, questions.Count));
        }
    }

    private static List<(string Image, string Text, bool Yes)> ReadPope(string path)
    {
        if (!File.Exists(path)) throw new UserError($"{path}: not found (a scenes folder written by 'truthprobe lab scenes' has pope_random/popular/adversarial.jsonl)");
        var list = new List<(string, string, bool)>();
        int line = 0;
        foreach (string raw in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(raw)) continue;
            string where = $"{path}:{line}";
            using var doc = ParseJson(raw, where);
            var root = JsonFields.Object(doc.RootElement, where);
            string label = JsonFields.String(JsonFields.Required(root, "label", where), where + " label");
            if (label is not ("yes" or "no")) throw new UserError($"{where}: field 'label' must be \"yes\" or \"no\", got \"{label}\"");
            list.Add((JsonFields.String(JsonFields.Required(root, "image", where), where + " image"), JsonFields.String(JsonFields.Required(root, "text", where), where + " text"), label == "yes"));
        }
        return list;
    }

    private static (int Size, ulong Seed) ReadManifest(string scenesDir)
    {
        string path = Path.Combine(scenesDir, "manifest.json");
        if (!File.Exists(path)) throw new UserError($"{path}: not found; pass a folder written by 'truthprobe lab scenes'") { Field = "scenes" };
        using var doc = ParseJson(File.ReadAllText(path), path);
        var root = JsonFields.Object(doc.RootElement, path);
        int size = JsonFields.Int32(JsonFields.Required(root, "size", path), path + " size", min: 20);
        ulong seed = (ulong)JsonFields.Int64(JsonFields.Required(root, "seed", path), path + " seed", min: 0);
        return (size, seed);
    }

    private static JsonDocument ParseJson(string json, string where)
    {
        try { return JsonDocument.Parse(json); }
        catch (JsonException e) { throw new UserError($"{where}: not valid JSON ({e.Message})"); }
    }

    private static JsonObject Metadata(Options o, JsonObject baseMeta, string baseSha, int worldSeed, ulong sceneSeed, Result r)
    {
        static JsonNode? Finite(double x) => double.IsFinite(x) ? JsonValue.Create(Math.Round(x, 5)) : null;
        static JsonObject Shares(Mix m) => new() { ["questions"] = m.Questions, ["captions"] = m.Captions, ["text"] = m.Text };
        static JsonObject Reading(ReadingAccuracy a) => new() { ["overall"] = Finite(a.Overall), ["consistent"] = Finite(a.Consistent), ["counterfactual"] = Finite(a.Counterfactual), ["items"] = a.Items };
        var lineage = new JsonArray();
        foreach (var ancestor in baseMeta["lineage"]?.AsArray() ?? []) lineage.Add(ancestor?.DeepClone());
        lineage.Add(new JsonObject { ["recipe"] = baseMeta["recipe"]?.DeepClone(), ["seed"] = baseMeta["seed"]?.DeepClone(), ["steps"] = baseMeta["steps"]?.DeepClone(), ["model_sha256"] = baseSha });
        return new JsonObject
        {
            ["recipe"] = "vlm",
            ["code_recipe_version"] = Recipe.CodeVersion,
            ["seed"] = o.Seed,
            ["world_seed"] = worldSeed,
            ["scene_seed"] = sceneSeed,
            ["size"] = baseMeta["size"]?.DeepClone(),
            ["tower"] = o.Tower,
            ["tower_steps"] = o.Tower == "pretrained" ? o.TowerSteps : 0,
            ["tower_cell_accuracy"] = Finite(r.TowerCellAccuracy),
            ["train_scenes"] = o.TrainScenes,
            ["stage1_steps"] = o.Stage1Steps,
            ["stage2_steps"] = o.Stage2Steps,
            ["stage3_steps"] = o.Stage3Steps,
            ["stage3_new_words"] = o.Stage3NewWords,
            ["steps"] = o.Stage1Steps + o.Stage2Steps + o.Stage3Steps,
            ["batch_size"] = o.BatchSize,
            ["lora_rank"] = o.LoraRank,
            ["lm_learning_rate"] = LmRate(o),
            ["stage1_mix"] = Shares(o.Stage1Mix ?? DefaultStage1Mix),
            ["stage2_mix"] = Shares(o.Stage2Mix ?? DefaultStage2Mix),
            ["stage3_mix"] = Shares(o.Stage3Mix ?? DefaultStage3Mix),
            ["stage1_loss"] = Finite(r.Stage1Loss),
            ["stage2_loss"] = Finite(r.Stage2Loss),
            ["stage3_loss"] = Finite(r.Stage3Loss),
            ["pope"] = new JsonObject(r.Pope.Select(p => KeyValuePair.Create(p.Setting, (JsonNode?)new JsonObject
            {
                ["accuracy"] = Finite(p.Accuracy), ["yes_rate"] = Finite(p.YesRate), ["questions"] = p.Questions,
            }))),
            ["reading_accuracy"] = Reading(r.Reading),
            ["base_reading_accuracy"] = Reading(r.BaseReading),
            ["train_seconds"] = new JsonObject { ["tower"] = Math.Round(r.TowerSeconds, 2), ["stage1"] = Math.Round(r.Stage1Seconds, 2), ["stage2"] = Math.Round(r.Stage2Seconds, 2), ["stage3"] = Math.Round(r.Stage3Seconds, 2) },
            ["lineage"] = lineage,
            ["provenance"] = Provenance.Of([("train", o.Seed), ("world", worldSeed), ("scenes", (JsonNode)sceneSeed)], [("parent_model", baseSha)]),
        };
    }
}
