using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Numerics;

namespace TruthProbe.Tests.Model;

/// <summary>Each kernel against a direct double-precision computation.</summary>
public unsafe class KernelTests
{
    internal static float[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    /// <summary>A [rows, cols] matrix in <paramref name="dtype"/> and the exact float values it holds.</summary>
    internal static (WeightMatrix Matrix, float[] Values) Matrix(int rows, int cols, WeightDType dtype, int seed)
    {
        float[] values = Random(rows * cols, seed);
        byte[] bytes;
        switch (dtype)
        {
            case WeightDType.BF16:
                var bf = values.Select(TensorDTypes.SingleToBFloat16).ToArray();
                values = bf.Select(TensorDTypes.BFloat16ToSingle).ToArray();
                bytes = MemoryMarshal.AsBytes(bf.AsSpan()).ToArray();
                break;
            case WeightDType.Q8_0:
                // Per block of 32: scale = max|v| / 127 (as fp16), q = round(v / scale).
                bytes = new byte[rows * cols / 32 * 34];
                for (int b = 0; b < rows * cols / 32; b++)
                {
                    var block = values.AsSpan(b * 32, 32);
                    Half scale = (Half)(block.ToArray().Max(Math.Abs) / 127f);
                    BitConverter.TryWriteBytes(bytes.AsSpan(b * 34), scale);
                    for (int i = 0; i < 32; i++)
                    {
                        sbyte q = (sbyte)Math.Round(block[i] / (float)scale);
                        bytes[b * 34 + 2 + i] = (byte)q;
                        block[i] = (float)scale * q;
                    }
                }
                break;
            case WeightDType.F16:
                var h = values.Select(v => (Half)v).ToArray();
                values = h.Select(v => (float)v).ToArray();
                bytes = MemoryMarshal.AsBytes(h.AsSpan()).ToArray();
                break;
            default:
                bytes = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
                break;
        }
        byte[] pinned = GC.AllocateArray<byte>(bytes.Length, pinned: true);
        bytes.CopyTo(pinned, 0);
        return (new WeightMatrix(rows, cols, dtype, (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(pinned, 0), pinned), values);
    }

    [Theory]
    [InlineData(WeightDType.F32, 1)]
    [InlineData(WeightDType.F32, 7)]
    [InlineData(WeightDType.BF16, 1)]
    [InlineData(WeightDType.BF16, 9)]
    [InlineData(WeightDType.F16, 5)]
    [InlineData(WeightDType.Q8_0, 1)]
    [InlineData(WeightDType.Q8_0, 6)]
    public void MatMul_MatchesDoublePrecisionProduct(WeightDType dtype, int tokens)
    {
        // Odd sizes exercise the vector tails (Q8_0 rows come in 32s); 300 x 133 x 9 is above the threading threshold.
        int rows = 300, cols = dtype == WeightDType.Q8_0 ? 160 : 133;
        var (w, values) = Matrix(rows, cols, dtype, 1);
        float[] x = Random(tokens * cols, 2), y = new float[tokens * rows];
        Kernels.MatMul(w, x, y, tokens);
        for (int t = 0; t < tokens; t++)
            for (int r = 0; r < rows; r++)
            {
                double expected = 0;
                for (int i = 0; i < cols; i++) expected += (double)values[r * cols + i] * x[t * cols + i];
                Assert.True(Math.Abs(expected - y[t * rows + r]) < 1e-4, $"row {r} token {t}: {y[t * rows + r]} vs {expected}");
            }
    }

    [Theory]
    [InlineData(1037)] // two whole 512-value chunks of the prefetching widen and a 13-value tail
    [InlineData(512)]
    [InlineData(29)]
    public void DotRow_F16_EqualsTheDotOfTheWholeWidenedRow(int cols)
    {
        const int rows = 3;
        var (w, values) = Matrix(rows, cols, WeightDType.F16, 3);
        float[] x = Random(cols, 4);
        fixed (float* px = x)
            for (int r = 0; r < rows; r++)
            {
                float expected = TensorPrimitives.Dot(values.AsSpan(r * cols, cols), x);
                Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(Kernels.DotRow(w.Row(r), WeightDType.F16, px, cols, SimdWidth.Current)));
            }
    }

    [Fact]
    public void WidenBFloat16_IsExactForEveryBitPattern()
    {
        var all = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        var widened = new float[all.Length];
        fixed (ushort* p = all) Kernels.WidenBFloat16(p, widened);
        for (int i = 0; i < all.Length; i++)
            Assert.Equal(BitConverter.SingleToInt32Bits(TensorDTypes.BFloat16ToSingle(all[i])), BitConverter.SingleToInt32Bits(widened[i]));
    }

    [Theory]
    [InlineData(8)]
    [InlineData(16)]
    public void Float16Widening_EqualsTheRuntimeConversionForEveryNumber(int lanes)
    {
        var all = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        var widened = new float[all.Length];
        fixed (ushort* p = all)
            fixed (float* w = widened)
                for (int i = 0; i < all.Length; i += lanes)
                    if (lanes == 16) Kernels.Float16x16(p + i).Store(w + i);
                    else Kernels.Float16x8(p + i).Store(w + i);
        for (int i = 0; i < all.Length; i++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf(all[i]);
            // NaN stays NaN; its payload is not part of the contract (the runtime's own conversion sets the quiet bit).
            if (float.IsNaN(expected)) Assert.True(float.IsNaN(widened[i]), $"0x{i:X4} -> {widened[i]}");
            else Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(widened[i]));
        }
    }

