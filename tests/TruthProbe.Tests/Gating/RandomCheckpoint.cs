using TruthProbe.Model;

namespace TruthProbe.Tests.Gating;

/// <summary>Small random models written as Hugging Face folders (fp32), for exactness tests of gating and patching.</summary>
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
        var rng = new Random(seed);
        float[] Values(int n, double scale, double offset = 0) => Enumerable.Range(0, n).Select(_ => (float)(offset + scale * (rng.NextDouble() * 2 - 1))).ToArray();
        WeightMatrix Matrix(int rows, int cols) => WeightMatrix.FromSingles(Values(rows * cols, 1.0 / Math.Sqrt(cols)), rows, cols);
        var layers = Enumerable.Range(0, c.Layers).Select(_ => new LayerWeights
        {
            InputNorm = Values(c.DModel, 0.2, 1),
            Q = Matrix(c.QDim, c.DModel), K = Matrix(c.KvDim, c.DModel), V = Matrix(c.KvDim, c.DModel), O = Matrix(c.DModel, c.QDim),
            QBias = Values(c.QDim, 0.3), KBias = Values(c.KvDim, 0.3), VBias = Values(c.KvDim, 0.3),
            OBias = c.OProjBias ? Values(c.DModel, 0.3) : null,
            PostAttentionNorm = Values(c.DModel, 0.2, 1),
            Gate = Matrix(c.Ffn, c.DModel), Up = Matrix(c.Ffn, c.DModel), Down = Matrix(c.DModel, c.Ffn),
        }).ToArray();
        var weights = new ModelWeights
        {
            TokenEmbedding = Matrix(c.Vocab, c.DModel),
            Layers = layers,
            FinalNorm = Values(c.DModel, 0.2, 1),
            Classifier = Matrix(c.Vocab, c.DModel),
        };
        HfCheckpoint.Write(folder, c, weights, WeightDType.F32);
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
