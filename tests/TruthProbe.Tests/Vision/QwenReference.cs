using TruthProbe.Formats;
using TruthProbe.Tests.Model;
using TruthProbe.Vision;

namespace TruthProbe.Tests.Vision;

/// <summary>
/// The Qwen2.5-VL vision encoder in float64 with plain loops, from the published architecture (transformers'
/// modeling_qwen2_5_vl: Qwen2_5_VisionTransformerPretrainedModel.forward, rot_pos_emb, get_window_index, the blocks and
/// the patch merger): the Conv3d over each (channel, frame, y, x) row with the whole kernel, both frames; the window
/// index built as the reference builds it (the merged grid padded with -100, reshaped, permuted, padding dropped), the
/// hidden rows permuted into window order, attention within cu_seqlens segments, the merger in window order and the
/// inverse permutation (argsort) last. It reads a hub-layout folder (<c>visual.*</c>, fused qkv) by tensor name and
/// shares no kernel, buffer, weight type or index helper with the engine.
/// </summary>
internal static class QwenReference
{
    /// <summary>Image features [tokens][d_model] in the original (merge-group) token order, and each block's output in patch order.</summary>
    public sealed record VisionResult(double[][] Features, List<double[][]> Blocks);

    public sealed record Result(double[][] ImageFeatures, double[][] Logits, List<double[][]> Z, int[][] PositionIds);

    /// <summary>
    /// The whole model on expanded <paramref name="ids"/> (the image pads already repeated): image features, embeddings
    /// with the pads' rows replaced in order (masked_scatter), position ids as get_rope_index builds them, and the Qwen2
    /// decoder of <see cref="ReferenceForward.Decoder"/> with apply_multimodal_rotary_pos_emb's rotation.
    /// </summary>
    /// <param name="hooks">when given, receives the decoder's hooks as <see cref="ReferenceForward.Decoder"/> keeps them (hook_pattern [H, T, T] among them).</param>
    public static Result Run(string folder, QwenVLConfig c, float[]? pixels, int gridH, int gridW, int[] ids, Dictionary<string, double[]>? hooks = null)
    {
        var image = pixels == null ? [] : Vision(folder, c.Vision, pixels, gridH, gridW).Features;
        using var file = SafetensorsFile.Open(Path.Combine(folder, "model.safetensors"));
        var read = new Dictionary<string, double[]?>();   // the decoder asks for each tensor once per row
        double[]? Optional(string name) => read.TryGetValue(name, out var t) ? t
            : read[name] = file.Tensors.ContainsKey(name) ? file.ReadSingles(file.Get(name)).Select(x => (double)x).ToArray() : null;
        int dm = c.Text.DModel, hd = c.Text.HeadDim, next = 0;
        var embed = Optional("model.embed_tokens.weight")!;
        var input = ids.Select(id => id == c.ImageTokenId ? (double[])image[next++].Clone() : embed.Skip(id * dm).Take(dm).ToArray()).ToArray();

        // get_rope_index: text segments arange(len) + st_idx in all rows; the image (grid_t 1) t = 0, h = i, w = j over
        // the merged grid, plus text_len + st_idx; st_idx = max so far + 1 after each segment.
        int length = ids.Length;
        int[][] positions = [new int[length], new int[length], new int[length]];
        int st = 0, cursor = 0;
        while (cursor < length)
        {
            int imageStart = Array.IndexOf(ids, c.ImageTokenId, cursor);
            int textEnd = imageStart < 0 ? length : imageStart;
            for (int t = cursor; t < textEnd; t++) positions[0][t] = positions[1][t] = positions[2][t] = st + t - cursor;
            int textLen = textEnd - cursor;
            if (imageStart < 0) break;
            int h = gridH / c.Vision.MergeSize, w = gridW / c.Vision.MergeSize, max = 0;
            for (int k = 0; k < h * w; k++)
            {
                int t = imageStart + k;
                positions[0][t] = 0 + textLen + st;
                positions[1][t] = k / w + textLen + st;
                positions[2][t] = k % w + textLen + st;
                max = Math.Max(max, Math.Max(positions[1][t], positions[2][t]));
            }
            st = max + 1;
            cursor = imageStart + h * w;
        }

        // apply_multimodal_rotary_pos_emb: freqs per row (3, T, hd/2), cat(freqs, freqs), split by mrope_section * 2,
        // chunk k taken from row k % 3; then q cos + rotate_half(q) sin.
        int[] doubled = [.. c.MropeSection, .. c.MropeSection];
        var row = new int[hd];
        for (int k = 0, i = 0; k < doubled.Length; k++)
            for (int e = 0; e < doubled[k]; e++) row[i++] = k % 3;
        double[] Rotate(double[] x, int t)
        {
            var r = new double[x.Length];
            for (int start = 0; start < x.Length; start += hd)
                for (int i = 0; i < hd; i++)
                {
                    double angle = positions[row[i]][t] / Math.Pow(c.Text.RopeTheta, 2.0 * (i % (hd / 2)) / hd);
                    double half = i < hd / 2 ? -x[start + i + hd / 2] : x[start + i - hd / 2];
                    r[start + i] = x[start + i] * Math.Cos(angle) + half * Math.Sin(angle);
                }
            return r;
        }
        var z = new List<double[][]>();
        var logits = ReferenceForward.Decoder(c.Text, Optional, input, z, hooks, rotate: Rotate);
        return new Result(image, logits, z, positions);
    }

