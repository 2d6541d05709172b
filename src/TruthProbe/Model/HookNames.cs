using System.Text.RegularExpressions;
using TruthProbe.Common;

namespace TruthProbe.Model;

/// <summary>The activation sites of the forward pass, in the order data flows (one row of <see cref="HookNames.Table"/> each).</summary>
public enum HookKind { VisionPixelValues, VisionResidPost, VisionFeatures, ImageFeatures, Embed, ResidPre, Q, K, V, RotQ, RotK, AttnScores, Pattern, Z, AttnOut, ResidMid, MlpPre, MlpPreLinear, MlpPost, MlpOut, ResidPost, Logits }

/// <summary>
/// A dimension of a hook's shape: T tokens of the call, T_total positions in the cache after it, or a size of the
/// model; the vision tower's sizes come from the LLaVA config, which the image path resolves.
/// </summary>
public enum HookDim { Tokens, Positions, DModel, Heads, KvHeads, HeadDim, Ffn, Vocab, Channels, ImageSize, VisionPositions, ImageTokens, VisionDModel }

/// <summary>
/// Which part of the model records a hook: the decoder's forward pass (<c>ActivationCapture</c>, {l} = decoder layer),
/// or the LLaVA image path (<c>VisionCapture</c>, {l} = vision encoder layer, every row kept).
/// </summary>
public enum HookPart { Decoder, Vision }

/// <summary>
/// One hook point: its name (<c>{l}</c> stands for the layer), its shape, what it holds and how the forward
/// pass computes it. A shape starting with T is kept per token position (the first axis is what position
/// selection picks); [H, T, T_total] is an attention map per query head (the second axis is picked).
/// </summary>
public sealed record HookPoint(HookKind Kind, string Template, HookDim[] Shape, string Meaning, string Formula, HookPart Part = HookPart.Decoder)
{
    public bool PerLayer => Template.Contains("{l}", StringComparison.Ordinal);

    /// <summary>[H, T, T_total] attention maps: no fixed width per position, and no interventions.</summary>
    public bool IsAttentionMap => Shape[0] == HookDim.Heads;

    public string Name(int layer) => PerLayer ? Template.Replace("{l}", layer.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal) : Template;

    /// <summary>The dimensions after the token axis, e.g. [H, d_head].</summary>
    public int[] Inner(ModelConfig c) => IsAttentionMap
        ? throw new InvalidOperationException($"{Template} is an attention map, not a per-position activation")
        : Shape[1..].Select(d => Size(c, d)).ToArray();

    /// <summary>Values per token position (allocation-free: every hook call of the forward pass asks).</summary>
    public int Width(ModelConfig c)
    {
        if (IsAttentionMap) throw new InvalidOperationException($"{Template} is an attention map, not a per-position activation");
        int width = 1;
        for (int i = 1; i < Shape.Length; i++) width *= Size(c, Shape[i]);
        return width;
    }

    /// <summary>The shape in symbols, as the docs and the CLI help print it: <c>[T, H_kv, d_head]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape.Select(Symbol)) + "]";

    private static int Size(ModelConfig c, HookDim d) => d switch
    {
        HookDim.DModel => c.DModel,
        HookDim.Heads => c.Heads,
        HookDim.KvHeads => c.KvHeads,
        HookDim.HeadDim => c.HeadDim,
        HookDim.Ffn => c.Ffn,
        HookDim.Vocab => c.Vocab,
        _ => throw new ArgumentOutOfRangeException(nameof(d), $"{d} depends on the call or the vision tower, not the decoder's config"),
    };

    private static string Symbol(HookDim d) => d switch
    {
        HookDim.Tokens => "T",
        HookDim.Positions => "T_total",
        HookDim.DModel => "d_model",
        HookDim.Heads => "H",
        HookDim.KvHeads => "H_kv",
        HookDim.HeadDim => "d_head",
        HookDim.Ffn => "d_mlp",
        HookDim.Vocab => "vocab",
        HookDim.Channels => "channels",
        HookDim.ImageSize => "image_size",
        HookDim.VisionPositions => "patches + 1",
        HookDim.ImageTokens => "image_tokens",
        _ => "d_vision",
    };
}

