using System.Text.Json.Nodes;
using TruthProbe.Lab;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Training;

namespace TruthProbe.Tests.Training;

/// <summary>A lab checkpoint, read by the inference engine, gives the logits the training forward computed.</summary>
public class EngineParityTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void LabCheckpoint_ReadByTheEngine_GivesTheTrainingLogits(bool tied)
    {
        using var tmp = new TempDir();
        var tokenizer = WordTokenizer.ForWorld();
        var config = LabModelConfig.Create(tokenizer.VocabSize, Dim: 32, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 16, Hidden: 64, MaxPositions: 64,
            TieEmbeddings: tied, BosId: WordTokenizer.BosId, EosId: WordTokenizer.EosId);
        var model = new TrainableLlama(config);
        model.Initialize(5);
        var rng = new Random(6);
        // Weights well away from the initial scale, so the comparison exercises every layer.
        for (int i = 0; i < model.Parameters.Values.Length; i++) model.Parameters.Values[i] += (float)(0.1 * TrainableLlama.Gaussian(rng));
        LabCheckpoint.Save(tmp.Path, model, tokenizer, new JsonObject());

        // Weights and config only: both sides run the same ids, so this compares the forward passes alone (the engine
        // reading the lab's tokenizer.json is WordLevelTokenizerTests.LabCheckpointFolder_LoadsWithItsTokenizer_ThroughTheEngine).
        var (engineConfig, weights, files) = HfCheckpoint.Load(tmp.Path);
        using var engine = new Transformer(engineConfig, weights, tmp.Path, "hf-safetensors", files);
        string text = SyntheticWorld.Prompt("Alice visits Rome. Bob likes red. Zoe is 33.", "Which city does Alice visit?", "Alice visits Rome");
        int[] ids = tokenizer.Encode(text);
        for (int length = 1; length <= ids.Length; length += 7)
        {
            var prefix = ids[..length];
            var state = engine.NewState();
            var engineLogits = engine.Forward(state, prefix).ToArray();
            model.Forward(new TrainingBatch(1, length, prefix, new int[length], new float[length]), out _, out _);
            var trainLogits = model.Logits.Slice((length - 1) * config.Vocab, config.Vocab).ToArray();
            double maxDiff = engineLogits.Zip(trainLogits, (a, b) => Math.Abs(a - b)).Max();
            Assert.True(maxDiff < 1e-4, $"prefix of {length} tokens: max |logit difference| {maxDiff}");
        }
    }
}
