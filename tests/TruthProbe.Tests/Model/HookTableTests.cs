using TruthProbe.Cli;
using TruthProbe.Common;
using TruthProbe.Model;

namespace TruthProbe.Tests.Model;

/// <summary>The hook table is the contract: TransformerLens's names in forward order, and the docs show exactly it.</summary>
public class HookTableTests
{
    [Fact]
    public void Names_AreTransformerLensNames_InForwardOrder()
    {
        // HookedTransformer on a Llama-style model (hook_embed, blocks.{l}.*, GatedMLP's mlp.hook_pre /
        // hook_pre_linear / hook_post), without the LayerNorm hooks; "logits" is ours.
        Assert.Equal(
        [
            "hook_embed", "blocks.0.hook_resid_pre", "blocks.0.attn.hook_q", "blocks.0.attn.hook_k", "blocks.0.attn.hook_v",
            "blocks.0.attn.hook_rot_q", "blocks.0.attn.hook_rot_k", "blocks.0.attn.hook_attn_scores", "blocks.0.attn.hook_pattern",
            "blocks.0.attn.hook_z", "blocks.0.hook_attn_out", "blocks.0.hook_resid_mid", "blocks.0.mlp.hook_pre",
            "blocks.0.mlp.hook_pre_linear", "blocks.0.mlp.hook_post", "blocks.0.hook_mlp_out", "blocks.0.hook_resid_post", "logits",
        ], HookNames.All(1));
        // LLaVA's image path (Hugging Face LlavaForConditionalGeneration's stages), recorded by the vision tower.
        Assert.Equal(
        [
            "vision.hook_pixel_values", "vision.blocks.0.hook_resid_post", "vision.blocks.1.hook_resid_post", "vision.hook_features", "hook_image_features",
        ], HookNames.All(2, HookPart.Vision));
        for (int i = 0; i < HookNames.Table.Count; i++) Assert.Equal((HookKind)i, HookNames.Table[i].Kind);
        Assert.Equal(Enum.GetValues<HookKind>().Length, HookNames.Table.Count);
    }

    [Fact]
    public void Match_SelectsByPattern_AndRejectsPatternsMatchingNothing()
    {
        Assert.Equal([(HookKind.Z, 0), (HookKind.Z, 1), (HookKind.Z, 2)], HookNames.Match("blocks.*.attn.hook_z", 3));
        Assert.Equal([(HookKind.Q, 1), (HookKind.RotQ, 1)], HookNames.Match("blocks.1.attn.hook_*q", 2));
        Assert.Equal([(HookKind.Embed, -1), (HookKind.Logits, -1)], HookNames.Match("*", 0));
        Assert.Equal(2 * 16 + 2, HookNames.Match("*", 2).Count);
        Assert.Throws<UserError>(() => HookNames.Match("blocks.0.attn.hook_qq", 2));
        Assert.Throws<UserError>(() => HookNames.Match("blocks.2.hook_resid_pre", 2));
        Assert.Equal([(HookKind.VisionPixelValues, -1), (HookKind.VisionResidPost, 0), (HookKind.VisionFeatures, -1)], HookNames.Match("vision.*", 1, HookPart.Vision));
        Assert.Equal([(HookKind.ImageFeatures, -1)], HookNames.Match("*image_features", 1, HookPart.Vision));
        Assert.False(HookNames.Selects("*image_features", 2, HookPart.Decoder)); // the parts never mix
        Assert.Throws<UserError>(() => HookNames.Match("vision.blocks.1.hook_resid_post", 1, HookPart.Vision));
    }

    [Fact]
    public void DesignDoc_ListsExactlyTheTable()
    {
        string doc = File.ReadAllText(Path.Combine(RepoPaths.RepoRoot()!, "docs", "design.md")).ReplaceLineEndings("\n");
        string table = "| name | shape | holds | computed as | recorded by |\n|---|---|---|---|---|\n"
            + string.Concat(HookNames.Table.Select(p => $"| `{p.Template}` | {p.ShapeText} | {p.Meaning} | {p.Formula} | {p.Part.ToString().ToLowerInvariant()} |\n"));
        Assert.True(doc.Contains(table, StringComparison.Ordinal), "docs/design.md §2's hook table differs from HookNames.Table; paste this:\n" + table);
    }
}
