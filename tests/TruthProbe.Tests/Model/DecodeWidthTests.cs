using TruthProbe.Model;
using TruthProbe.Numerics;
using TruthProbe.Tests.Training;

namespace TruthProbe.Tests.Model;

/// <summary>
/// The decode mat-vec on every vector width in one process (it follows <see cref="SimdWidth"/>): the bf16 rows against the
/// float64 product, and a batched step's outputs as the bits of one token at a time on each width, at row lengths that
/// leave a tail after every vector block (1077 also a 16-value block after the one-token Vector256 kernel's 32-value
/// ones, which the four-token kernel does not have) and token counts that leave inputs outside the fused groups of four.
/// </summary>
public class DecodeWidthTests
{
    public static IEnumerable<object[]> Shapes => Widths.Each([37, 1061], [300, 896], [2053, 300], [45, 1077]);

    [Theory]
    [MemberData(nameof(Shapes))]
    public void MatVec_BFloat16_MatchesDoublePrecisionProduct(SimdPath path, int rows, int cols)
    {
        var (w, values) = KernelTests.Matrix(rows, cols, WeightDType.BF16, seed: rows + cols);
        float[] x = KernelTests.Random(cols, seed: 11), y = new float[rows];
        using (Widths.Use(path)) MatVec.Multiply(w, x, y);
        for (int r = 0; r < rows; r++)
        {
            double exact = 0, magnitude = 0;
            for (int i = 0; i < cols; i++)
            {
                double p = (double)values[r * cols + i] * x[i];
                exact += p;
                magnitude += Math.Abs(p);
            }
            Assert.True(Math.Abs(y[r] - exact) <= 1e-5 * magnitude, $"{path}: y[{r}] = {y[r]}, exact {exact} (scale {magnitude})");
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void BatchMatVec_EachToken_IsTheOneTokenMatVec_BitForBit(SimdPath path, int rows, int cols)
    {
        var (w, _) = KernelTests.Matrix(rows, cols, WeightDType.BF16, seed: rows * cols);
        foreach (int tokens in new[] { 1, 4, 7, 9 })
        {
            float[] x = KernelTests.Random(tokens * cols, seed: tokens), batched = new float[tokens * rows], alone = new float[rows];
            using var width = Widths.Use(path);
            BatchMatVec.Multiply(w, x, batched, tokens);
            for (int t = 0; t < tokens; t++)
            {
                MatVec.Multiply(w, x.AsSpan(t * cols, cols), alone);
                Assert.Equal(alone, batched.AsSpan(t * rows, rows).ToArray());
            }
        }
    }
}
