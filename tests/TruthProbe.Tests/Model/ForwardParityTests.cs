using System.Text.Json;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Model;

/// <summary>The engine against the naive double-precision reference, and the same weights through every loader.</summary>
public unsafe class ForwardParityTests
{
    public static TheoryData<string> Architectures => ["qwen2", "llama", "mistral"];

    private static ModelConfig Config(string name) => name switch
    {
        "qwen2" => TinyModels.Qwen2,
        "llama" => TinyModels.LlamaGqa,
        _ => TinyModels.MistralWindow,
    };

    /// <summary>Every hook point of the table, logits included, including hooks added later: a hook the reference
    /// does not compute fails here. Scores must be -inf exactly where the reference masks.</summary>
    [Theory]
    [MemberData(nameof(Architectures))]
    public void RandomTinyModel_EveryHook_MatchesNaiveReference(string architecture)
    {
        using var tmp = new TempDir();
        var config = Config(architecture);
        string folder = TinyModels.Write(tmp, config);
        int[] tokens = [1, 5, 9, 17, 3, 22, 30, 11, 4, 40];
        using var model = Transformer.Load(folder);
        var capture = new ActivationCapture(config, ["*"]);
        model.Forward(model.NewState(), tokens, capture);
        var reference = ReferenceForward.Hooks(folder, tokens);
        foreach (string name in HookNames.All(config.Layers))
        {
            Assert.True(reference.ContainsKey(name), $"the reference forward does not compute {name}");
            float[] ours = capture[name].Data;
            double[] expected = reference[name];
            Assert.Equal(expected.Length, ours.Length);
            double worst = 0;
            for (int i = 0; i < ours.Length; i++)
            {
                if (double.IsNegativeInfinity(expected[i])) { Assert.True(float.IsNegativeInfinity(ours[i]), $"{name}[{i}]: {ours[i]} where the reference masks"); continue; }
                worst = Math.Max(worst, Math.Abs(ours[i] - expected[i]));
            }
            Assert.True(worst < 1e-5, $"{architecture} {name}: max |ours - reference| = {worst:g3}");
        }
        Assert.True(reference[HookNames.Logits].Max(Math.Abs) > 0.1, "logits too small for the comparison to mean anything");
    }

    [Theory]
    [MemberData(nameof(Architectures))]
    public void KvCacheDecoding_EqualsFullPrefill(string architecture)
    {
        using var tmp = new TempDir();
        using var model = Transformer.Load(TinyModels.Write(tmp, Config(architecture)));
        int[] tokens = [1, 5, 9, 17, 3, 22, 30, 11];
        float[] prefill = TinyModels.AllLogits(model, tokens);
        var state = model.NewState();
        int vocab = model.Config.Vocab;
        // Prefill the first three, then decode one at a time.
        var first = model.Forward(state, tokens[..3]).ToArray();
        Assert.True(TinyModels.MaxAbsDiff(first, prefill.AsSpan(2 * vocab, vocab)) < 1e-5);
        for (int t = 3; t < tokens.Length; t++)
        {
            var step = model.Forward(state, tokens[t..(t + 1)]);
            double diff = TinyModels.MaxAbsDiff(step, prefill.AsSpan(t * vocab, vocab));
            Assert.True(diff < 1e-5, $"position {t}: decode differs from prefill by {diff:g3}");
        }
    }

    [Fact]
    public void Bf16AndF16Folders_MatchF32WithinRounding()
    {
        using var tmp = new TempDir();
        int[] tokens = [1, 5, 9, 17, 3, 22];
        using var f32 = Transformer.Load(TinyModels.Write(tmp, TinyModels.Qwen2, WeightDType.F32));
        float[] reference = TinyModels.AllLogits(f32, tokens);
        foreach (var dtype in new[] { WeightDType.BF16, WeightDType.F16 })
        {
            // Rewriting the loaded F32 model in 16 bits exercises the writer; widening happens in the kernels.
            string folder = tmp.File($"as-{dtype}");
            HfCheckpoint.Write(folder, f32.Config, f32.Weights, dtype);
            using var narrow = Transformer.Load(folder);
            Assert.All(narrow.Weights.Matrices(), m => Assert.Equal(dtype, m.DType));
            double diff = TinyModels.MaxAbsDiff(reference, TinyModels.AllLogits(narrow, tokens));
            double tolerance = dtype == WeightDType.BF16 ? 0.1 : 0.01;
            Assert.True(diff < tolerance && diff > 0, $"{dtype}: max logit difference {diff:g3}");
        }
    }

