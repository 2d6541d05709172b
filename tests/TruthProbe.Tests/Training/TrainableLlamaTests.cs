using TruthProbe.Lab;
using TruthProbe.Model;
using TruthProbe.Training;

namespace TruthProbe.Tests.Training;

public class TrainableLlamaTests
{
    internal static ModelConfig Tiny(bool tied = true) =>
        LabModelConfig.Create(Vocab: 11, Dim: 8, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 4, Hidden: 12, MaxPositions: 8, TieEmbeddings: tied);

    internal static TrainingBatch Batch(int vocab, int batch, int seqLen, int seed)
    {
        var rng = new Random(seed);
        int n = batch * seqLen;
        var tokens = Enumerable.Range(0, n).Select(_ => rng.Next(vocab)).ToArray();
        var targets = Enumerable.Range(0, n).Select(_ => rng.Next(vocab)).ToArray();
        var weights = Enumerable.Range(0, n).Select(i => i % 3 == 0 ? 0f : 1f).ToArray(); // some positions masked
        return new TrainingBatch(batch, seqLen, tokens, targets, weights);
    }

    private static void CheckAllTrainable(TrainableLlama model, TrainingBatch batch)
    {
        var p = model.Parameters;
        p.ZeroGrads();
        model.Forward(batch, out _, out _);
        model.Backward();
        double Loss() => model.Forward(batch, out _, out _);
        foreach (var (t, i) in p.Tensors.Select((t, i) => (t, i)).Where(x => x.t.Trainable))
        {
            var values = p.Values.AsSpan(t.Offset, t.Length).ToArray();
            var grads = p.Grads.AsSpan(t.Offset, t.Length).ToArray();
            // Check through a copy that is written back before each loss evaluation.
            var probe = new ProbeArray(p.Values, t.Offset, values);
            GradientCheck.Assert(t.Name, values, grads, () => { probe.WriteBack(); return Loss(); }, maxChecks: 12, eps: 2e-3, tolerance: 3e-2);
            // The last loss ran with a perturbed value: restore it before checking the next tensor at the same point.
            probe.WriteBack();
        }
    }

    private sealed class ProbeArray(float[] target, int offset, float[] source)
    {
        public void WriteBack() => source.CopyTo(target, offset);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void WholeModel_Backward_MatchesFiniteDifferences(bool tied)
    {
        var model = new TrainableLlama(Tiny(tied));
        model.Initialize(1);
        // Larger weights than the training init, so every path carries a gradient well above fp32 noise.
        var rng = new Random(2);
        for (int i = 0; i < model.Parameters.Values.Length; i++) model.Parameters.Values[i] += (float)(0.3 * TrainableLlama.Gaussian(rng));
        CheckAllTrainable(model, Batch(11, 2, 6, 3));
    }

    [Fact]
    public void Lora_Backward_MatchesFiniteDifferences_AndLeavesBaseFrozen()
    {
        var model = new TrainableLlama(Tiny());
        model.Initialize(4);
        var rng = new Random(5);
        for (int i = 0; i < model.Parameters.Values.Length; i++) model.Parameters.Values[i] += (float)(0.3 * TrainableLlama.Gaussian(rng));
        model.AddLora(rank: 2, alpha: 4, seed: 6);
        foreach (var t in model.Parameters.Tensors.Where(t => t.Name.Contains("lora_B")))
            for (int i = 0; i < t.Length; i++) model.Parameters.Values[t.Offset + i] = (float)(0.3 * TrainableLlama.Gaussian(rng));
        Assert.All(model.Parameters.Tensors, t => Assert.Equal(t.Name.Contains(".lora_"), t.Trainable));
        CheckAllTrainable(model, Batch(11, 2, 6, 7));
        var frozen = model.Parameters.Tensors.Where(t => !t.Trainable).Sum(t => model.Parameters.Grads.AsSpan(t.Offset, t.Length).ToArray().Sum(Math.Abs));
        Assert.Equal(0f, frozen);
    }

