using System.Text.RegularExpressions;
using TruthProbe.Common;

namespace TruthProbe.Model;

/// <summary>The activation sites of the forward pass, in the order data flows through a layer.</summary>
public enum HookKind { ResidPre, Q, K, V, Pattern, Z, AttnOut, ResidMid, MlpOut, ResidPost, Logits }

/// <summary>
/// The public names of the hook points (docs/design.md §2, TransformerLens style). Shapes per forward call of T
/// tokens at positions p0..p0+T-1 (T_total = p0 + T), before any position selection:
/// <code>
/// blocks.{l}.hook_resid_pre      [T, d_model]      residual stream entering layer l
/// blocks.{l}.attn.hook_q         [T, H, d_head]    after RoPE (half-split layout)
/// blocks.{l}.attn.hook_k         [T, H_kv, d_head] after RoPE
/// blocks.{l}.attn.hook_v         [T, H_kv, d_head]
/// blocks.{l}.attn.hook_pattern   [H, T, T_total]   softmax weights per query head, 0 where masked
/// blocks.{l}.attn.hook_z         [T, H, d_head]    per-query-head input of o_proj (what the probes read)
/// blocks.{l}.hook_attn_out       [T, d_model]      o_proj(z) + bias
/// blocks.{l}.hook_resid_mid      [T, d_model]      resid_pre + attn_out
/// blocks.{l}.hook_mlp_out        [T, d_model]
/// blocks.{l}.hook_resid_post     [T, d_model]      resid_mid + mlp_out
/// logits                         [T, vocab]
/// </code>
/// </summary>
public static class HookNames
{
    public const string Logits = "logits";

    public static string Name(HookKind kind, int layer) => kind switch
    {
        HookKind.ResidPre => $"blocks.{layer}.hook_resid_pre",
        HookKind.Q => $"blocks.{layer}.attn.hook_q",
        HookKind.K => $"blocks.{layer}.attn.hook_k",
        HookKind.V => $"blocks.{layer}.attn.hook_v",
        HookKind.Pattern => $"blocks.{layer}.attn.hook_pattern",
        HookKind.Z => $"blocks.{layer}.attn.hook_z",
        HookKind.AttnOut => $"blocks.{layer}.hook_attn_out",
        HookKind.ResidMid => $"blocks.{layer}.hook_resid_mid",
        HookKind.MlpOut => $"blocks.{layer}.hook_mlp_out",
        HookKind.ResidPost => $"blocks.{layer}.hook_resid_post",
        HookKind.Logits => Logits,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    public static readonly HookKind[] LayerKinds =
        [HookKind.ResidPre, HookKind.Q, HookKind.K, HookKind.V, HookKind.Pattern, HookKind.Z, HookKind.AttnOut, HookKind.ResidMid, HookKind.MlpOut, HookKind.ResidPost];

    /// <summary>Every hook name of a model with <paramref name="layers"/> layers, in forward order.</summary>
    public static IEnumerable<string> All(int layers)
    {
        for (int l = 0; l < layers; l++)
            foreach (var k in LayerKinds) yield return Name(k, l);
        yield return Logits;
    }

    /// <summary>
    /// The (kind, layer) pairs a pattern selects; <c>*</c> stands for any layer index (or any text in general).
    /// A pattern that selects nothing is a <see cref="UserError"/>, so a typo never yields an empty capture.
    /// </summary>
    public static IReadOnlyList<(HookKind Kind, int Layer)> Match(string pattern, int layers)
    {
        var regex = new Regex("^" + Regex.Escape(pattern.Trim()).Replace("\\*", ".*") + "$", RegexOptions.CultureInvariant);
        var result = new List<(HookKind, int)>();
        for (int l = 0; l < layers; l++)
            foreach (var k in LayerKinds)
                if (regex.IsMatch(Name(k, l))) result.Add((k, l));
        if (regex.IsMatch(Logits)) result.Add((HookKind.Logits, -1));
        if (result.Count == 0)
            throw new UserError($"hook pattern '{pattern}' matches no hook point of this {layers}-layer model (e.g. blocks.*.attn.hook_z, blocks.0.hook_resid_pre, logits)");
        return result;
    }
}
