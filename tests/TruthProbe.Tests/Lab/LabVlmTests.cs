using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Formats;
using TruthProbe.Imaging;
using TruthProbe.Lab;
using TruthProbe.Numerics;
using TruthProbe.Tests.Common;
using TruthProbe.Tests.Training;
using TruthProbe.Training;
using TruthProbe.Vision;

namespace TruthProbe.Tests.Lab;

/// <summary>The lab LLaVA: its folder read by the engine as a downloaded llava-hf one, and a tiny run end to end.</summary>
public class LabVlmTests
{
    private static readonly VlmPromptFormat Llava = new(LlavaPrompts.Pope, LlavaPrompts.Chair);

    [Fact]
    public void WrittenFolder_ReadByTheEngine_GivesTheTrainersImageFeaturesAndLogits()
    {
        using var tmp = new TempDir();
        var text = new VlmText(WordTokenizer.ForWorld(), Llava);
        var config = LabModelConfig.Create(text.Tokenizer.VocabSize, Dim: 32, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 8, Hidden: 48, MaxPositions: 128,
            BosId: WordTokenizer.BosId, EosId: WordTokenizer.EosId);
        var lm = new TrainableLlama(config);
        lm.Initialize(3);
        var clip = new TrainableClip(new ClipShape(ImageSize: 32, PatchSize: 8, Hidden: 16, Heads: 2, Layers: 2, Intermediate: 24, TextDim: 32, Labels: 30));
        clip.Initialize(4);
        // Weights well away from their initial scale, so that every layer shows in the comparison.
        var rng = new Random(5);
        foreach (var set in new[] { lm.Parameters, clip.Parameters })
            for (int i = 0; i < set.Values.Length; i++) set.Values[i] += (float)(0.1 * TrainableLlama.Gaussian(rng));
        LabVlmFolder.Write(tmp.Path, lm, clip, text, new JsonObject());

        using var engine = LlavaModel.Load(tmp.Path);
        Assert.Equal(16, engine.Config.ImageTokens);
        var scene = SceneDatasets.Sample(1, 9).Scenes[0];
        var pixels = engine.ImagePreprocessor(AspectMode.Crop).Preprocess(SceneWorld.Render(scene, 32));
        Assert.Equal(new ClipPreprocessor(LabVlmFolder.Preprocessor(32)).Preprocess(SceneWorld.Render(scene, 32)), pixels);

        // The engine's tokenizer (the folder's tokenizer.json, <image> split off as an added token) gives the trainer's ids.
        string prompt = LlavaPrompts.Pope(SceneDatasets.QuestionText(scene.Objects[0].Class));
        var ids = engine.Language.Tokenizer!.Encode(prompt);
        Assert.Equal(text.Prompt(prompt, 1), ids);

        var state = engine.NewState();
        var engineFeatures = engine.EncodeImage(state, pixels).ToArray();
        var trainerFeatures = clip.Forward(pixels, 1).ToArray();
        Assert.Equal(trainerFeatures.Length, engineFeatures.Length);
        double featureDiff = engineFeatures.Zip(trainerFeatures, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(featureDiff < 1e-4, $"max |image feature difference| {featureDiff}");

        var engineLogits = engine.Forward(engine.NewState(), ids, pixels).ToArray();
        var expanded = text.Prompt(prompt, 16).ToArray();
        var rows = Enumerable.Range(0, expanded.Length).Where(t => expanded[t] == text.ImageId).ToArray();
        lm.Forward(new TrainingBatch(1, expanded.Length, expanded, new int[expanded.Length], new float[expanded.Length]), out _, out _, new EmbeddingSplice(rows, trainerFeatures));
        var trainerLogits = lm.Logits.Slice((expanded.Length - 1) * config.Vocab, config.Vocab).ToArray();
        double logitDiff = engineLogits.Zip(trainerLogits, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(logitDiff < 1e-4, $"max |logit difference| {logitDiff}");
    }

    [Fact]
    public void VlmText_KeepsTheBaseIds_AndAddsEveryPromptWord()
    {
        var world = WordTokenizer.ForWorld();
        var text = new VlmText(world, Llava);
        for (int id = 0; id < world.VocabSize; id++) Assert.Equal(world.Word(id), text.Tokenizer.Word(id));
        Assert.Equal("<image>", text.Tokenizer.Word(text.ImageId));
        // A caption of every object kind encodes without an unknown word (Encode throws on one).
        foreach (var scene in SceneDatasets.Sample(50, 3).Scenes) text.Tokenizer.Encode(SceneWorld.Caption(scene));
        Assert.Contains("ASSISTANT", text.NewWords);
        Assert.Throws<UserError>(() => text.Prompt("no image here", 4));
    }

    /// <summary>A base of 2 steps and 6 scenes of 32 px in <paramref name="tmp"/>.</summary>
    private static (string Base, string Scenes) TinyInputs(TempDir tmp)
    {
        string baseDir = Path.Combine(tmp.Path, "base"), scenes = Path.Combine(tmp.Path, "scenes");
        LabRuns.Pretrain(new LabRuns.PretrainOptions(baseDir, Steps: 2, BatchSize: 4), TextWriter.Null);
        SceneDatasets.Sample(6, 2).Write(scenes, 32, 2);
        return (baseDir, scenes);
    }

    /// <summary>A run of one step per stage on <see cref="TinyInputs"/>, written to <paramref name="tmp"/>/<paramref name="name"/>.</summary>
    private static LabVlm.Options TinyOptions(TempDir tmp, string name) => new(Path.Combine(tmp.Path, "base"), Path.Combine(tmp.Path, "scenes"), Path.Combine(tmp.Path, name), Llava, Seed: 3,
        TrainScenes: 12, TowerSteps: 1, Stage1Steps: 1, Stage2Steps: 1, BatchSize: 4, TowerHidden: 16, TowerHeads: 2, ReadingItems: 8, Stage3Steps: 0);

    /// <summary>A tiny run end to end (base, scenes, tower pre-training, both stages, folder): the same seed writes the same bytes.</summary>
    [Fact]
    public void TinyRun_WritesAnLlavaFolder_ByteIdenticalForTheSameSeed()
    {
        using var tmp = new TempDir();
        var (baseDir, scenes) = TinyInputs(tmp);
        LabVlm.Result Run(string name) => LabVlm.Train(TinyOptions(tmp, name) with { TowerSteps = 2, Stage1Steps = 2, Stage2Steps = 2 }, TextWriter.Null);
        var first = Run("a");
        Run("b");
        foreach (string file in new[] { "model.safetensors", "config.json", "tokenizer.json", LlavaModel.PreprocessorFile })
            Assert.Equal(File.ReadAllBytes(Path.Combine(tmp.Path, "a", file)), File.ReadAllBytes(Path.Combine(tmp.Path, "b", file)));
        Assert.Equal(SceneDatasets.PopeSettings, first.Pope.Select(p => p.Setting));
        Assert.All(first.Pope, p => Assert.Equal(File.ReadLines(Path.Combine(scenes, $"pope_{p.Setting}.jsonl")).Count(), p.Questions));
        using var engine = LlavaModel.Load(Path.Combine(tmp.Path, "a"));
        Assert.Equal("llava", engine.Config.Architecture);
    }

    /// <summary>
    /// The LM's own stage 2 rate: one full fine-tuning step of Adam moves each weight by rate·g/(|g| + 1e-8), so no
    /// q/k/v/o weight moves by more than the rate (0.1% allowed for the float32 rounding of weights below 1), and the
    /// default (3e-3) moves them by nearly that; the projector's step is taken from the same gradients (the LM has not moved yet) at its own rate, so its bytes are the same in both runs.
    /// </summary>
    [Fact]
    public void LmLearningRate_BoundsTheLmsStep_AndLeavesTheProjectorsRate()
    {
        using var tmp = new TempDir();
        var (baseDir, _) = TinyInputs(tmp);
        void Run(string name, double? lmRate) => LabVlm.Train(TinyOptions(tmp, name) with { LmLearningRate = lmRate }, TextWriter.Null);
        Run("slow", 1e-4);
        Run("default", null);
        using var parent = SafetensorsFile.Open(Path.Combine(baseDir, "model.safetensors"));
        using var slow = SafetensorsFile.Open(Path.Combine(tmp.Path, "slow", "model.safetensors"));
        using var fast = SafetensorsFile.Open(Path.Combine(tmp.Path, "default", "model.safetensors"));
        static double MaxStep(SafetensorsFile from, string fromName, SafetensorsFile to, string toName)
        {
            float[] a = from.ReadSingles(from.Get(fromName)), b = to.ReadSingles(to.Get(toName));
            return a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();
        }
        var attention = parent.Tensors.Keys.Where(n => n.Contains("self_attn.") && n.EndsWith(".weight", StringComparison.Ordinal)).ToList();
        Assert.True(attention.Count > 0 && attention.Count % 4 == 0, $"q/k/v/o per layer, got {attention.Count}");
        foreach (string name in attention)
        {
            double slowStep = MaxStep(parent, name, slow, "language_model." + name), fastStep = MaxStep(parent, name, fast, "language_model." + name);
            Assert.InRange(slowStep, 1e-5, 1e-4 * 1.001);
            Assert.InRange(fastStep, 1e-3, 3e-3 * 1.001);
        }
        var projector = slow.Tensors.Keys.Where(n => n.StartsWith("multi_modal_projector.", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(projector);
        foreach (string name in projector) Assert.Equal(slow.Bytes(slow.Get(name)).ToArray(), fast.Bytes(fast.Get(name)).ToArray());
    }
}