    public static VisionResult Vision(string folder, QwenVisionConfig v, float[] pixels, int gridH, int gridW)
    {
        using var file = SafetensorsFile.Open(Path.Combine(folder, "model.safetensors"));
        var read = new Dictionary<string, double[]>();
        double[] T(string name) => read.TryGetValue(name, out var t) ? t : read[name] = file.ReadSingles(file.Get("visual." + name)).Select(x => (double)x).ToArray();
        int d = v.Hidden, heads = v.Heads, hd = d / heads, n = gridH * gridW, values = pixels.Length / n, unit = v.MergeSize * v.MergeSize;

        // patch_embed: Conv3d with kernel = stride = (frames, P, P) is, per row, the dot product of the row with each kernel row.
        var kernel = T("patch_embed.proj.weight");
        var x = new double[n][];
        for (int r = 0; r < n; r++)
        {
            x[r] = new double[d];
            for (int o = 0; o < d; o++)
                for (int i = 0; i < values; i++) x[r][o] += kernel[o * values + i] * pixels[r * values + i];
        }

        // rot_pos_emb: hpos/wpos as arange grids reshaped (h/m, m, w/m, m), permuted (0, 2, 1, 3), flattened.
        int m = v.MergeSize, quarter = hd / 4;
        var freqs = new double[n][];
        int f = 0;
        for (int a = 0; a < gridH / m; a++)
            for (int b = 0; b < gridW / m; b++)
                for (int c = 0; c < m; c++)
                    for (int e = 0; e < m; e++, f++)
                    {
                        int h = a * m + c, w = b * m + e;
                        freqs[f] = new double[2 * quarter];
                        for (int k = 0; k < quarter; k++)
                        {
                            double inv = 1 / Math.Pow(10000, 2.0 * k / (hd / 2));
                            freqs[f][k] = h * inv;
                            freqs[f][quarter + k] = w * inv;
                        }
                    }

        // get_window_index, literally: pad the merged grid with -100 up to whole windows, list window by window.
        int vmws = v.WindowSize / v.MergeSize / v.PatchSize, lh = gridH / m, lw = gridW / m;
        int padH = vmws - lh % vmws, padW = vmws - lw % vmws, nwh = (lh + padH) / vmws, nww = (lw + padW) / vmws;
        var padded = new int[(lh + padH) * (lw + padW)];
        for (int y = 0; y < lh + padH; y++)
            for (int xx = 0; xx < lw + padW; xx++) padded[y * (lw + padW) + xx] = y < lh && xx < lw ? y * lw + xx : -100;
        var windowIndex = new List<int>();
        var cuWindow = new List<int> { 0 };
        for (int wy = 0; wy < nwh; wy++)
            for (int wx = 0; wx < nww; wx++)
            {
                int count = 0;
                for (int y = 0; y < vmws; y++)
                    for (int xx = 0; xx < vmws; xx++)
                    {
                        int id = padded[(wy * vmws + y) * (lw + padW) + wx * vmws + xx];
                        if (id != -100) { windowIndex.Add(id); count++; }
                    }
                cuWindow.Add(cuWindow[^1] + count * unit);
            }
        var cuWindowUnique = cuWindow.Where((c, i) => i == 0 || c != cuWindow[i - 1]).ToArray();   // torch.unique_consecutive
        int[] cuFull = [0, n];

        // hidden_states[window_index] over groups of `unit` rows, and the rotary rows likewise.
        double[][] Permute(double[][] rows) => [.. windowIndex.SelectMany(t => Enumerable.Range(0, unit).Select(u => rows[t * unit + u]))];
        x = Permute(x);
        freqs = Permute(freqs);
        var inverse = new int[windowIndex.Count];
        for (int i = 0; i < windowIndex.Count; i++) inverse[windowIndex[i]] = i;   // argsort of a permutation

        var blocks = new List<double[][]>();
        for (int l = 0; l < v.Depth; l++)
        {
            string p = $"blocks.{l}.";
            int[] cu = v.FullAttentionBlocks.Contains(l) ? cuFull : cuWindowUnique;
            var xn = x.Select(r => ReferenceForward.RmsNorm(r, T(p + "norm1.weight"), 1e-6)).ToArray();
            var qkv = xn.Select(r => ReferenceForward.Linear(r, T(p + "attn.qkv.weight"), T(p + "attn.qkv.bias"), 3 * d)).ToArray();
            // reshape (seq, 3, heads, hd): q = [0, d), k = [d, 2d), v = [2d, 3d); rotary on q and k with cos/sin of cat(freqs, freqs).
            double[] Rotate(double[] row, int t, int part)
            {
                var r = new double[d];
                for (int h = 0; h < heads; h++)
                    for (int i = 0; i < hd; i++)
                    {
                        double angle = freqs[t][i % (hd / 2)];
                        double self = row[part * d + h * hd + i];
                        double half = i < hd / 2 ? -row[part * d + h * hd + i + hd / 2] : row[part * d + h * hd + i - hd / 2];
                        r[h * hd + i] = self * Math.Cos(angle) + half * Math.Sin(angle);
                    }
                return r;
            }
            var q = qkv.Select((r, t) => Rotate(r, t, 0)).ToArray();
            var k = qkv.Select((r, t) => Rotate(r, t, 1)).ToArray();
            var val = qkv.Select(r => r.Skip(2 * d).ToArray()).ToArray();
            var z = new double[n][];
            for (int seg = 0; seg + 1 < cu.Length; seg++)
                for (int t = cu[seg]; t < cu[seg + 1]; t++)
                {
                    z[t] = new double[d];
                    for (int h = 0; h < heads; h++)
                    {
                        var s = new double[cu[seg + 1] - cu[seg]];
                        for (int j = 0; j < s.Length; j++)
                        {
                            for (int i = 0; i < hd; i++) s[j] += q[t][h * hd + i] * k[cu[seg] + j][h * hd + i];
                            s[j] /= Math.Sqrt(hd);
                        }
                        double max = s.Max(), sum = 0;
                        for (int j = 0; j < s.Length; j++) sum += s[j] = Math.Exp(s[j] - max);
                        for (int j = 0; j < s.Length; j++)
                            for (int i = 0; i < hd; i++) z[t][h * hd + i] += s[j] / sum * val[cu[seg] + j][h * hd + i];
                    }
                }
            var next = new double[n][];
            for (int t = 0; t < n; t++)
            {
                var o = ReferenceForward.Linear(z[t], T(p + "attn.proj.weight"), T(p + "attn.proj.bias"), d);
                var r = x[t].Select((a, i) => a + o[i]).ToArray();
                var nr = ReferenceForward.RmsNorm(r, T(p + "norm2.weight"), 1e-6);
                var gate = ReferenceForward.Linear(nr, T(p + "mlp.gate_proj.weight"), T(p + "mlp.gate_proj.bias"), v.Intermediate);
                var up = ReferenceForward.Linear(nr, T(p + "mlp.up_proj.weight"), T(p + "mlp.up_proj.bias"), v.Intermediate);
                var act = gate.Select((g, i) => g / (1 + Math.Exp(-g)) * up[i]).ToArray();
                var down = ReferenceForward.Linear(act, T(p + "mlp.down_proj.weight"), T(p + "mlp.down_proj.bias"), d);
                next[t] = r.Select((a, i) => a + down[i]).ToArray();
            }
            x = next;
            blocks.Add([.. Enumerable.Range(0, n).Select(r => x[inverse[r / unit] * unit + r % unit])]);
        }

        // Merger in window order: ln_q per row, `unit` rows viewed as one, mlp.0, GELU, mlp.2; then hidden[argsort(window_index)].
        var normed = x.Select(r => ReferenceForward.RmsNorm(r, T("merger.ln_q.weight"), 1e-6)).ToArray();
        var merged = new double[n / unit][];
        for (int g = 0; g < merged.Length; g++)
        {
            var row = Enumerable.Range(0, unit).SelectMany(u => normed[g * unit + u]).ToArray();
            var hidden = ReferenceForward.Linear(row, T("merger.mlp.0.weight"), T("merger.mlp.0.bias"), d * unit).Select(LlavaReference.Gelu).ToArray();
            merged[g] = ReferenceForward.Linear(hidden, T("merger.mlp.2.weight"), T("merger.mlp.2.bias"), v.OutHidden);
        }
        return new VisionResult([.. Enumerable.Range(0, merged.Length).Select(t => merged[inverse[t]])], blocks);
    }
}
