using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Tests.Model;
using TruthProbe.Vision;

namespace TruthProbe.Tests.Vision;

/// <summary>
/// LLaVA-1.5 in float64 with plain loops, from the published architecture (transformers' modeling_clip and
/// modeling_llava): the patch embedding as a direct stride-P convolution (not im2col), softmax attention over all
/// positions, quick_gelu, hidden_states indexing, the projector with erf from its power series, then the tensors'
/// decoder through <see cref="ReferenceForward.Decoder"/>. It reads a hub-layout folder by tensor name and shares
/// no kernel, buffer or weight type with the engine.
/// </summary>
internal static class LlavaReference
{
    public sealed record Result(double[][] HiddenStates, double[][] ImageFeatures, double[][] Logits, List<double[][]> Z);

    /// <summary>
    /// <paramref name="ids"/> already expanded; <paramref name="c"/> read by the engine's config reader (its defaults are tested apart);
    /// <paramref name="hooks"/>, when given, receives every decoder hook point (<see cref="ReferenceForward.Hooks"/>).
    /// </summary>
    public static Result Run(string folder, LlavaConfig c, float[] pixels, int[] ids, Dictionary<string, double[]>? hooks = null)
    {
        using var file = SafetensorsFile.Open(Path.Combine(folder, "model.safetensors"));
        var Optional = Reader(file);
        var (hidden, image) = Tower(Optional, c, pixels);
        return new Result(hidden, image, Decode(Optional, c, image, ids, out var zs, hooks), zs);
    }

    /// <summary>
    /// The tower's selected hidden state (every row) and the projector's output (after the class-token choice) for
    /// one [3, S, S] image or tile.
    /// </summary>
    private static (double[][] Hidden, double[][] Image) Tower(Func<string, double[]?> Optional, LlavaConfig c, float[] pixels)
    {
        double[] T(string name) => Optional(name) ?? throw new KeyNotFoundException(name);
        string vp = "vision_tower.vision_model.";
        var v = c.Vision;
        int d = v.Hidden, P = v.PatchSize, S = v.ImageSize, G = S / P, N = G * G + 1, heads = v.Heads, hd = d / heads;

        // Embeddings: class token, then conv2d(pixels, W, stride P) per patch in row-major order, plus positions.
        var conv = T(vp + "embeddings.patch_embedding.weight");   // [d, C, P, P]
        var pos = T(vp + "embeddings.position_embedding.weight");
        var x = new double[N][];
        x[0] = T(vp + "embeddings.class_embedding");
        for (int py = 0; py < G; py++)
            for (int px = 0; px < G; px++)
            {
                var e = new double[d];
                for (int o = 0; o < d; o++)
                    for (int ch = 0; ch < v.Channels; ch++)
                        for (int y = 0; y < P; y++)
                            for (int xx = 0; xx < P; xx++)
                                e[o] += conv[((o * v.Channels + ch) * P + y) * P + xx] * pixels[ch * S * S + (py * P + y) * S + px * P + xx];
                x[1 + py * G + px] = e;
            }
        for (int t = 0; t < N; t++) x[t] = x[t].Select((a, i) => a + pos[t * d + i]).ToArray();
        x = x.Select(r => LayerNorm(r, T(vp + "pre_layrnorm.weight"), T(vp + "pre_layrnorm.bias"), v.LayerNormEps)).ToArray();

        var hidden = new List<double[][]> { x };
        for (int l = 0; l < v.Layers; l++)
        {
            string p = $"{vp}encoder.layers.{l}.";
            var xn = x.Select(r => LayerNorm(r, T(p + "layer_norm1.weight"), T(p + "layer_norm1.bias"), v.LayerNormEps)).ToArray();
            double[][] Proj(string name) => xn.Select(r => ReferenceForward.Linear(r, T(p + $"self_attn.{name}.weight"), T(p + $"self_attn.{name}.bias"), d)).ToArray();
            var q = Proj("q_proj"); var k = Proj("k_proj"); var val = Proj("v_proj");
            var z = new double[N][];
            for (int t = 0; t < N; t++)
            {
                z[t] = new double[d];
                for (int h = 0; h < heads; h++)
                {
                    var s = new double[N];
                    for (int j = 0; j < N; j++)
                    {
                        for (int i = 0; i < hd; i++) s[j] += q[t][h * hd + i] * k[j][h * hd + i];
                        s[j] /= Math.Sqrt(hd);
                    }
                    double max = s.Max(), sum = 0;
                    for (int j = 0; j < N; j++) sum += s[j] = Math.Exp(s[j] - max);
                    for (int j = 0; j < N; j++)
                        for (int i = 0; i < hd; i++) z[t][h * hd + i] += s[j] / sum * val[j][h * hd + i];
                }
            }
            var next = new double[N][];
            for (int t = 0; t < N; t++)
            {
                var o = ReferenceForward.Linear(z[t], T(p + "self_attn.out_proj.weight"), T(p + "self_attn.out_proj.bias"), d);
                var r = x[t].Select((a, i) => a + o[i]).ToArray();
                var n = LayerNorm(r, T(p + "layer_norm2.weight"), T(p + "layer_norm2.bias"), v.LayerNormEps);
                var f = ReferenceForward.Linear(n, T(p + "mlp.fc1.weight"), T(p + "mlp.fc1.bias"), v.Intermediate)
                    .Select(a => v.HiddenAct == "quick_gelu" ? a / (1 + Math.Exp(-1.702 * a)) : Gelu(a)).ToArray();
                var m = ReferenceForward.Linear(f, T(p + "mlp.fc2.weight"), T(p + "mlp.fc2.bias"), d);
                next[t] = r.Select((a, i) => a + m[i]).ToArray();
            }
            x = next;
            hidden.Add(x);
        }

        // hidden_states[vision_feature_layer], Python indexing; "default" drops the class row.
        int index = c.FeatureLayer < 0 ? hidden.Count + c.FeatureLayer : c.FeatureLayer;
        var selected = hidden[index].Skip(c.Select == FeatureSelect.Default ? 1 : 0).ToArray();
        int dm = c.Text.DModel;
        var image = selected.Select(r => ReferenceForward.Linear(
            ReferenceForward.Linear(r, T("multi_modal_projector.linear_1.weight"), Optional("multi_modal_projector.linear_1.bias"), dm).Select(Gelu).ToArray(),
            T("multi_modal_projector.linear_2.weight"), Optional("multi_modal_projector.linear_2.bias"), dm)).ToArray();
        return (hidden[index], image);
    }

