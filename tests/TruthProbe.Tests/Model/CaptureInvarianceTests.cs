using TruthProbe.Model;
using TruthProbe.Numerics;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Model;

/// <summary>
/// Observing a model never changes it: capturing every hook, or any one of them, leaves the returned logits
/// and every hook's value bit-identical (raw float bits) to a run that captures less. Covered: prefill,
/// prefill after a cache, decode steps; GQA, multi-query with a sliding window, q/k/v biases; both attention
/// paths (per-key, and transposed keys at 16+ queries with head size 32); every vector width the kernels can be forced to.
/// </summary>
public class CaptureInvarianceTests
{
    /// <summary>Head size 32 and 20-token calls: the transposed-key attention path on Vector512 machines.</summary>
    private static readonly ModelConfig Wide = new()
    {
        Architecture = "qwen2", Layers = 2, DModel = 64, Heads = 4, KvHeads = 2, HeadDim = 32, Ffn = 96, Vocab = 70,
        MaxContext = 64, RopeTheta = 10000f, RmsEps = 1e-6f, TiedEmbeddings = true, QkvBias = true, BosId = 1, EosIds = [2],
    };

    private static readonly (string Name, ModelConfig Config)[] Configs =
        [("llama-gqa", TinyModels.LlamaGqa), ("qwen2", TinyModels.Qwen2), ("mistral-window", TinyModels.MistralWindow), ("wide", Wide)];

    /// <summary>(tokens in the call, positions already cached).</summary>
    private static readonly (int Tokens, int Cached)[] Calls = [(1, 0), (7, 0), (1, 9), (20, 5)];

    public static TheoryData<string, SimdPath> Cases()
    {
        var data = new TheoryData<string, SimdPath>();
        foreach (var (name, _) in Configs)
            foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256, SimdPath.Generic }) data.Add(name, path);
        return data;
    }

    private static int[] Bits(ReadOnlySpan<float> values)
    {
        var bits = new int[values.Length];
        for (int i = 0; i < bits.Length; i++) bits[i] = BitConverter.SingleToInt32Bits(values[i]);
        return bits;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void CapturingAnyHooks_LeavesLogitsAndEveryHookBitIdentical(string configName, SimdPath path)
    {
        var config = Configs.Single(c => c.Name == configName).Config;
        using var tmp = new TempDir();
        using var model = Transformer.Load(TinyModels.Write(tmp, config));
        SimdWidth.Forced = path;
        try
        {
            foreach (var (tokens, cached) in Calls)
            {
                int[] ids = Enumerable.Range(0, cached + tokens).Select(i => (i * 29 + 3) % config.Vocab).ToArray();
                int[] Run(ActivationCapture? capture)
                {
                    var state = model.NewState();
                    if (cached > 0) model.Forward(state, ids[..cached]);
                    return Bits(model.Forward(state, ids[cached..], capture));
                }
                string where = $"{configName} {path}, {tokens} token(s) after {cached}";
                int[] plain = Run(null);
                var all = new ActivationCapture(config, ["*"]);
                Assert.Equal(plain, Run(all));
                Assert.Equal(plain, Bits(all[HookNames.Logits].Data.AsSpan(^config.Vocab..)));
                foreach (string name in HookNames.All(config.Layers))
                {
                    var one = new ActivationCapture(config, [name]);
                    Assert.True(plain.AsSpan().SequenceEqual(Run(one)), $"{where}: capturing {name} changed the logits");
                    Assert.True(Bits(all[name].Data).AsSpan().SequenceEqual(Bits(one[name].Data)), $"{where}: {name} differs when captured alone");
                }
            }
        }
        finally { SimdWidth.Forced = SimdPath.Auto; }
    }
}
