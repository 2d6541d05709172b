using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Model;

/// <summary>Small random models of each architecture trap: written as HF folders, loaded back.</summary>
internal static class TinyModels
{
    /// <summary>Qwen2-shaped: q/k/v biases, tied embeddings, GQA 4:2, rope theta 1e6.</summary>
    public static readonly ModelConfig Qwen2 = new()
    {
        Architecture = "qwen2", Layers = 2, DModel = 32, Heads = 4, KvHeads = 2, HeadDim = 8, Ffn = 48, Vocab = 64,
        MaxContext = 64, RopeTheta = 1_000_000f, RmsEps = 1e-6f, TiedEmbeddings = true, QkvBias = true, EosIds = [3],
    };

    /// <summary>Llama with GQA 4:2, an explicit head_dim (16 * 4 != 48), untied classifier and attention_bias (o_proj bias too).</summary>
    public static readonly ModelConfig LlamaGqa = new()
    {
        Architecture = "llama", Layers = 2, DModel = 48, Heads = 4, KvHeads = 2, HeadDim = 16, Ffn = 64, Vocab = 80,
        MaxContext = 64, QkvBias = true, OProjBias = true, BosId = 1, EosIds = [2],
    };

    /// <summary>Mistral with one kv head and a sliding window shorter than the test sequences.</summary>
    public static readonly ModelConfig MistralWindow = new()
    {
        Architecture = "mistral", Layers = 2, DModel = 32, Heads = 4, KvHeads = 1, HeadDim = 8, Ffn = 40, Vocab = 50,
        MaxContext = 64, SlidingWindow = 3, BosId = 1, EosIds = [2],
    };

    public static string Write(TempDir tmp, ModelConfig config, WeightDType dtype = WeightDType.F32, ulong seed = 7)
    {
        string folder = tmp.File($"{config.Architecture}-{dtype}-{seed}");
        RandomModel.WriteHf(folder, config, seed, dtype);
        return folder;
    }

    /// <summary>Logits [T, vocab] of every position in one prefill.</summary>
    public static float[] AllLogits(Transformer model, int[] tokens, Interventions? interventions = null)
    {
        var capture = new ActivationCapture(model.Config, [HookNames.Logits]);
        model.Forward(model.NewState(), tokens, capture, interventions);
        return capture[HookNames.Logits].Data;
    }

    public static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        double max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs((double)a[i] - b[i]));
        return max;
    }
}