/// <summary>
/// The hook points: the one table that capture, interventions, the CLI's <c>--hooks</c> help and the docs
/// (checked by a test) all read. Names and meanings are TransformerLens's wherever TransformerLens has the
/// hook (HookedTransformer on a Llama-style model, batch axis dropped); <c>logits</c> is ours. Keys and values
/// stay per kv head under GQA, as TransformerLens reports them unless <c>ungroup_grouped_query_attention</c>.
/// The <see cref="HookPart.Vision"/> rows (LLaVA's image path, ours) come first because they feed <c>hook_embed</c>.
/// </summary>
public static class HookNames
{
    public const string Logits = "logits";

    private static readonly HookDim T = HookDim.Tokens, TTotal = HookDim.Positions, D = HookDim.DModel, H = HookDim.Heads,
        Hkv = HookDim.KvHeads, Dh = HookDim.HeadDim, Mlp = HookDim.Ffn, Vocab = HookDim.Vocab, Ch = HookDim.Channels,
        Px = HookDim.ImageSize, Vpos = HookDim.VisionPositions, Img = HookDim.ImageTokens, Dv = HookDim.VisionDModel;
    private const HookPart Vision = HookPart.Vision;

    /// <summary>Every hook point, in the order data flows; row i is <see cref="HookKind"/> i.</summary>
    public static readonly IReadOnlyList<HookPoint> Table =
    [
        new(HookKind.VisionPixelValues, "vision.hook_pixel_values", [Ch, Px, Px], "the normalised pixels given", "the image after preprocessing (docs/vision.md)", Vision),
        new(HookKind.VisionResidPost, "vision.blocks.{l}.hook_resid_post", [Vpos, Dv], "vision encoder layer l's output, class row first; only layers that run", "CLIP pre-norm layer (attention, quick-GELU MLP) over patches + class token", Vision),
        new(HookKind.VisionFeatures, "vision.hook_features", [Img, Dv], "the selected layer after the class-token choice", "vision_feature_layer's output, class row dropped unless the strategy is full", Vision),
        new(HookKind.ImageFeatures, "hook_image_features", [Img, D], "projector output, the rows spliced into the LM input", "linear_2(gelu(linear_1(vision.hook_features)))", Vision),
        new(HookKind.Embed, "hook_embed", [T, D], "input embeddings (image features at an image's positions)", "embed_tokens[id], or hook_image_features spliced in"),
        new(HookKind.ResidPre, "blocks.{l}.hook_resid_pre", [T, D], "residual stream entering layer l", "hook_embed, or the previous layer's hook_resid_post"),
        new(HookKind.Q, "blocks.{l}.attn.hook_q", [T, H, Dh], "queries, before RoPE", "q_proj(rmsnorm(resid_pre)) + bias"),
        new(HookKind.K, "blocks.{l}.attn.hook_k", [T, Hkv, Dh], "keys per kv head, before RoPE", "k_proj(rmsnorm(resid_pre)) + bias"),
        new(HookKind.V, "blocks.{l}.attn.hook_v", [T, Hkv, Dh], "values per kv head (what the cache holds)", "v_proj(rmsnorm(resid_pre)) + bias"),
        new(HookKind.RotQ, "blocks.{l}.attn.hook_rot_q", [T, H, Dh], "queries after RoPE", "rope(hook_q), half-split pairs (i, i + d_head/2)"),
        new(HookKind.RotK, "blocks.{l}.attn.hook_rot_k", [T, Hkv, Dh], "keys after RoPE (what the cache holds)", "rope(hook_k)"),
        new(HookKind.AttnScores, "blocks.{l}.attn.hook_attn_scores", [H, T, TTotal], "attention logits per query head, -inf where masked", "rot_q . rot_k / sqrt(d_head); head h reads kv head h / (H / H_kv)"),
        new(HookKind.Pattern, "blocks.{l}.attn.hook_pattern", [H, T, TTotal], "attention weights per query head, 0 where masked", "softmax of hook_attn_scores over the keys"),
        new(HookKind.Z, "blocks.{l}.attn.hook_z", [T, H, Dh], "per-query-head input of o_proj (what the probes read, what head gates scale)", "pattern-weighted sum of v"),
        new(HookKind.AttnOut, "blocks.{l}.hook_attn_out", [T, D], "attention output", "o_proj(z) + bias"),
        new(HookKind.ResidMid, "blocks.{l}.hook_resid_mid", [T, D], "residual stream between attention and MLP", "resid_pre + attn_out"),
        new(HookKind.MlpPre, "blocks.{l}.mlp.hook_pre", [T, Mlp], "MLP gate, before the activation", "gate_proj(rmsnorm(resid_mid))"),
        new(HookKind.MlpPreLinear, "blocks.{l}.mlp.hook_pre_linear", [T, Mlp], "MLP linear branch", "up_proj(rmsnorm(resid_mid))"),
        new(HookKind.MlpPost, "blocks.{l}.mlp.hook_post", [T, Mlp], "MLP hidden activation", "silu(pre) * pre_linear"),
        new(HookKind.MlpOut, "blocks.{l}.hook_mlp_out", [T, D], "MLP output", "down_proj(post)"),
        new(HookKind.ResidPost, "blocks.{l}.hook_resid_post", [T, D], "residual stream leaving layer l", "resid_mid + mlp_out"),
        new(HookKind.Logits, Logits, [T, Vocab], "next-token logits (computed for every position only when captured)", "lm_head(rmsnorm(last hook_resid_post))"),
    ];

