using TruthProbe.Model;
using TruthProbe.Numerics;

namespace TruthProbe.Tests.Model;

/// <summary>
/// The blocked GEMM, the decode matrix-vector product and the tiled attention against straightforward
/// double-precision references, on sizes that are not multiples of any tile, on every SIMD path.
/// </summary>
public unsafe class FastKernelTests
{
    public static TheoryData<SimdPath, int, int, int> GemmShapes()
    {
        var data = new TheoryData<SimdPath, int, int, int>();
        foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256, SimdPath.Generic })
            foreach (var (m, n, k) in new[] { (2, 1, 1), (3, 17, 33), (17, 33, 257), (9, 50, 300), (33, 257, 17), (260, 70, 520), (530, 37, 1060), (777, 19, 45) })
                data.Add(path, m, n, k);
        return data;
    }

    /// <summary>|got - exact| within 1e-5 of sum |w_i x_i| (the scale rounding errors are relative to).</summary>
    private static void AssertProduct(float[] w, float[] x, float[] y, int m, int n, int k, double tolerance = 1e-5)
    {
        for (int t = 0; t < m; t++)
            for (int r = 0; r < n; r++)
            {
                double exact = 0, magnitude = 0;
                for (int i = 0; i < k; i++)
                {
                    double p = (double)w[r * k + i] * x[t * k + i];
                    exact += p;
                    magnitude += Math.Abs(p);
                }
                double got = y[(long)t * n + r];
                Assert.True(Math.Abs(got - exact) <= tolerance * magnitude + 1e-30, $"y[{t}, {r}] = {got}, exact {exact} (scale {magnitude})");
            }
    }

    private static float[] RunGemm(SimdPath path, WeightMatrix w, float[] x, int m)
    {
        var y = new float[m * w.Rows];
        SimdWidth.Forced = path;
        try { WeightGemm.Multiply(w, x, y, m); }
        finally { SimdWidth.Forced = SimdPath.Auto; }
        return y;
    }

    [Theory]
    [MemberData(nameof(GemmShapes))]
    public void Gemm_F32_MatchesDoublePrecisionProduct(SimdPath path, int m, int n, int k)
    {
        var (w, values) = KernelTests.Matrix(n, k, WeightDType.F32, seed: m + n + k);
        float[] x = KernelTests.Random(m * k, seed: 7);
        AssertProduct(values, x, RunGemm(path, w, x, m), m, n, k);
    }

    /// <summary>The FMA paths' summation order, to the bit: each KC step sums its k in order in a register from zero
    /// (one fused multiply-add a k), and Y adds the steps' sums in order. Shapes past one packed panel's span of k
    /// (4096 on Vector512, one KC step of 512 on Vector256), with edge tiles on both sides, so no change of the loop order or the
    /// threads' split may change a bit of the engine's outputs.</summary>
    [Theory]
    [InlineData(SimdPath.Vector512, 31, 45, 4200)]
    [InlineData(SimdPath.Vector512, 15, 33, 2100)]
    [InlineData(SimdPath.Vector256, 13, 37, 8300)]
    [InlineData(SimdPath.Vector256, 7, 17, 1100)]
    public void Gemm_FmaPaths_SumEachDepthStepInOrder(SimdPath path, int m, int n, int k)
    {
        var (w, values) = KernelTests.Matrix(n, k, WeightDType.BF16, seed: 5);
        float[] x = KernelTests.Random(m * k, seed: 6);
        float[] got = RunGemm(path, w, x, m);
        int depth = WeightGemm.Depth(path);
        for (int t = 0; t < m; t++)
            for (int r = 0; r < n; r++)
            {
                float y = 0;
                for (int k0 = 0; k0 < k; k0 += depth)
                {
                    float step = 0;
                    for (int i = k0; i < Math.Min(k, k0 + depth); i++) step = MathF.FusedMultiplyAdd(x[t * k + i], values[r * k + i], step);
                    y = k0 == 0 ? step : y + step;
                }
                Assert.True(BitConverter.SingleToInt32Bits(y) == BitConverter.SingleToInt32Bits(got[t * n + r]), $"y[{t}, {r}] = {got[t * n + r]:R}, in order {y:R}");
            }
    }

    [Theory]
    [InlineData(SimdPath.Vector512, WeightDType.BF16)]
    [InlineData(SimdPath.Vector512, WeightDType.F16)]
    [InlineData(SimdPath.Vector512, WeightDType.Q8_0)]
    [InlineData(SimdPath.Vector256, WeightDType.BF16)]
    [InlineData(SimdPath.Vector256, WeightDType.Q8_0)]
    [InlineData(SimdPath.Vector256, WeightDType.F16)]
    [InlineData(SimdPath.Vector256, WeightDType.BF16, 13, 29, 1037)]   // widened in registers: partial 8-row groups, a k tail of 13
    [InlineData(SimdPath.Vector256, WeightDType.F16, 13, 29, 1037)]
    [InlineData(SimdPath.Vector512, WeightDType.BF16, 13, 29, 1037)]
    [InlineData(SimdPath.Vector512, WeightDType.F16, 13, 29, 1037)]
    [InlineData(SimdPath.Generic, WeightDType.BF16)]
    [InlineData(SimdPath.Generic, WeightDType.F16)]
    // Q8_0 widened in registers: partial row groups (29 = 16 + 13 columns), depth tails of one and three blocks
    // past KC (1056 = 1024 + 32 on AVX-512, 512 + 512 + 32 on AVX2; 1120 = 1024 + 96, 512 + 512 + 96).
    [InlineData(SimdPath.Vector256, WeightDType.Q8_0, 13, 29, 1056)]
    [InlineData(SimdPath.Vector512, WeightDType.Q8_0, 13, 29, 1056)]
    [InlineData(SimdPath.Vector256, WeightDType.Q8_0, 7, 37, 1120)]
    [InlineData(SimdPath.Vector512, WeightDType.Q8_0, 7, 37, 1120)]
    [InlineData(SimdPath.Generic, WeightDType.Q8_0, 13, 29, 1056)]
    public void Gemm_NarrowWeights_EqualF32PathOnWidenedValues(SimdPath path, WeightDType dtype, int m = 19, int n = 45, int k = 544)
    {
        // Widening is exact and happens before the arithmetic, so the results must agree to the bit.
        var (narrow, values) = KernelTests.Matrix(n, k, dtype, seed: 3);
        var wide = WeightMatrix.FromSingles(values, n, k);
        float[] x = KernelTests.Random(m * k, seed: 4);
        Assert.Equal(RunGemm(path, wide, x, m), RunGemm(path, narrow, x, m));
    }

    [Theory]
    [InlineData(WeightDType.F32, 1, 1)]
    [InlineData(WeightDType.F32, 257, 33)]
    [InlineData(WeightDType.F32, 1031, 300)]
    [InlineData(WeightDType.BF16, 3, 17)]
    [InlineData(WeightDType.BF16, 1030, 257)]
    [InlineData(WeightDType.F16, 129, 77)]
    [InlineData(WeightDType.Q8_0, 131, 96)]
    [InlineData(WeightDType.Q8_0, 1027, 320)]
    [InlineData(WeightDType.BF16, 2053, 300)]   // over 1 MB: split over the threads
    [InlineData(WeightDType.Q8_0, 3101, 320)]
    public void MatVec_MatchesDoublePrecisionProduct(WeightDType dtype, int n, int k)
    {
        var (w, values) = KernelTests.Matrix(n, k, dtype, seed: n);
        float[] x = KernelTests.Random(k, seed: 5), y = new float[n];
        MatVec.Multiply(w, x, y);
        AssertProduct(values, x, y, 1, n, k);
    }

    [Fact]
    public void MatVec_BFloat16_AgreesWithF32OnWidenedValues()
    {
        var (narrow, values) = KernelTests.Matrix(1029, 300, WeightDType.BF16, seed: 8);
        var wide = WeightMatrix.FromSingles(values, 1029, 300);
        float[] x = KernelTests.Random(300, seed: 9), a = new float[1029], b = new float[1029];
        MatVec.Multiply(narrow, x, a);
        MatVec.Multiply(wide, x, b);
        // Summation orders differ (fused bf16 dot vs TensorPrimitives.Dot), so both are held to the exact product.
        AssertProduct(values, x, a, 1, 1029, 300);
        AssertProduct(values, x, b, 1, 1029, 300);
    }

    public static TheoryData<SimdPath, int, int, int, int, int, int?> AttentionShapes()
    {
        var data = new TheoryData<SimdPath, int, int, int, int, int, int?>();
        foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256, SimdPath.Generic })
            foreach (var (tokens, first, heads, kvHeads, hd, window) in new (int, int, int, int, int, int?)[]
            {
                (1, 0, 4, 4, 8, null),      // one decode step at position 0
                (1, 200, 14, 2, 64, null),  // decode after a long prefix: several key tiles, GQA 7:1
                (37, 0, 6, 2, 16, null),    // prefill, causal
                (33, 100, 4, 1, 12, 45),    // prefill after a cache, sliding window, multi-query
                (130, 0, 3, 3, 8, 70),      // window longer than a tile
                (70, 90, 4, 2, 32, 50),     // transposed-key path: cache, window, ragged tiles
                (17, 60, 8, 1, 128, null),  // transposed-key path: multi-query, head size 128
                (20, 3, 2, 1, 48, null),    // transposed-key path: head size not a multiple of four vectors
                (150, 10, 4, 2, 16, null),  // transposed-key path: three query blocks, the last one ragged
                (140, 0, 2, 2, 16, 100),    // transposed-key path: query blocks whose queries' tiles start at different keys
            })
                data.Add(path, tokens, first, heads, kvHeads, hd, window);
        return data;
    }

    [Theory]
    [MemberData(nameof(AttentionShapes))]
    public void FlashAttention_MatchesDoublePrecisionSoftmax(SimdPath path, int tokens, int first, int heads, int kvHeads, int hd, int? window)
    {
        SimdWidth.Forced = path;
        try { AttentionMatchesDoublePrecision(tokens, first, heads, kvHeads, hd, window); }
        finally { SimdWidth.Forced = SimdPath.Auto; }
    }

    private static void AttentionMatchesDoublePrecision(int tokens, int first, int heads, int kvHeads, int hd, int? window)
    {
        int total = first + tokens;
        float[] q = KernelTests.Random(tokens * heads * hd, 1), k = KernelTests.Random(total * kvHeads * hd, 2), v = KernelTests.Random(total * kvHeads * hd, 3);
        for (int i = 0; i < q.Length; i++) q[i] *= 4;   // peaked softmaxes, so the running maximum moves
        var z = new float[tokens * heads * hd];
        FlashAttention.Run(q, k, v, z, tokens, first, heads, kvHeads, hd, window);
        // Asked for the maps as well (both, or the pattern alone, which then holds the raw scores mid-row),
        // the kernel must give the same z to the bit.
        float[] scores = new float[heads * tokens * total], pattern = new float[scores.Length], alone = new float[scores.Length];
        float[] zWithMaps = new float[z.Length], zWithPattern = new float[z.Length];
        FlashAttention.Run(q, k, v, zWithMaps, tokens, first, heads, kvHeads, hd, window, scores, pattern);
        FlashAttention.Run(q, k, v, zWithPattern, tokens, first, heads, kvHeads, hd, window, pattern: alone);
        Assert.Equal(z.Select(BitConverter.SingleToInt32Bits), zWithMaps.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(z.Select(BitConverter.SingleToInt32Bits), zWithPattern.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(pattern, alone);
        AssertDoublePrecisionAttention(q, k, v, z, scores, pattern, tokens, first, heads, kvHeads, hd, window);
    }

    /// <summary>z, the scores and the pattern of one attention call against the float64 softmax of the same q, k and v.</summary>
    internal static void AssertDoublePrecisionAttention(float[] q, float[] k, float[] v, float[] z, float[] scores, float[] pattern,
        int tokens, int first, int heads, int kvHeads, int hd, int? window)
    {
        int total = first + tokens, group = heads / kvHeads;
        for (int t = 0; t < tokens; t++)
            for (int h = 0; h < heads; h++)
            {
                int position = first + t, from = window is int w ? Math.Max(0, position - w + 1) : 0, kvh = h / group;
                var s = new double[position + 1];
                for (int j = from; j <= position; j++)
                {
                    for (int i = 0; i < hd; i++) s[j] += (double)q[(t * heads + h) * hd + i] * k[(j * kvHeads + kvh) * hd + i];
                    s[j] /= Math.Sqrt(hd);
                }
                double max = s.Skip(from).Max(), sum = s.Skip(from).Sum(x => Math.Exp(x - max));
                int row = (h * tokens + t) * total;
                for (int j = 0; j < total; j++)
                {
                    bool seen = j >= from && j <= position;
                    if (!seen) { Assert.Equal(float.NegativeInfinity, scores[row + j]); Assert.Equal(0f, pattern[row + j]); continue; }
                    Assert.True(Math.Abs(scores[row + j] - s[j]) <= 1e-5 * (Math.Abs(s[j]) + 1), $"score t {t} h {h} key {j}: {scores[row + j]} vs {s[j]}");
                    Assert.True(Math.Abs(pattern[row + j] - Math.Exp(s[j] - max) / sum) <= 1e-6, $"pattern t {t} h {h} key {j}");
                }
                for (int i = 0; i < hd; i++)
                {
                    double exact = 0;
                    for (int j = from; j <= position; j++) exact += Math.Exp(s[j] - max) / sum * v[(j * kvHeads + kvh) * hd + i];
                    float got = z[(t * heads + h) * hd + i];
                    Assert.True(Math.Abs(got - exact) <= 1e-5 * (Math.Abs(exact) + 0.1), $"t {t} h {h} i {i}: {got} vs {exact}");
                }
            }
    }

    [Fact]
    public void SwiGlu_MatchesDoublePrecisionSiluTimesUp()
    {
        // 1001 values: several vector chunks and a ragged end; gates up to +-12 reach both saturated ends.
        float[] gate = KernelTests.Random(1001, 11), up = KernelTests.Random(1001, 12);
        for (int i = 0; i < gate.Length; i++) gate[i] *= 12;
        float[] result = (float[])gate.Clone();
        Kernels.SwiGlu(result, up);
        for (int i = 0; i < gate.Length; i++)
        {
            double exact = gate[i] / (1 + Math.Exp(-(double)gate[i])) * up[i];
            Assert.True(Math.Abs(result[i] - exact) <= 1e-6 * (Math.Abs(exact) + 1e-3), $"[{i}] silu({gate[i]}) * {up[i]}: {result[i]} vs {exact}");
        }
    }

    /// <summary>The row-split kernels, at a size the cores share (37 rows of 1,000 values, past the one-thread
    /// threshold, ranges that do not divide evenly), give each row the bits of the one-row kernel.</summary>
    [Fact]
    public void RowSplitKernels_MatchTheOneRowKernelsBitForBit()
    {
        const int rows = 37, width = 1000, headDim = 20, half = headDim / 2, kvWidth = 200;
        float[] x = KernelTests.Random(rows * width, 21), y = KernelTests.Random(rows * width, 22), weight = KernelTests.Random(width, 23);
        float[] k = KernelTests.Random(rows * kvWidth, 24), cos = KernelTests.Random(rows * half, 25), sin = KernelTests.Random(rows * half, 26);
        for (int i = 0; i < x.Length; i++) x[i] *= 8;

        float[] normed = new float[x.Length], normedRow = new float[x.Length];
        Kernels.RmsNormRows(x, weight, 1e-5f, normed, rows);
        float[] q = (float[])x.Clone(), kRotated = (float[])k.Clone(), qRow = (float[])x.Clone(), kRow = (float[])k.Clone();
        Kernels.RopeRows(q, width, kRotated, kvWidth, headDim, cos, sin, rows);
        float[] sum = (float[])x.Clone(), sumRow = (float[])x.Clone();
        Kernels.AddRows(sum, y, rows, width);
        float[] swiglu = (float[])x.Clone(), swigluRow = (float[])x.Clone();
        Kernels.SwiGluRows(swiglu, y, rows, width);
        for (int t = 0; t < rows; t++)
        {
            var row = new Range(t * width, (t + 1) * width);
            Kernels.RmsNorm(x.AsSpan(row), weight, 1e-5f, normedRow.AsSpan(row));
            Kernels.Rope(qRow.AsSpan(row), headDim, cos.AsSpan(t * half, half), sin.AsSpan(t * half, half));
            Kernels.Rope(kRow.AsSpan(t * kvWidth, kvWidth), headDim, cos.AsSpan(t * half, half), sin.AsSpan(t * half, half));
            System.Numerics.Tensors.TensorPrimitives.Add(sumRow.AsSpan(row), y.AsSpan(row), sumRow.AsSpan(row));
            Kernels.SwiGlu(swigluRow.AsSpan(row), y.AsSpan(row));
        }
        Assert.Equal(normedRow, normed);
        Assert.Equal(qRow, q);
        Assert.Equal(kRow, kRotated);
        Assert.Equal(sumRow, sum);
        Assert.Equal(swigluRow, swiglu);
        Assert.NotEqual(x, q);   // the rotation did something
    }
}
