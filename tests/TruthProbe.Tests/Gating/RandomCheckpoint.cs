using TruthProbe.Model;

namespace TruthProbe.Tests.Gating;

/// <summary>Shapes and gates for the exactness tests of gating and patching (weights from <see cref="RandomModel"/>, fp32).</summary>
public static class RandomCheckpoint
{
    /// <summary>
    /// qwen2 (q/k/v biases, no o_proj bias) or llama with attention_bias (o_proj bias too). d_model 24 with
    /// 4 heads of 8: H * d_head = 32 differs from d_model, so the o-proj-out chunks (6 wide) are not heads.
    /// </summary>
    public static ModelConfig Config(string architecture) => new()
    {
        Architecture = architecture,
        Layers = 3, DModel = 24, Heads = 4, KvHeads = 2, HeadDim = 8, Ffn = 40, Vocab = 50, MaxContext = 64,
        RmsEps = 1e-6f, QkvBias = true, OProjBias = architecture == "llama", BosId = 1, EosIds = [2],
    };

    public static string Write(string folder, ModelConfig c, int seed)
    {
        RandomModel.WriteHf(folder, c, (ulong)seed, WeightDType.F32);
        return folder;
    }

    /// <summary>Gates in [-0.5, 2]: some negative, none clamped, as contrast gates can be.</summary>
    public static float[,] Gates(int layers, int heads, int seed)
    {
        var rng = new Random(seed);
        var g = new float[layers, heads];
        for (int l = 0; l < layers; l++) for (int h = 0; h < heads; h++) g[l, h] = (float)(rng.NextDouble() * 2.5 - 0.5);
        return g;
    }
}
