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
    public static double[][] Logits(string folder, int[] tokens) => Run(folder, tokens, null);

    /// <summary>
    /// Every hook point of a sequence starting at position 0, by TransformerLens's definitions (batch axis
    /// dropped), flattened row-major: per-position hooks [T, ..], attention scores and patterns [H, T, T]
    /// (scores -inf and pattern 0 where masked), logits [T, vocab].
    /// </summary>
    public static Dictionary<string, double[]> Hooks(string folder, int[] tokens)
    {
        var hooks = new Dictionary<string, double[]>();
        Run(folder, tokens, hooks);
        return hooks;
    }

    private static double[][] Run(string folder, int[] tokens, Dictionary<string, double[]>? hooks)
    {
        var c = ModelConfig.FromHfConfig(Path.Combine(folder, "config.json"));
        using var file = SafetensorsFile.Open(Path.Combine(folder, "model.safetensors"));
        double[]? Optional(string name) => file.Tensors.ContainsKey(name) ? file.ReadSingles(file.Get(name)).Select(v => (double)v).ToArray() : null;
        var embed = Optional("model.embed_tokens.weight")!;
        return Decoder(c, Optional, tokens.Select(t => embed.Skip(t * c.DModel).Take(c.DModel).ToArray()).ToArray(), hooks: hooks);
    }

    /// <summary>
    /// Logits [T][vocab] from input embeddings <paramref name="x"/> [T][d_model], tensors by their plain decoder
    /// names (null when absent); <paramref name="z"/>, when given, receives each layer's hook_z [T][H * d_head],
    /// and <paramref name="hooks"/> every hook point (see <see cref="Hooks"/>).
    /// </summary>
    public static double[][] Decoder(ModelConfig c, Func<string, double[]?> Optional, double[][] x, List<double[][]>? z = null, Dictionary<string, double[]>? hooks = null,
        Func<double[], int, double[]>? rotate = null)
    {
        // rotate(row, t) applies RoPE at sequence index t; plain RoPE unless the model's positions differ (M-RoPE).
        rotate ??= (row, t) => RotateHalf(row, t, c.HeadDim, c.RopeTheta);
        double[] Tensor(string name) => Optional(name) ?? throw new KeyNotFoundException(name);
        void Keep(string name, IEnumerable<double[]> rows) { if (hooks != null) hooks[name] = rows.SelectMany(r => r).ToArray(); }
        int T = x.Length, d = c.DModel, hd = c.HeadDim, H = c.Heads, Hkv = c.KvHeads;
        Keep("hook_embed", x);
        for (int l = 0; l < c.Layers; l++)
        {
            string p = $"model.layers.{l}.", b = $"blocks.{l}.";
            Keep(b + "hook_resid_pre", x);
            var xn = x.Select(row => RmsNorm(row, Tensor(p + "input_layernorm.weight"), c.RmsEps)).ToArray();
            var q = xn.Select(row => Linear(row, Tensor(p + "self_attn.q_proj.weight"), Optional(p + "self_attn.q_proj.bias"), H * hd)).ToArray();
            var k = xn.Select(row => Linear(row, Tensor(p + "self_attn.k_proj.weight"), Optional(p + "self_attn.k_proj.bias"), Hkv * hd)).ToArray();
            var v = xn.Select(row => Linear(row, Tensor(p + "self_attn.v_proj.weight"), Optional(p + "self_attn.v_proj.bias"), Hkv * hd)).ToArray();
            Keep(b + "attn.hook_q", q);
            Keep(b + "attn.hook_k", k);
            Keep(b + "attn.hook_v", v);
            q = q.Select(rotate).ToArray();
            k = k.Select(rotate).ToArray();
            Keep(b + "attn.hook_rot_q", q);
            Keep(b + "attn.hook_rot_k", k);

            var scores = new double[H * T * T];
            var pattern = new double[H * T * T];
            var zl = new double[T][];
            z?.Add(zl);
            for (int t = 0; t < T; t++)
            {
                zl[t] = new double[H * hd];
                for (int h = 0; h < H; h++)
                {
                    int kvh = h / (H / Hkv), row = (h * T + t) * T;
                    int first = c.SlidingWindow is int w ? Math.Max(0, t - w + 1) : 0;
                    for (int j = 0; j < T; j++)
                    {
                        double s = 0;
                        for (int i = 0; i < hd; i++) s += q[t][h * hd + i] * k[j][kvh * hd + i];
                        scores[row + j] = j < first || j > t ? double.NegativeInfinity : s / Math.Sqrt(hd);
                    }
                    double max = scores.Skip(row).Take(T).Max(), sum = 0;
                    for (int j = first; j <= t; j++) sum += pattern[row + j] = Math.Exp(scores[row + j] - max);
                    for (int j = first; j <= t; j++)
                    {
                        pattern[row + j] /= sum;
                        for (int i = 0; i < hd; i++) zl[t][h * hd + i] += pattern[row + j] * v[j][kvh * hd + i];
                    }
                }
            }
            if (hooks != null) { hooks[b + "attn.hook_attn_scores"] = scores; hooks[b + "attn.hook_pattern"] = pattern; }
            Keep(b + "attn.hook_z", zl);

            var attnOut = zl.Select(row => Linear(row, Tensor(p + "self_attn.o_proj.weight"), Optional(p + "self_attn.o_proj.bias"), d)).ToArray();
            Keep(b + "hook_attn_out", attnOut);
            x = x.Select((row, t) => row.Select((a, i) => a + attnOut[t][i]).ToArray()).ToArray();
            Keep(b + "hook_resid_mid", x);

            var n = x.Select(row => RmsNorm(row, Tensor(p + "post_attention_layernorm.weight"), c.RmsEps)).ToArray();
            var gate = n.Select(row => Linear(row, Tensor(p + "mlp.gate_proj.weight"), null, c.Ffn)).ToArray();
            var up = n.Select(row => Linear(row, Tensor(p + "mlp.up_proj.weight"), null, c.Ffn)).ToArray();
            var act = gate.Select((g, t) => g.Select((a, i) => a / (1 + Math.Exp(-a)) * up[t][i]).ToArray()).ToArray();
            var mlpOut = act.Select(row => Linear(row, Tensor(p + "mlp.down_proj.weight"), null, d)).ToArray();
            Keep(b + "mlp.hook_pre", gate);
            Keep(b + "mlp.hook_pre_linear", up);
            Keep(b + "mlp.hook_post", act);
            Keep(b + "hook_mlp_out", mlpOut);
            x = x.Select((row, t) => row.Select((a, i) => a + mlpOut[t][i]).ToArray()).ToArray();
            Keep(b + "hook_resid_post", x);
        }
        var head = Tensor(c.TiedEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight");
        var logits = x.Select(row => Linear(RmsNorm(row, Tensor("model.norm.weight"), c.RmsEps), head, null, c.Vocab)).ToArray();
        Keep("logits", logits);
        return logits;
    }

    internal static double[] RmsNorm(double[] x, double[] w, double eps)
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
    internal static double[] RotateHalf(double[] v, int position, int hd, double theta)
    {
        var r = new double[v.Length];
        for (int start = 0; start < v.Length; start += hd)
            for (int i = 0; i < hd / 2; i++)
            {
                double angle = position / Math.Pow(theta, 2.0 * i / hd);
                double a = v[start + i], b = v[start + i + hd / 2];
                r[start + i] = a * Math.Cos(angle) - b * Math.Sin(angle);
                r[start + i + hd / 2] = b * Math.Cos(angle) + a * Math.Sin(angle);
            }
        return r;
    }
}
