using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Model;

namespace TruthProbe.Tests.Formats;

public class GgufArchitectureTests
{
    [Fact]
    public void UnknownArchitecture_IsAUserError()
    {
        var e = Assert.Throws<UserError>(() => GgufArchitectures.CheckArchitecture("falcon", "m.gguf"));
        Assert.Contains("m.gguf", e.Message);
        Assert.Contains("falcon", e.Message);
    }

    [Fact]
    public void QKPermutation_OnlyForLlama() => Assert.Equal([true, false], new[] { "llama", "qwen2" }.Select(GgufArchitectures.PermutesQK));

    /// <summary>
    /// llama.cpp's converter: <c>w.reshape(heads, 2, d/2, cols).swapaxes(1, 2).reshape(w.shape)</c>, i.e. GGUF
    /// element [h, i, j, c] is HF element [h, j, i, c]; written here as that 4-D index, element by element.
    /// </summary>
    [Theory]
    [InlineData(3, 8, 5)]
    [InlineData(2, 6, 1)]
    public void RopeLayout_MatchesLlamaCppReshapeSwapaxes_AndInvertsExactly(int heads, int headDim, int cols)
    {
        var hf = new float[heads * headDim * cols];
        for (int k = 0; k < hf.Length; k++) hf[k] = k;
        var expected = new float[hf.Length];
        int half = headDim / 2;
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++)
                    for (int c = 0; c < cols; c++)
                        expected[((h * half + i) * 2 + j) * cols + c] = hf[((h * 2 + j) * half + i) * cols + c];
        var gguf = new float[hf.Length];
        RopeLayout.HalfSplitToInterleaved(AsBytes(hf), AsBytes(gguf), heads, headDim, cols * 4);
        Assert.Equal(expected, gguf);
        var back = new float[hf.Length];
        RopeLayout.InterleavedToHalfSplit(AsBytes(gguf), AsBytes(back), heads, headDim, cols * 4);
        Assert.Equal(hf, back);
    }

    private static Span<byte> AsBytes(float[] v) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan());
}