    public static HookPoint Point(HookKind kind) => Table[(int)kind];

    public static string Name(HookKind kind, int layer) => Point(kind).Name(layer);

    /// <summary>Every hook name of a <paramref name="part"/> with <paramref name="layers"/> layers, in forward order.</summary>
    public static IEnumerable<string> All(int layers, HookPart part = HookPart.Decoder) => Sites(layers, part).Select(s => Point(s.Kind).Name(s.Layer));

    /// <summary>
    /// The (kind, layer) pairs of <paramref name="part"/> a pattern selects, layer -1 for the hooks outside the layers;
    /// <c>*</c> stands for any layer index (or any text in general). A pattern that selects nothing is a
    /// <see cref="UserError"/>, so a typo never yields an empty capture.
    /// </summary>
    public static IReadOnlyList<(HookKind Kind, int Layer)> Match(string pattern, int layers, HookPart part = HookPart.Decoder)
    {
        var result = Select(pattern, layers, part);
        if (result.Count > 0) return result;
        throw new UserError(part == HookPart.Decoder
            ? $"hook pattern '{pattern}' matches no hook point of this {layers}-layer model (e.g. blocks.*.attn.hook_z, blocks.0.hook_resid_pre, logits)"
            : $"hook pattern '{pattern}' matches no vision hook point of this model (e.g. {string.Join(", ", Table.Where(p => p.Part == part).Select(p => p.PerLayer ? p.Name(0) + $" up to layer {layers - 1}" : p.Template))})");
    }

    /// <summary>Whether <paramref name="pattern"/> selects any hook of <paramref name="part"/> (no error when none).</summary>
    public static bool Selects(string pattern, int layers, HookPart part) => Select(pattern, layers, part).Count > 0;

    private static List<(HookKind Kind, int Layer)> Select(string pattern, int layers, HookPart part)
    {
        var regex = new Regex("^" + Regex.Escape(pattern.Trim()).Replace("\\*", ".*") + "$", RegexOptions.CultureInvariant);
        return Sites(layers, part).Where(s => regex.IsMatch(Point(s.Kind).Name(s.Layer))).ToList();
    }

    /// <summary>Forward order within a part: its hooks before the layers, every layer's hooks, those after.</summary>
    private static IEnumerable<(HookKind Kind, int Layer)> Sites(int layers, HookPart part)
    {
        var rows = Table.Where(p => p.Part == part).ToList();
        int before = rows.TakeWhile(p => !p.PerLayer).Count();
        foreach (var p in rows.Take(before)) yield return (p.Kind, -1);
        for (int l = 0; l < layers; l++)
            foreach (var p in rows.Where(p => p.PerLayer)) yield return (p.Kind, l);
        foreach (var p in rows.Skip(before).Where(p => !p.PerLayer)) yield return (p.Kind, -1);
    }
}