    [Fact]
    public void LoraMerged_GivesTheSameLogitsAsLoraOnTheFly()
    {
        var model = new TrainableLlama(Tiny());
        model.Initialize(8);
        model.AddLora(rank: 3, alpha: 6, seed: 9);
        var rng = new Random(10);
        foreach (var t in model.Parameters.Tensors.Where(t => t.Name.Contains("lora_B")))
            for (int i = 0; i < t.Length; i++) model.Parameters.Values[t.Offset + i] = (float)(0.5 * TrainableLlama.Gaussian(rng));
        var batch = Batch(11, 3, 7, 11);
        model.Forward(batch, out _, out _);
        var onTheFly = model.Logits.ToArray();
        var merged = model.MergeLora();
        Assert.DoesNotContain(merged.Parameters.Tensors, t => t.Name.Contains("lora"));
        merged.Forward(batch, out _, out _);
        var after = merged.Logits.ToArray();
        double maxDiff = onTheFly.Zip(after, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(maxDiff < 1e-5, $"max |logit difference| {maxDiff}");
        // And the adapters did change the model, so the comparison is not vacuous.
        var plain = new TrainableLlama(Tiny());
        plain.Initialize(8);
        plain.Forward(batch, out _, out _);
        Assert.True(plain.Logits.ToArray().Zip(after, (a, b) => Math.Abs(a - b)).Max() > 1e-3);
    }

    [Fact]
    public void Training_OnAFixedBatch_DrivesTheLossNearZero()
    {
        var config = LabModelConfig.Create(Vocab: 16, Dim: 32, Layers: 2, Heads: 2, KvHeads: 1, HeadDim: 16, Hidden: 64, MaxPositions: 16);
        var model = new TrainableLlama(config);
        model.Initialize(12);
        var batch = Batch(16, 4, 12, 13);
        var optimizer = new AdamW(model.Parameters, weightDecay: 0);
        var schedule = new LearningRateSchedule(1e-2, 20, 300);
        double first = 0, loss = 0;
        for (int step = 0; step < 300; step++)
        {
            model.Parameters.ZeroGrads();
            loss = model.Forward(batch, out _, out _);
            if (step == 0) first = loss;
            model.Backward();
            optimizer.ClipGradients(1.0);
            optimizer.Step(schedule.At(step));
        }
        Assert.InRange(first, Math.Log(16) - 0.5, Math.Log(16) + 0.5);
        Assert.True(loss < 0.05, $"loss {first:0.000} -> {loss:0.000}");
    }

    [Fact]
    public void Schedule_WarmsUpLinearlyThenFollowsTheCosine()
    {
        var s = new LearningRateSchedule(1.0, 10, 110, 0.1);
        Assert.Equal(0.1, s.At(0), 10);
        Assert.Equal(1.0, s.At(9), 10);
        Assert.Equal(1.0, s.At(10), 10);
        Assert.Equal(0.1 + 0.9 * 0.5, s.At(60), 10); // halfway through the cosine
        Assert.Equal(0.1, s.At(110), 10);
    }

    [Fact]
    public void Training_ThatDiverges_StopsWithAUserErrorNamingTheStep()
    {
        var tokenizer = WordTokenizer.ForWorld();
        var config = LabModelConfig.Create(tokenizer.VocabSize, Dim: 16, Layers: 1, Heads: 2, KvHeads: 1, HeadDim: 8, Hidden: 16, MaxPositions: 128);
        var model = new TrainableLlama(config);
        model.Initialize(1);
        model.Parameters.Value("model.norm.weight")[0] = float.NaN;
        var recipe = new PretrainRecipe(new Corpus(new SyntheticWorld(1), tokenizer));
        var e = Assert.Throws<TruthProbe.Common.UserError>(() => LabTrainer.Train(model, recipe, new TrainingPlan(3, 4, 1e-3, 1), 1, []));
        Assert.Contains("diverged at step 1", e.Message);
    }
}