    [Fact]
    public void Rope_RotatesHalvesByPositionAngles()
    {
        float[] v = [1, 2, 3, 4, 5, 6, 7, 8];   // two heads of 4: pairs (1,3), (2,4), (5,7), (6,8)
        float[] cos = [MathF.Cos(0.5f), MathF.Cos(0.1f)], sin = [MathF.Sin(0.5f), MathF.Sin(0.1f)];
        Kernels.Rope(v, 4, cos, sin);
        Assert.Equal(1 * cos[0] - 3 * sin[0], v[0], 6);
        Assert.Equal(3 * cos[0] + 1 * sin[0], v[2], 6);
        Assert.Equal(6 * cos[1] - 8 * sin[1], v[5], 6);
        Assert.Equal(8 * cos[1] + 6 * sin[1], v[7], 6);
    }

    [Fact]
    public void RopeLayout_PermutationsAreInverse_AndMatchTheGgufFormula()
    {
        int heads = 3, hd = 8, rowBytes = 4;
        byte[] source = Enumerable.Range(0, heads * hd * rowBytes).Select(i => (byte)i).ToArray();
        var interleaved = new byte[source.Length];
        var back = new byte[source.Length];
        RopeLayout.HalfSplitToInterleaved(source, interleaved, heads, hd, rowBytes);
        RopeLayout.InterleavedToHalfSplit(interleaved, back, heads, hd, rowBytes);
        Assert.Equal(source, back);
        // convert_hf_to_gguf: w.reshape(heads, 2, hd/2, ...).swapaxes(1, 2): new row (h, i, c) = old row (h, c, i).
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < hd / 2; i++)
                for (int c = 0; c < 2; c++)
                    Assert.Equal(source[(h * hd + c * hd / 2 + i) * rowBytes], interleaved[(h * hd + i * 2 + c) * rowBytes]);
    }

    [Fact]
    public void Attention_SlidingWindowAndPattern_MatchDirectSoftmax()
    {
        int tokens = 5, heads = 2, kvHeads = 1, hd = 4, window = 2;
        float[] q = Random(tokens * heads * hd, 3), k = Random(tokens * kvHeads * hd, 4), v = Random(tokens * kvHeads * hd, 5);
        float[] z = new float[tokens * heads * hd], pattern = new float[heads * tokens * tokens];
        FlashAttention.Run(q, k, v, z, tokens, 0, heads, kvHeads, hd, window, pattern: pattern);
        for (int h = 0; h < heads; h++)
            for (int t = 0; t < tokens; t++)
            {
                var s = new double[tokens];
                for (int j = 0; j < tokens; j++)
                    s[j] = j > t || j <= t - window ? double.NegativeInfinity : Enumerable.Range(0, hd).Sum(i => (double)q[(t * heads + h) * hd + i] * k[j * hd + i]) / 2;
                double sum = s.Sum(Math.Exp);
                for (int j = 0; j < tokens; j++) Assert.True(Math.Abs(Math.Exp(s[j]) / sum - pattern[(h * tokens + t) * tokens + j]) < 1e-6);
            }
    }
}
