using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using static TruthProbe.Tests.Model.TinyModels;

namespace TruthProbe.Tests.Formats;

public class GgufCheckpointTests
{
    private static void AssertSameWeights(Transformer expected, Transformer actual)
    {
        Assert.Equal(expected.Config, actual.Config with { EosIds = expected.Config.EosIds });
        Assert.Equal(expected.Config.EosIds, actual.Config.EosIds);
        var e = expected.Weights.Matrices().ToList();
        var a = actual.Weights.Matrices().ToList();
        Assert.Equal(e.Count, a.Count);
        for (int i = 0; i < e.Count; i++) Assert.Equal(e[i].ToSingles(), a[i].ToSingles());
        for (int l = 0; l < expected.Config.Layers; l++)
        {
            var (x, y) = (expected.Weights.Layers[l], actual.Weights.Layers[l]);
            Assert.Equal(x.InputNorm, y.InputNorm);
            Assert.Equal(x.PostAttentionNorm, y.PostAttentionNorm);
            Assert.Equal(x.QBias, y.QBias);
            Assert.Equal(x.KBias, y.KBias);
            Assert.Equal(x.VBias, y.VBias);
            Assert.Equal(x.OBias, y.OBias);
        }
        Assert.Equal(expected.Weights.FinalNorm, actual.Weights.FinalNorm);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    public void WriteThenLoad_RestoresConfigAndEveryTensorBitForBit_AndTheSameLogits(string arch)
    {
        using var tmp = new TempDir();
        using var model = GgufModels.Random(tmp, GgufModels.Of(arch), seed: 11);
        GgufCheckpoint.Write(tmp.File("m.gguf"), model.Config, model.Weights, GgufModels.VocabularyFor(model.Config), GgufTensorType.F32, "m");
        using var loaded = Transformer.Load(tmp.File("m.gguf"));
        Assert.Equal("gguf", loaded.Format);
        AssertSameWeights(model, loaded);
        Assert.Equal(model.Config.TiedEmbeddings, ReferenceEquals(loaded.Weights.TokenEmbedding, loaded.Weights.Classifier));
        // Matrices point into the mapped file, except llama's q and k, which are reordered copies.
        var permuted = arch == "llama" ? loaded.Weights.Layers.SelectMany(l => new[] { l.Q, l.K }).ToHashSet() : [];
        Assert.All(loaded.Weights.Matrices(), m => Assert.Equal(!permuted.Contains(m), m.Owner is GgufFile));
        int[] tokens = GgufModels.RandomTokens(12, model.Config.Vocab, seed: 1);
        Assert.Equal(AllLogits(model, tokens), AllLogits(loaded, tokens));
    }

    [Theory]
    [InlineData(GgufTensorType.BF16, WeightDType.BF16)]
    [InlineData(GgufTensorType.F16, WeightDType.F16)]
    public void SixteenBitGguf_StaysSixteenBitInMemory_AndEqualsTheHfCheckpointOfThatDtype(GgufTensorType type, WeightDType dtype)
    {
        using var tmp = new TempDir();
        using var model = GgufModels.Random(tmp, GgufModels.Llama, seed: 12);
        GgufCheckpoint.Write(tmp.File("m.gguf"), model.Config, model.Weights, null, type, "m");
        HfCheckpoint.Write(tmp.File("hf"), model.Config, model.Weights, dtype);
        using var gguf = Transformer.Load(tmp.File("m.gguf"));
        using var hf = Transformer.Load(tmp.File("hf"));
        Assert.All(gguf.Weights.Matrices(), m => Assert.Equal(dtype, m.DType));
        var g = gguf.Weights.Matrices().ToList();
        var h = hf.Weights.Matrices().ToList();
        for (int i = 0; i < g.Count; i++) Assert.Equal(h[i].ToSingles(), g[i].ToSingles());
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    public void Q8_0Gguf_StaysQ8_0InMemory_AndRewritesBitForBit(string arch)
    {
        using var tmp = new TempDir();
        using var model = GgufModels.Random(tmp, GgufModels.Of(arch), seed: 17);
        GgufCheckpoint.Write(tmp.File("a.gguf"), model.Config, model.Weights, null, GgufTensorType.Q8_0, "m");
        using (var q8 = Transformer.Load(tmp.File("a.gguf")))
        {
            Assert.All(q8.Weights.Matrices(), m => Assert.Equal(WeightDType.Q8_0, m.DType));
            GgufCheckpoint.Write(tmp.File("b.gguf"), q8.Config, q8.Weights, null, GgufTensorType.Q8_0, "m");
        }
        using var a = GgufFile.Open(tmp.File("a.gguf"));
        using var b = GgufFile.Open(tmp.File("b.gguf"));
        Assert.Equal(a.Tensors.Select(t => t.Name), b.Tensors.Select(t => t.Name));
        foreach (var t in a.Tensors) Assert.Equal(a.Bytes(t).ToArray(), b.Bytes(b.Get(t.Name)).ToArray());
    }

    [SkippableFact]
    public void Stories260K_SameLogitsFromLlama2cHfAndGguf()
    {
        string bin = SharedData.Path("models", "stories260K", "stories260K.bin");
        using var tmp = new TempDir();
        using var original = Transformer.Load(bin);
        GgufCheckpoint.Write(tmp.File("s.gguf"), original.Config, original.Weights, original.Tokenizer!.Vocabulary, GgufTensorType.F32, "stories260K");
        HfCheckpoint.Write(tmp.File("hf"), original.Config, original.Weights, WeightDType.F32);
        using var gguf = Transformer.Load(tmp.File("s.gguf"));
        using var hf = Transformer.Load(tmp.File("hf"));
        int[] tokens = [1, .. GgufModels.RandomTokens(30, original.Config.Vocab, seed: 13)];
        var reference = AllLogits(original, tokens);
        Assert.Equal(reference, AllLogits(gguf, tokens));
        Assert.Equal(reference, AllLogits(hf, tokens));
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    public void TokenizerMetadata_RoundTripsTheVocabulary(string arch)
    {
        using var tmp = new TempDir();
        using var model = GgufModels.Random(tmp, GgufModels.Of(arch), seed: 14);
        var vocabulary = GgufModels.VocabularyFor(model.Config);
        GgufCheckpoint.Write(tmp.File("m.gguf"), model.Config, model.Weights, vocabulary, GgufTensorType.F32, "m");
        using var loaded = Transformer.Load(tmp.File("m.gguf"));
        var read = loaded.Tokenizer!.Vocabulary;
        Assert.Equal(vocabulary.Tokens, read.Tokens);
        Assert.Equal(vocabulary.Scores, read.Scores);
        Assert.Equal(vocabulary.TokenTypes, read.TokenTypes);
        Assert.Equal(vocabulary.Merges, read.Merges);
        Assert.Equal(vocabulary with { Tokens = [], Scores = [], TokenTypes = [], Merges = [] }, read with { Tokens = [], Scores = [], TokenTypes = [], Merges = [] });
    }

    [Fact]
    public void NoTokenizer_IsWrittenAsNoVocab_AndKeepsBosEos()
    {
        using var tmp = new TempDir();
        using var model = GgufModels.Random(tmp, GgufModels.Llama, seed: 15);
        GgufCheckpoint.Write(tmp.File("m.gguf"), model.Config, model.Weights, null, GgufTensorType.F32, "m");
        using (var file = GgufFile.Open(tmp.File("m.gguf")))
            Assert.Equal("no_vocab", file.Metadata.String(GgufKeys.TokenizerModel));
        using var loaded = Transformer.Load(tmp.File("m.gguf"));
        Assert.Null(loaded.Tokenizer);
        Assert.Equal(1, loaded.Config.BosId);
        Assert.Equal([2], loaded.Config.EosIds);
    }

    [Fact]
    public void TokenizerShorterThanTheEmbedding_IsPaddedWithUnusedTokens_AndLlamaCppStillAgrees()
    {
        using var tmp = new TempDir();
        using var model = GgufModels.Random(tmp, GgufModels.Qwen2, seed: 18);
        var full = GgufModels.VocabularyFor(model.Config);
        var shorter = full with { Tokens = full.Tokens[..280], Scores = full.Scores[..280], TokenTypes = full.TokenTypes[..280], Merges = full.Merges[..(280 - 257)] };
        string path = tmp.File("padded.gguf");
        GgufCheckpoint.Write(path, model.Config, model.Weights, shorter, GgufTensorType.F32, "m");
        using var loaded = Transformer.Load(path);
        var read = loaded.Tokenizer!.Vocabulary;
        Assert.Equal([.. shorter.Tokens, .. Enumerable.Range(280, 20).Select(i => $"[PAD{i}]")], read.Tokens);
        Assert.All(read.TokenTypes[280..], t => Assert.Equal(TruthProbe.Tokenizers.TokenType.Unused, t));
        int[] tokens = GgufModels.RandomTokens(10, model.Config.Vocab, seed: 19);
        Assert.InRange(MaxAbsDiff(AllLogits(loaded, tokens), LlamaCppReference.Logits(path, tokens)), 0, 1e-3);
    }

    [Fact]
    public void TokenizerLongerThanTheEmbedding_IsAUserError()
    {
        using var tmp = new TempDir();
        using var model = GgufModels.Random(tmp, GgufModels.Qwen2, seed: 20);
        var v = GgufModels.VocabularyFor(model.Config);
        var longer = v with { Tokens = [.. v.Tokens, "extra"], Scores = [.. v.Scores, 0], TokenTypes = [.. v.TokenTypes, 1] };
        var e = Assert.Throws<UserError>(() => GgufCheckpoint.Write(tmp.File("x.gguf"), model.Config, model.Weights, longer, GgufTensorType.F32, "m"));
        Assert.Contains("301 tokens", e.Message);
        Assert.False(File.Exists(tmp.File("x.gguf")));
    }

    [Fact]
    public void MistralWithAShortSlidingWindow_IsRefused_WithoutOutput()
    {
        using var tmp = new TempDir();
        using var model = GgufModels.Random(tmp, GgufModels.Llama with { Architecture = "mistral", QkvBias = false, OProjBias = false, SlidingWindow = 8 }, seed: 21);
        var e = Assert.Throws<UserError>(() => GgufCheckpoint.Write(tmp.File("m.gguf"), model.Config, model.Weights, null, GgufTensorType.F32, "m"));
        Assert.Contains("sliding window 8", e.Message);
        Assert.False(File.Exists(tmp.File("m.gguf")));
    }

    // ---- bad input ----

    /// <summary>A valid GGUF of a random llama, rewritten with edited metadata or a subset of its tensors.</summary>
    private static string Corrupted(TempDir tmp, Action<GgufMetadata> editMetadata, Func<GgufTensorInfo, bool>? keepTensor = null)
    {
        using var model = GgufModels.Random(tmp, GgufModels.Llama, seed: 16);
        string good = tmp.File("good.gguf"), bad = tmp.File("bad.gguf");
        GgufCheckpoint.Write(good, model.Config, model.Weights, null, GgufTensorType.F32, "m");
        using var file = GgufFile.Open(good);
        var metadata = new GgufMetadata(bad);
        foreach (var (k, v) in file.Metadata) metadata[k] = v;
        editMetadata(metadata);
        var tensors = file.Tensors.Where(keepTensor ?? (_ => true))
            .Select(t => new GgufTensorToWrite(t.Name, t.Type, t.Shape, s => s.Write(file.Bytes(t)))).ToList();
        GgufWriter.Write(bad, metadata, tensors);
        return bad;
    }

    private static string LoadFails(string path)
    {
        var e = Assert.Throws<UserError>(() => Transformer.Load(path).Dispose());
        Assert.Contains(path, e.Message);
        return e.Message;
    }

    [Fact]
    public void UnknownArchitecture_IsAUserErrorNamingIt()
    {
        using var tmp = new TempDir();
        Assert.Contains("'falcon'", LoadFails(Corrupted(tmp, m => m[GgufKeys.Architecture] = GgufValue.Of("falcon"))));
    }

    [Fact]
    public void MissingTensor_IsAUserErrorNamingIt()
    {
        using var tmp = new TempDir();
        Assert.Contains("'blk.1.ffn_up.weight'", LoadFails(Corrupted(tmp, _ => { }, t => t.Name != "blk.1.ffn_up.weight")));
    }

    [Fact]
    public void MetadataDisagreeingWithShapes_IsAUserErrorNamingTheTensor()
    {
        using var tmp = new TempDir();
        string message = LoadFails(Corrupted(tmp, m => m[GgufKeys.FeedForwardLength("llama")] = GgufValue.Of(128u)));
        Assert.Contains("'blk.0.ffn_gate.weight'", message);
        Assert.Contains("[96, 64]", message);
    }

    [Fact]
    public void WrongKeyType_IsAUserErrorNamingTheKey()
    {
        using var tmp = new TempDir();
        Assert.Contains(GgufKeys.BlockCount("llama"), LoadFails(Corrupted(tmp, m => m[GgufKeys.BlockCount("llama")] = GgufValue.Of("two"))));
    }

    [Fact]
    public void StrayTensor_IsAUserErrorNamingIt()
    {
        using var tmp = new TempDir();
        string path = Corrupted(tmp, m => m[GgufKeys.BlockCount("llama")] = GgufValue.Of(1u));
        Assert.Contains("'blk.1.", LoadFails(path));
    }
}