    [Fact]
    public void Bf16Folder_MatricesStayBf16_InsideTheMappedFile()
    {
        using var tmp = new TempDir();
        using var model = Transformer.Load(TinyModels.Write(tmp, TinyModels.Qwen2, WeightDType.BF16));
        Assert.Same(model.Weights.TokenEmbedding, model.Weights.Classifier);
        foreach (var m in model.Weights.Matrices())
        {
            Assert.Equal(WeightDType.BF16, m.DType);
            // The matrix points into the memory-mapped checkpoint: no widened or duplicated copy exists.
            var file = Assert.IsType<SafetensorsFile>(m.Owner);
            var tensor = file.Tensors.Values.Single(t => file.Pointer(t) == m.Data);
            Assert.Equal(m.ByteLength, tensor.ByteLength);
        }
    }

    [Fact]
    public void ShardedFolder_GivesSameLogitsAsSingleFile()
    {
        using var tmp = new TempDir();
        string single = TinyModels.Write(tmp, TinyModels.LlamaGqa, WeightDType.BF16), sharded = tmp.File("sharded");
        Directory.CreateDirectory(sharded);
        File.Copy(Path.Combine(single, "config.json"), Path.Combine(sharded, "config.json"));
        var weightMap = new Dictionary<string, string>();
        using (var file = SafetensorsFile.Open(Path.Combine(single, HfCheckpoint.SingleFile)))
        {
            // Tensors alternate between two shards, as large checkpoints split them.
            var names = file.Tensors.Keys.Order(StringComparer.Ordinal).ToList();
            for (int shard = 0; shard < 2; shard++)
            {
                string shardName = $"model-0000{shard + 1}-of-00002.safetensors";
                var mine = names.Where((_, i) => i % 2 == shard).ToList();
                SafetensorsWriter.Write(Path.Combine(sharded, shardName), mine.Select(n =>
                {
                    var info = file.Get(n);
                    return SafetensorToWrite.FromBytes(n, info.DType, info.Shape, file.Bytes(info).ToArray());
                }).ToList());
                foreach (var n in mine) weightMap[n] = shardName;
            }
        }
        File.WriteAllText(Path.Combine(sharded, HfCheckpoint.IndexFile), JsonSerializer.Serialize(new { metadata = new { total_size = 0 }, weight_map = weightMap }));
        int[] tokens = [1, 2, 3, 40, 50];
        using var a = Transformer.Load(single);
        using var b = Transformer.Load(sharded);
        Assert.Equal(TinyModels.AllLogits(a, tokens), TinyModels.AllLogits(b, tokens));
    }

    [SkippableFact]
    public void Stories260K_FromLlama2cAndFromHfFolders_GiveSameLogits()
    {
        string bin = SharedData.Path("models", "stories260K", "stories260K.bin");
        using var tmp = new TempDir();
        using var original = Transformer.Load(bin);
        int[] tokens = [1, 403, 407, 261, 378, 432, 383, 286];
        float[] fromBin = TinyModels.AllLogits(original, tokens);

        string f32 = tmp.File("hf-f32"), bf16 = tmp.File("hf-bf16");
        HfCheckpoint.Write(f32, original.Config, original.Weights, WeightDType.F32);
        HfCheckpoint.Write(bf16, original.Config, original.Weights, WeightDType.BF16);
        using var fromF32 = Transformer.Load(f32);
        Assert.Equal(fromBin, TinyModels.AllLogits(fromF32, tokens));
        // The naive reference reads the HF folder by tensor name: proves the llama2.c q/k row reordering.
        double[] naive = ReferenceForward.Logits(f32, tokens).SelectMany(r => r).ToArray();
        Assert.True(fromBin.Select((v, i) => Math.Abs(v - naive[i])).Max() < 1e-4);
        using var fromBf16 = Transformer.Load(bf16);
        double diff = TinyModels.MaxAbsDiff(fromBin, TinyModels.AllLogits(fromBf16, tokens));
        Assert.True(diff < 0.25, $"bf16 logits differ by {diff:g3}");
        Assert.Equal(Generator.ArgMax(fromBin.AsSpan(^512..)), Generator.ArgMax(TinyModels.AllLogits(fromBf16, tokens).AsSpan(^512..)));
    }
}
