using TruthProbe.Common;
namespace TruthProbe.Probing;

/// <summary>
/// Activations with a known answer, for tests and benchmarks: every head's rows are standard normal noise
/// plus (2y - 1) * s * u, with u a random unit direction of that head and s the head's planted strength.
/// The best possible accuracy of head (l, h) is then Phi(s) (normal CDF), whatever the dimension.
/// </summary>
internal static class SyntheticActivations
{
    /// <param name="strength">planted separation s of each head, layer-major [L * H].</param>
    public static ActivationSet Planted(int rows, int layers, int heads, int headDim, ReadOnlySpan<double> strength, int seed)
    {
        if (strength.Length != layers * heads) throw new ArgumentException("one strength per head");
        var rng = new SeededRandom((ulong)(uint)seed);
        var labels = new byte[rows];
        for (int i = 0; i < rows; i++) labels[i] = (byte)(i % 2);          // balanced...
        int[] order = SeededRandom.Permutation(rows, seed + 1);              // ...in shuffled order
        labels = order.Select(i => labels[i]).ToArray();

        var directions = new double[layers * heads * headDim];
        for (int head = 0; head < layers * heads; head++)
        {
            var u = directions.AsSpan(head * headDim, headDim);
            double norm = 0;
            for (int k = 0; k < headDim; k++) { u[k] = rng.NextGaussian(); norm += u[k] * u[k]; }
            norm = Math.Sqrt(norm);
            for (int k = 0; k < headDim; k++) u[k] /= norm;
        }
        var values = new float[(long)rows * layers * heads * headDim];
        for (int i = 0; i < rows; i++)
            for (int head = 0; head < layers * heads; head++)
            {
                double shift = (2 * labels[i] - 1) * strength[head];
                long at = ((long)i * layers * heads + head) * headDim;
                for (int k = 0; k < headDim; k++)
                    values[at + k] = (float)(rng.NextGaussian() + shift * directions[head * headDim + k]);
            }
        var ids = Enumerable.Range(0, rows).Select(i => (long)i).ToArray();
        return new ActivationSet(rows, layers, heads, headDim, values, labels, ids,
            new Dictionary<string, string> { ["source"] = $"synthetic planted signal, seed {seed}" });
    }
}
