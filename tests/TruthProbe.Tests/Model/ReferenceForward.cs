using TruthProbe.Formats;
using TruthProbe.Model;

namespace TruthProbe.Tests.Model;

/// <summary>
/// A second, deliberately naive forward pass for Hugging Face folders: plain loops in double precision over
/// tensors read by name, following the equations of modeling_llama / modeling_qwen2 / modeling_mistral
/// directly. It shares no kernel, buffer or weight type with the engine.
/// </summary>
internal static class ReferenceForward
{
    /// <summary>Logits [T][vocab] of a sequence starting at position 0.</summary>
    public static double[][] Logits(string folder, int[] tokens)
    {
        var c = ModelConfig.FromHfConfig(Path.Combine(folder, "config.json"));
        using var file = SafetensorsFile.Open(Path.Combine(folder, "model.safetensors"));
        double[]? Optional(string name) => file.Tensors.ContainsKey(name) ? file.ReadSingles(file.Get(name)).Select(v => (double)v).ToArray() : null;
        var embed = Optional("model.embed_tokens.weight")!;
        return Decoder(c, Optional, tokens.Select(t => embed.Skip(t * c.DModel).Take(c.DModel).ToArray()).ToArray());
    }

    /// <summary>
    /// Logits [T][vocab] from input embeddings <paramref name="x"/> [T][d_model] (changed in place), tensors by their
    /// plain decoder names (null when absent); <paramref name="z"/>, when given, receives each layer's hook_z [T][H * d_head].
    /// </summary>
    public static double[][] Decoder(ModelConfig c, Func<string, double[]?> Optional, double[][] x, List<double[][]>? z = null)
    {
        double[] Tensor(string name) => Optional(name) ?? throw new KeyNotFoundException(name);
        int T = x.Length, d = c.DModel, hd = c.HeadDim, H = c.Heads, Hkv = c.KvHeads;
        for (int l = 0; l < c.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            var xn = x.Select(row => RmsNorm(row, Tensor(p + "input_layernorm.weight"), c.RmsEps)).ToArray();
            var q = xn.Select(row => Linear(row, Tensor(p + "self_attn.q_proj.weight"), Optional(p + "self_attn.q_proj.bias"), H * hd)).ToArray();
            var k = xn.Select(row => Linear(row, Tensor(p + "self_attn.k_proj.weight"), Optional(p + "self_attn.k_proj.bias"), Hkv * hd)).ToArray();
            var v = xn.Select(row => Linear(row, Tensor(p + "self_attn.v_proj.weight"), Optional(p + "self_attn.v_proj.bias"), Hkv * hd)).ToArray();
            for (int t = 0; t < T; t++) { RotateHalf(q[t], t, hd, c.RopeTheta); RotateHalf(k[t], t, hd, c.RopeTheta); }

            var zl = new double[T][];
            z?.Add(zl);
            for (int t = 0; t < T; t++)
            {
                zl[t] = new double[H * hd];
                for (int h = 0; h < H; h++)
                {
                    int kvh = h / (H / Hkv);
                    int first = c.SlidingWindow is int w ? Math.Max(0, t - w + 1) : 0;
                    var scores = new double[t + 1];
                    for (int j = first; j <= t; j++)
                    {
                        double s = 0;
                        for (int i = 0; i < hd; i++) s += q[t][h * hd + i] * k[j][kvh * hd + i];
                        scores[j] = s / Math.Sqrt(hd);
                    }
                    double max = scores.Skip(first).Max(), sum = 0;
                    for (int j = first; j <= t; j++) sum += scores[j] = Math.Exp(scores[j] - max);
                    for (int j = first; j <= t; j++)
                        for (int i = 0; i < hd; i++) zl[t][h * hd + i] += scores[j] / sum * v[j][kvh * hd + i];
                }
            }
            for (int t = 0; t < T; t++)
            {
                var o = Linear(zl[t], Tensor(p + "self_attn.o_proj.weight"), Optional(p + "self_attn.o_proj.bias"), d);
                for (int i = 0; i < d; i++) x[t][i] += o[i];
                var n = RmsNorm(x[t], Tensor(p + "post_attention_layernorm.weight"), c.RmsEps);
                var gate = Linear(n, Tensor(p + "mlp.gate_proj.weight"), null, c.Ffn);
                var up = Linear(n, Tensor(p + "mlp.up_proj.weight"), null, c.Ffn);
                var act = gate.Select((g, i) => g / (1 + Math.Exp(-g)) * up[i]).ToArray();
                var down = Linear(act, Tensor(p + "mlp.down_proj.weight"), null, d);
                for (int i = 0; i < d; i++) x[t][i] += down[i];
            }
        }
        var head = Tensor(c.TiedEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight");
        return x.Select(row => Linear(RmsNorm(row, Tensor("model.norm.weight"), c.RmsEps), head, null, c.Vocab)).ToArray();
    }

    private static double[] RmsNorm(double[] x, double[] w, double eps)
    {
        double ms = x.Sum(a => a * a) / x.Length;
        return x.Select((a, i) => a / Math.Sqrt(ms + eps) * w[i]).ToArray();
    }

    /// <summary>y = W x + b with W stored [outputs, inputs].</summary>
    internal static double[] Linear(double[] x, double[] w, double[]? b, int outputs)
    {
        var y = new double[outputs];
        for (int r = 0; r < outputs; r++)
        {
            double s = b?[r] ?? 0;
            for (int i = 0; i < x.Length; i++) s += w[r * x.Length + i] * x[i];
            y[r] = s;
        }
        return y;
    }

    /// <summary>HF rotate_half: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) on the two halves of each head.</summary>
    private static void RotateHalf(double[] v, int position, int hd, double theta)
    {
        for (int start = 0; start < v.Length; start += hd)
            for (int i = 0; i < hd / 2; i++)
            {
                double angle = position / Math.Pow(theta, 2.0 * i / hd);
                double a = v[start + i], b = v[start + i + hd / 2];
                v[start + i] = a * Math.Cos(angle) - b * Math.Sin(angle);
                v[start + i + hd / 2] = b * Math.Cos(angle) + a * Math.Sin(angle);
            }
    }
}
