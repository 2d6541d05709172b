using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Lab;
using TruthProbe.Tests.Common;
using TruthProbe.Training;

namespace TruthProbe.Tests.Lab;

public class LabCheckpointTests
{
    private static (TrainableLlama Model, WordTokenizer Tokenizer) Model(bool tied, int seed)
    {
        var tokenizer = WordTokenizer.ForWorld();
        var config = LabModelConfig.Create(tokenizer.VocabSize, Dim: 16, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 4, Hidden: 24, MaxPositions: 64,
            TieEmbeddings: tied, BosId: WordTokenizer.BosId, EosId: WordTokenizer.EosId);
        var model = new TrainableLlama(config);
        model.Initialize(seed);
        return (model, tokenizer);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void SavedFolder_IsAHuggingFaceLlama_AndReloadsToIdenticalLogits(bool tied)
    {
        using var tmp = new TempDir();
        var (model, tokenizer) = Model(tied, 1);
        LabCheckpoint.Save(tmp.Path, model, tokenizer, new JsonObject { ["recipe"] = "test" });

        var config = JsonNode.Parse(File.ReadAllText(tmp.File("config.json")))!;
        Assert.Equal("LlamaForCausalLM", config["architectures"]![0]!.GetValue<string>());
        foreach (var field in new[] { "num_key_value_heads", "head_dim", "rope_theta", "rms_norm_eps", "tie_word_embeddings", "max_position_embeddings", "bos_token_id", "eos_token_id", "vocab_size", "intermediate_size" })
            Assert.NotNull(config[field]);
        using (var file = SafetensorsFile.Open(tmp.File("model.safetensors")))
        {
            Assert.Equal(TensorDType.F32, file.Get("model.layers.1.self_attn.k_proj.weight").DType);
            Assert.Equal([8L, 16L], file.Get("model.layers.1.self_attn.k_proj.weight").Shape); // GQA: 2 kv heads x 4
            Assert.Equal(tied, !file.Tensors.ContainsKey("lm_head.weight"));
            foreach (var name in new[] { "model.embed_tokens.weight", "model.norm.weight", "model.layers.0.mlp.gate_proj.weight", "model.layers.0.post_attention_layernorm.weight" })
                Assert.True(file.Tensors.ContainsKey(name), name);
        }

        var (loaded, loadedTokenizer, meta) = LabCheckpoint.Load(tmp.Path);
        Assert.Equal("test", meta["recipe"]!.GetValue<string>());
        Assert.Equal(tokenizer.VocabSize, loadedTokenizer.VocabSize);
        var batch = Corpus.Batch([new Corpus(new SyntheticWorld(1), tokenizer).Passage("Alice visits Rome. Bob likes red.")]);
        model.Forward(batch, out _, out _);
        var before = model.Logits.ToArray();
        loaded.Forward(batch, out _, out _);
        Assert.Equal(before, loaded.Logits.ToArray());
    }

    [Fact]
    public void TokenizerJson_IsAWordLevelModelWithWhitespacePreTokenizer_AndRoundTrips()
    {
        using var tmp = new TempDir();
        var tokenizer = WordTokenizer.ForWorld();
        tokenizer.Save(tmp.Path);
        var json = JsonNode.Parse(File.ReadAllText(tmp.File("tokenizer.json")))!;
        Assert.Equal("WordLevel", json["model"]!["type"]!.GetValue<string>());
        Assert.Equal("Whitespace", json["pre_tokenizer"]!["type"]!.GetValue<string>());
        Assert.Equal(WordTokenizer.BosId, json["model"]!["vocab"]!["<s>"]!.GetValue<int>());
        var back = WordTokenizer.Load(tmp.Path);
        string text = "Context:\nZoe owns kayaks.\n\nQuestion: What does Zoe own?\nAnswer: Zoe owns kayaks";
        Assert.Equal(tokenizer.Encode(text), back.Encode(text));
    }

    [Fact]
    public void Load_MissingFolderOrMismatchedWeights_IsAUserErrorNamingTheFile()
    {
        using var tmp = new TempDir();
        var e = Assert.Throws<UserError>(() => LabCheckpoint.Load(tmp.File("nope")));
        Assert.Contains("nope", e.Message);

        var (model, tokenizer) = Model(true, 2);
        LabCheckpoint.Save(tmp.Path, model, tokenizer, new JsonObject());
        var config = JsonNode.Parse(File.ReadAllText(tmp.File("config.json")))!;
        config["intermediate_size"] = 32;
        File.WriteAllText(tmp.File("config.json"), config.ToJsonString());
        e = Assert.Throws<UserError>(() => LabCheckpoint.Load(tmp.Path));
        Assert.Contains("mlp.gate_proj.weight", e.Message);
        Assert.Contains("model.safetensors", e.Message);

        File.Delete(tmp.File("lab.json"));
        e = Assert.Throws<UserError>(() => LabCheckpoint.Load(tmp.Path));
        Assert.Contains("lab.json", e.Message);
    }
}
