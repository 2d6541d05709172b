using TruthProbe.Model;
using TruthProbe.Numerics;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Model;

/// <summary>
/// <see cref="PrefixReuse"/>: a prompt prefilled from another prompt's cached prefix gets the logits of a whole-prompt
/// prefill bit for bit (and the float64 reference's to rounding), on both attention kernels, with a sliding window and
/// with gates, at every vector width; and <see cref="BatchGenerator"/>, which reuses prefixes, replies to HaluEval-shaped
/// prompts (a shared instruction, passages asked about with two answers, short and repeated prompts) as each prompt
/// does alone.
/// </summary>
public class PrefixReuseTests
{
    // FFN widths that are multiples of 16 (the reuse needs that); head size 8 takes the per-key attention kernel at
    // every query count, 16 the transposed-key one from 16 queries.
    private static ModelConfig Config(string architecture) => architecture switch
    {
        "qwen2" => TinyModels.Qwen2 with { MaxContext = 128 },
        "llama" => TinyModels.LlamaGqa with { MaxContext = 128 },
        _ => TinyModels.MistralWindow with { MaxContext = 128, Ffn = 48, SlidingWindow = 21 },
    };

    public static TheoryData<string, SimdPath> Cases()
    {
        var data = new TheoryData<string, SimdPath>();
        foreach (var architecture in new[] { "qwen2", "llama", "mistral" })
            foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256, SimdPath.Generic })
                data.Add(architecture, path);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RestFromACopiedPrefix_GivesTheWholePromptsLogits_BitForBit(string architecture, SimdPath path)
    {
        using var tmp = new TempDir();
        var config = Config(architecture);
        string folder = TinyModels.Write(tmp, config, WeightDType.BF16);
        using var model = Transformer.Load(folder);
        var gates = new float[config.Layers, config.Heads];
        for (int l = 0; l < config.Layers; l++)
            for (int h = 0; h < config.Heads; h++) gates[l, h] = 0.3f + 0.4f * ((l + h) % 3);
        var interventions = new Interventions(config).Gate(gates, GateSite.Head);
        int[] earlier = [.. Enumerable.Range(0, 83).Select(i => (i * 29 + 5) % config.Vocab)];
        SimdWidth.Forced = path;
        try
        {
            foreach (var edits in new[] { null, interventions })
                foreach (int length in new[] { 16, 70, 97 })
                {
                    // The prompt follows `earlier` for 61 ids, then goes its own way (or ends first).
                    int[] prompt = [.. Enumerable.Range(0, length).Select(i => i < 61 ? earlier[i] : (i * 7 + 1) % config.Vocab)];
                    float[] whole = model.Forward(model.NewState(), prompt, interventions: edits).ToArray();
                    var source = model.NewState();
                    model.Forward(source, earlier, interventions: edits);
                    int shared = PrefixReuse.SharedPositions(config, earlier, prompt);
                    Assert.Equal(Math.Min(61, length - PrefixReuse.MinRest), shared);
                    var target = model.NewState();
                    target.Reserve(length);
                    model.Forward(target, prompt.AsSpan(0, 3), interventions: edits); // stale positions, to be replaced
                    PrefixReuse.CopyPrefix(config, source, target, shared);
                    float[] reused = model.Forward(target, prompt.AsSpan(shared), interventions: edits).ToArray();
                    Assert.Equal(whole, reused);
                    Assert.Equal(length, target.Position);
                    if (edits != null || length != 97) continue;
                    double[] reference = ReferenceForward.Logits(folder, prompt)[^1];
                    double diff = TinyModels.MaxAbsDiff(reused, reference.Select(r => (float)r).ToArray());
                    Assert.True(diff < 1e-4, $"{architecture} {path}, {length} ids: {diff:g3} from the float64 reference");
                }
        }
        finally { SimdWidth.Forced = SimdPath.Auto; }
    }

    [Fact]
    public void SharedPositions_KeepsTheRestLongEnough_AndRefusesWhatWouldChangeBits()
    {
        var config = Config("llama");
        int[] a = [.. Enumerable.Range(0, 40)];
        int[] b = [.. Enumerable.Range(0, 30), 77, 78, 79, .. Enumerable.Range(0, 20)];
        Assert.Equal(30, PrefixReuse.SharedPositions(config, a, b));             // the rest: 23 ids
        Assert.Equal(40 - 16, PrefixReuse.SharedPositions(config, a, a));        // the same prompt: 16 ids recomputed
        Assert.Equal(0, PrefixReuse.SharedPositions(config, a, a[..16]));        // nothing left to share
        Assert.Equal(0, PrefixReuse.SharedPositions(config, a[..15], a));        // the earlier prompt took the other kernel
        Assert.Equal(0, PrefixReuse.SharedPositions(config with { Ffn = 40 }, a, b)); // SwiGLU chunks could end short
    }

    [Theory]
    [InlineData("qwen2")]
    [InlineData("llama")]
    [InlineData("mistral")]
    [InlineData("llama", KvCacheType.BF16)]   // a 16-bit cache copies and batches the same way
    [InlineData("qwen2", KvCacheType.F16)]
    public void BatchedWithReuse_RepliesAsEachPromptAlone(string architecture, KvCacheType cache = KvCacheType.F32)
    {
        using var tmp = new TempDir();
        var config = Config(architecture);
        using var model = Transformer.Load(TinyModels.Write(tmp, config, WeightDType.BF16));
        model.KvCache = cache;
        var prompts = HaluEvalShaped(config.Vocab);
        // The reuse must actually happen: neighbours in token order share prefixes.
        var sorted = prompts.Order(Comparer<int[]>.Create((x, y) => x.AsSpan().SequenceCompareTo(y))).ToArray();
        Assert.True(Enumerable.Range(1, sorted.Length - 1).Count(i => PrefixReuse.SharedPositions(config, sorted[i - 1], sorted[i]) > 0) >= 8);
        foreach (var options in new[]
        {
            new GenerationOptions { MaxNewTokens = 6, StopAtEos = false },
            new GenerationOptions { MaxNewTokens = 5, Temperature = 1.1f, Seed = 3 },
        })
        {
            var batched = BatchGenerator.Generate(model, prompts, options, batchSize: 3);
            var plain = BatchGenerator.Generate(model, prompts, options, batchSize: 3, reusePrefixes: false);
            for (int i = 0; i < prompts.Length; i++)
            {
                var alone = Generator.Generate(model, prompts[i], options);
                Assert.Equal(alone.NewIds, batched[i].NewIds);
                Assert.Equal(alone.StoppedAtEos, batched[i].StoppedAtEos);
                Assert.Equal(alone.NewIds, plain[i].NewIds);
            }
        }
    }

    /// <summary>An instruction of 20 ids, four passages (25-40 ids) each with two answers (3-20 ids) and a closing id,
    /// in the order a 3-seed HaluEval run lists its distinct prompts; a prompt twice, one shorter than 16 ids, and one
    /// that is a prefix of another.</summary>
    private static int[][] HaluEvalShaped(int vocab)
    {
        int Id(int i) => 4 + i % (vocab - 4);
        int[] instruction = [.. Enumerable.Range(0, 20).Select(i => Id(i * 11))];
        var prompts = new List<int[]>();
        for (int answer = 0; answer < 2; answer++)
            for (int row = 0; row < 4; row++)
            {
                int[] passage = [.. Enumerable.Range(0, 25 + 5 * row).Select(i => Id(i * 13 + row * 5 + 1))];
                int[] reply = [.. Enumerable.Range(0, 3 + 6 * ((row + answer) % 3)).Select(i => Id(i * 3 + answer * 17 + row))];
                prompts.Add([.. instruction, .. passage, .. reply, Id(2)]);
            }
        prompts.Add(prompts[2]);
        prompts.Add(instruction[..12]);
        prompts.Add(prompts[5][..^4]);
        return [.. prompts];
    }
}
