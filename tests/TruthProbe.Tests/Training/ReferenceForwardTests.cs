using TruthProbe.Lab;
using TruthProbe.Model;
using TruthProbe.Training;

namespace TruthProbe.Tests.Training;

/// <summary>
/// The training forward against a from-the-equations float64 Llama forward written here, loop by loop, from
/// the Hugging Face modeling code's definitions (LlamaRMSNorm, rotate_half RoPE, repeat_kv GQA, causal
/// softmax, SwiGLU MLP, tied head), sharing no code with the library.
/// </summary>
public class ReferenceForwardTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TrainingForward_MatchesNaiveFloat64Llama(bool tied)
    {
        var config = LabModelConfig.Create(Vocab: 13, Dim: 16, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 8, Hidden: 24, MaxPositions: 40, RopeTheta: 500, TieEmbeddings: tied);
        var model = new TrainableLlama(config);
        model.Initialize(3);
        var rng = new Random(4);
        for (int i = 0; i < model.Parameters.Values.Length; i++) model.Parameters.Values[i] += (float)(0.2 * TrainableLlama.Gaussian(rng));
        // 37 positions: the attention kernels work on blocks of 16 keys, so this crosses two block edges.
        int[] tokens = Enumerable.Range(0, 37).Select(i => (i * i + 3 * i + 1) % 13).ToArray();
        var batch = new TrainingBatch(1, tokens.Length, tokens, new int[tokens.Length], new float[tokens.Length]);
        model.Forward(batch, out _, out _);
        var logits = model.Logits.ToArray();
        var expected = Naive(config, name => model.Parameters.Value(name).ToArray().Select(x => (double)x).ToArray(), tokens);
        double maxDiff = expected.Zip(logits, (e, l) => Math.Abs(e - l)).Max();
        Assert.True(maxDiff < 1e-4, $"max |logit difference| {maxDiff}");
    }

    private static double[] Naive(ModelConfig c, Func<string, double[]> w, int[] tokens)
    {
        int T = tokens.Length, D = c.DModel, hd = c.HeadDim;
        var x = new double[T][];
        var emb = w("model.embed_tokens.weight");
        for (int t = 0; t < T; t++) x[t] = emb.Skip(tokens[t] * D).Take(D).ToArray();
        for (int l = 0; l < c.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            var h = x.Select(r => RmsNorm(r, w(p + "input_layernorm.weight"), c.RmsEps)).ToArray();
            var q = h.Select(r => Linear(r, w(p + "self_attn.q_proj.weight"), c.Heads * hd)).ToArray();
            var k = h.Select(r => Linear(r, w(p + "self_attn.k_proj.weight"), c.KvHeads * hd)).ToArray();
            var v = h.Select(r => Linear(r, w(p + "self_attn.v_proj.weight"), c.KvHeads * hd)).ToArray();
            for (int t = 0; t < T; t++)
            {
                for (int head = 0; head < c.Heads; head++) RotateHalf(q[t], head * hd, hd, t, c.RopeTheta);
                for (int head = 0; head < c.KvHeads; head++) RotateHalf(k[t], head * hd, hd, t, c.RopeTheta);
            }
            var z = new double[T][];
            for (int t = 0; t < T; t++)
            {
                z[t] = new double[c.Heads * hd];
                for (int head = 0; head < c.Heads; head++)
                {
                    int kvHead = head / (c.Heads / c.KvHeads); // repeat_kv
                    var scores = new double[t + 1];
                    for (int s = 0; s <= t; s++)
                    {
                        for (int i = 0; i < hd; i++) scores[s] += q[t][head * hd + i] * k[s][kvHead * hd + i];
                        scores[s] /= Math.Sqrt(hd);
                    }
                    double max = scores.Max(), sum = scores.Sum(sc => Math.Exp(sc - max));
                    for (int s = 0; s <= t; s++)
                        for (int i = 0; i < hd; i++) z[t][head * hd + i] += Math.Exp(scores[s] - max) / sum * v[s][kvHead * hd + i];
                }
            }
            for (int t = 0; t < T; t++)
            {
                var o = Linear(z[t], w(p + "self_attn.o_proj.weight"), D);
                for (int i = 0; i < D; i++) x[t][i] += o[i];
                var m = RmsNorm(x[t], w(p + "post_attention_layernorm.weight"), c.RmsEps);
                var gate = Linear(m, w(p + "mlp.gate_proj.weight"), c.Ffn);
                var up = Linear(m, w(p + "mlp.up_proj.weight"), c.Ffn);
                var act = gate.Select((g, i) => g / (1 + Math.Exp(-g)) * up[i]).ToArray();
                var down = Linear(act, w(p + "mlp.down_proj.weight"), D);
                for (int i = 0; i < D; i++) x[t][i] += down[i];
            }
        }
        var lmHead = c.TiedEmbeddings ? emb : w("lm_head.weight");
        return x.SelectMany(r => Linear(RmsNorm(r, w("model.norm.weight"), c.RmsEps), lmHead, c.Vocab)).ToArray();
    }

    private static double[] RmsNorm(double[] x, double[] weight, double eps)
    {
        double ms = x.Average(v => v * v);
        return x.Select((v, i) => v / Math.Sqrt(ms + eps) * weight[i]).ToArray();
    }

    /// <summary>y = W·x with W stored [outputs, inputs] (nn.Linear).</summary>
    private static double[] Linear(double[] x, double[] weight, int outputs) =>
        Enumerable.Range(0, outputs).Select(o => x.Select((v, i) => v * weight[o * x.Length + i]).Sum()).ToArray();

    /// <summary>q·cos + rotate_half(q)·sin, rotate_half(x) = cat(−x2, x1), inv_freq_i = theta^(−2i/d).</summary>
    private static void RotateHalf(double[] vec, int offset, int hd, int pos, double theta)
    {
        int half = hd / 2;
        var orig = vec.Skip(offset).Take(hd).ToArray();
        for (int i = 0; i < hd; i++)
        {
            double freq = Math.Pow(theta, -2.0 * (i % half) / hd);
            double rotated = i < half ? -orig[i + half] : orig[i - half];
            vec[offset + i] = orig[i] * Math.Cos(pos * freq) + rotated * Math.Sin(pos * freq);
        }
    }
}
