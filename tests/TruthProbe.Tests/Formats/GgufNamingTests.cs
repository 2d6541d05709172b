using TruthProbe.Common;
using TruthProbe.Formats;

namespace TruthProbe.Tests.Formats;

public class GgufNamingTests
{
    [Theory]
    [InlineData("model.embed_tokens.weight", "token_embd.weight")]
    [InlineData("model.norm.weight", "output_norm.weight")]
    [InlineData("lm_head.weight", "output.weight")]
    [InlineData("model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight")]
    [InlineData("model.layers.11.self_attn.k_proj.bias", "blk.11.attn_k.bias")]
    [InlineData("model.layers.3.self_attn.v_proj.weight", "blk.3.attn_v.weight")]
    [InlineData("model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight")]
    [InlineData("model.layers.3.input_layernorm.weight", "blk.3.attn_norm.weight")]
    [InlineData("model.layers.3.post_attention_layernorm.weight", "blk.3.ffn_norm.weight")]
    [InlineData("model.layers.3.mlp.gate_proj.weight", "blk.3.ffn_gate.weight")]
    [InlineData("model.layers.3.mlp.up_proj.weight", "blk.3.ffn_up.weight")]
    [InlineData("model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight")]
    public void TensorNames_MapBothWays_AsLlamaCppNamesThem(string hf, string gguf)
    {
        Assert.Equal(gguf, GgufNaming.HfToGguf(hf));
        Assert.Equal(hf, GgufNaming.GgufToHf(gguf));
    }

    [Fact]
    public void UnknownNames_MapToNull()
    {
        Assert.Null(GgufNaming.HfToGguf("model.layers.0.self_attn.rotary_emb.inv_freq"));
        Assert.Null(GgufNaming.GgufToHf("rope_freqs.weight"));
    }

    [Fact]
    public void UnknownArchitecture_IsAUserError()
    {
        var e = Assert.Throws<UserError>(() => GgufNaming.CheckArchitecture("falcon", "m.gguf"));
        Assert.Contains("m.gguf", e.Message);
        Assert.Contains("falcon", e.Message);
    }

    [Fact]
    public void QKPermutation_OnlyForLlama_OnlyQAndK()
    {
        Assert.True(GgufNaming.PermutesQK("llama"));
        Assert.False(GgufNaming.PermutesQK("qwen2"));
        Assert.Equal(8, GgufNaming.RopeHeads("blk.2.attn_q.weight", 8, 2));
        Assert.Equal(2, GgufNaming.RopeHeads("blk.2.attn_k.bias", 8, 2));
        Assert.Equal(0, GgufNaming.RopeHeads("blk.2.attn_v.weight", 8, 2));
        Assert.Equal(0, GgufNaming.RopeHeads("blk.2.attn_output.weight", 8, 2));
    }

    [Fact]
    public void Permutation_OneHeadOfFour_InterleavesTheHalves()
    {
        // HF rows of one head (d=4): [x0, x1 | y0, y1] where RoPE pairs (x_i, y_i); GGUF wants [x0, y0, x1, y1].
        float[] hf = [10, 11, 20, 21];
        var gguf = new float[4];
        RopePermutation.HfToGguf(AsBytes(hf), AsBytes(gguf), heads: 1, rowBytes: 4);
        Assert.Equal([10f, 20, 11, 21], gguf);
    }

    /// <summary>
    /// llama.cpp's converter: <c>w.reshape(heads, 2, d/2, cols).swapaxes(1, 2).reshape(w.shape)</c>, i.e. GGUF
    /// element [h, i, j, c] is HF element [h, j, i, c]; written here as that 4-D index, row by row.
    /// </summary>
    [Theory]
    [InlineData(3, 8, 5)]
    [InlineData(2, 6, 1)]
    public void Permutation_MatchesLlamaCppReshapeSwapaxes_AndInvertsExactly(int heads, int headDim, int cols)
    {
        int rows = heads * headDim;
        var hf = new float[rows * cols];
        for (int k = 0; k < hf.Length; k++) hf[k] = k;
        var expected = new float[hf.Length];
        int half = headDim / 2;
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++)
                    for (int c = 0; c < cols; c++)
                        expected[((h * half + i) * 2 + j) * cols + c] = hf[((h * 2 + j) * half + i) * cols + c];
        var gguf = new float[hf.Length];
        RopePermutation.HfToGguf(AsBytes(hf), AsBytes(gguf), heads, cols * 4);
        Assert.Equal(expected, gguf);
        var back = new float[hf.Length];
        RopePermutation.GgufToHf(AsBytes(gguf), AsBytes(back), heads, cols * 4);
        Assert.Equal(hf, back);
    }

    private static Span<byte> AsBytes(float[] v) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan());
}