    /// <summary>Embeddings of the ids with the image-token rows replaced in order (transformers' masked_scatter), through the decoder.</summary>
    private static double[][] Decode(Func<string, double[]?> Optional, LlavaConfig c, double[][] image, int[] ids, out List<double[][]> zs, Dictionary<string, double[]>? hooks = null)
    {
        int dm = c.Text.DModel;
        var embed = Optional("language_model.model.embed_tokens.weight")!;
        int next_ = 0;
        var input = ids.Select(id => id == c.ImageTokenId ? (double[])image[next_++].Clone() : embed.Skip(id * dm).Take(dm).ToArray()).ToArray();
        zs = [];
        return ReferenceForward.Decoder(c.Text, name => Optional("language_model." + name), input, zs, hooks);
    }

    /// <summary>
    /// LLaVA-NeXT (transformers' modeling_llava_next): every tile of <paramref name="tilePixels"/> ([tiles, 3, S, S],
    /// base first) through <see cref="Tower"/>; then pack_image_features, written as it reads there: the grid tiles'
    /// features viewed as (rows, columns, side, side, D) and laid out as one feature map of (rows * side) x
    /// (columns * side), unpad_image on it with the model's float rounding (<c>int(round(h * (current_w / w), 7))</c>),
    /// <c>image_newline</c> appended to every row, flattened row-major, and the base tile's features in front.
    /// <see cref="Result.HiddenStates"/> holds every tile's selected hidden state, tile after tile.
    /// </summary>
    public static Result RunNext(string folder, LlavaConfig c, float[] tilePixels, int gridRows, int gridColumns, int height, int width, int[] ids,
        Dictionary<string, double[]>? hooks = null)
    {
        using var file = SafetensorsFile.Open(Path.Combine(folder, "model.safetensors"));
        var Optional = Reader(file);
        int S = c.Vision.ImageSize, side = c.Vision.PatchesPerSide, plane = 3 * S * S, tiles = gridRows * gridColumns + 1;
        Assert.Equal(tiles * plane, tilePixels.Length);
        var towers = Enumerable.Range(0, tiles).Select(t => Tower(Optional, c, tilePixels[(t * plane)..((t + 1) * plane)])).ToArray();

        int H = gridRows * side, W = gridColumns * side;
        var map = new double[H, W][];
        for (int t = 1; t < tiles; t++)
            for (int y = 0; y < side; y++)
                for (int x = 0; x < side; x++)
                    map[(t - 1) / gridColumns * side + y, (t - 1) % gridColumns * side + x] = towers[t].Image[y * side + x];
        int top = 0, bottom = H, left = 0, right = W;
        if ((double)width / height > (double)W / H)
        {
            int kept = (int)Math.Round(height * ((double)W / width), 7);
            top = (H - kept) / 2;
            bottom = H - top;
        }
        else
        {
            int kept = (int)Math.Round(width * ((double)H / height), 7);
            left = (W - kept) / 2;
            right = W - left;
        }
        var newline = Optional("image_newline")!;
        var image = towers[0].Image.ToList();
        for (int y = top; y < bottom; y++)
        {
            for (int x = left; x < right; x++) image.Add(map[y, x]);
            image.Add(newline);
        }
        var packed = image.ToArray();
        return new Result(towers.SelectMany(t => t.Hidden).ToArray(), packed, Decode(Optional, c, packed, ids, out var zs, hooks), zs);
    }

    /// <summary>Tensors by name in float64, each read once (the loops above ask for the same weights per row).</summary>
    private static Func<string, double[]?> Reader(SafetensorsFile file)
    {
        var cache = new Dictionary<string, double[]?>();
        return name => cache.TryGetValue(name, out var t) ? t
            : cache[name] = file.Tensors.ContainsKey(name) ? file.ReadSingles(file.Get(name)).Select(v => (double)v).ToArray() : null;
    }

    private static double[] LayerNorm(double[] x, double[] w, double[] b, double eps)
    {
        double mean = x.Average(), var = x.Sum(a => (a - mean) * (a - mean)) / x.Length;
        return x.Select((a, i) => (a - mean) / Math.Sqrt(var + eps) * w[i] + b[i]).ToArray();
    }

    internal static double Gelu(double x) => 0.5 * x * (1 + Erf(x / Math.Sqrt(2)));

    /// <summary>erf by its Maclaurin series, 2/sqrt(pi) sum (-1)^n x^(2n+1) / (n! (2n+1)); beyond |x| = 4, erfc &lt; 2e-8.</summary>
    private static double Erf(double x)
    {
        if (Math.Abs(x) > 4) return Math.Sign(x);
        double term = x, sum = x;
        for (int n = 1; n < 200 && Math.Abs(term) > 1e-17; n++)
        {
            term *= -x * x / n;
            sum += term / (2 * n + 1);
        }
        return 2 / Math.Sqrt(Math.PI) * sum;
    }
}
