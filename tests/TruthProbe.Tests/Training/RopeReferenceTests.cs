using TruthProbe.Model;
using TruthProbe.Numerics;
using TruthProbe.Training;

namespace TruthProbe.Tests.Training;

/// <summary>
/// The lab's RoPE (Hugging Face half-split: pair (i, i + hd/2) of a head at position p turns by p·θ^(−2i/hd)) and its
/// inverse, against the rotation written here in float64 from that formula, on packed sequences.
/// </summary>
public class RopeReferenceTests
{
    public static IEnumerable<object[]> Cases => Widths.Each(
        [16, 3],  // the lab's heads: eight pairs, one vector pass
        [20, 2],  // ten pairs: a vector pass and two pairs in the scalar tail
        [6, 5]);  // three pairs: the scalar loop alone

    [Theory]
    [MemberData(nameof(Cases))]
    public void Rope_AndInverse_MatchFloat64Rotation(SimdPath path, int headDim, int heads)
    {
        using var width = Widths.Use(path);
        const double theta = 10000;
        int[] starts = [0, 1, 12, 19];
        int seqLen = 11, half = headDim / 2, rowWidth = heads * headDim, rows = starts[^1];
        var (cos, sin) = RopeTables.Create(seqLen, headDim, theta);
        var x = GradientCheck.Random(rows * rowWidth, 21);
        var turned = x.ToArray();
        Ops.Rope(turned, seqLen, heads, headDim, cos, sin, starts: starts);
        var back = turned.ToArray();
        Ops.Rope(back, seqLen, heads, headDim, cos, sin, inverse: true, starts);

        for (int b = 0; b + 1 < starts.Length; b++)
            for (int r = starts[b]; r < starts[b + 1]; r++)
                for (int h = 0; h < heads; h++)
                    for (int i = 0; i < half; i++)
                    {
                        int first = r * rowWidth + h * headDim + i, second = first + half;
                        double angle = (r - starts[b]) * Math.Pow(theta, -2.0 * i / headDim);
                        double a = x[first], c = x[second];
                        Assert.Equal(a * Math.Cos(angle) - c * Math.Sin(angle), turned[first], 5e-6);
                        Assert.Equal(c * Math.Cos(angle) + a * Math.Sin(angle), turned[second], 5e-6);
                        Assert.Equal(a, back[first], 5e-6);
                        Assert.Equal(c, back[second], 5e-6);
                    }
    }
}
