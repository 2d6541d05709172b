namespace TruthProbe.Model;

/// <summary>
/// The rotary tables of the half-split convention (pairs i, i + d_head/2) that the engine and the trainer both
/// apply: cos/sin of (position / linear factor) * theta^(-2i/d_head), computed in double before rounding, so the
/// two stacks rotate by bit-identical angles.
/// </summary>
internal static class RopeTables
{
    /// <summary>Rows [positions, d_head/2] for positions firstPosition .. firstPosition + positions - 1.</summary>
    public static void Fill(int firstPosition, int positions, int headDim, double theta, double linearFactor, Span<float> cos, Span<float> sin)
    {
        int half = headDim / 2;
        for (int t = 0; t < positions; t++)
        {
            double position = (firstPosition + t) / linearFactor;
            for (int i = 0; i < half; i++)
            {
                double angle = position * Math.Pow(theta, -2.0 * i / headDim);
                cos[t * half + i] = (float)Math.Cos(angle);
                sin[t * half + i] = (float)Math.Sin(angle);
            }
        }
    }

    /// <summary>Tables for positions 0 .. positions - 1 without scaling.</summary>
    public static (float[] Cos, float[] Sin) Create(int positions, int headDim, double theta)
    {
        var cos = new float[positions * (headDim / 2)];
        var sin = new float[cos.Length];
        Fill(0, positions, headDim, theta, 1, cos, sin);
        return (cos, sin);
    }
}
