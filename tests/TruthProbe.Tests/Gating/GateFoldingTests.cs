using TruthProbe.Gating;

namespace TruthProbe.Tests.Gating;

public class GateFoldingTests
{
    private static float[] Random(Random rng, int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();

    /// <summary>y = W x + b with plain loops, in double.</summary>
    private static double[] Apply(float[] w, float[]? b, float[] x, int outFeatures)
    {
        int inFeatures = x.Length;
        var y = new double[outFeatures];
        for (int r = 0; r < outFeatures; r++)
        {
            double sum = b?[r] ?? 0;
            for (int c = 0; c < inFeatures; c++) sum += (double)w[r * inFeatures + c] * x[c];
            y[r] = sum;
        }
        return y;
    }

    [Fact]
    public void HeadSite_FoldedWeight_EqualsGatingEachHeadsSliceOfZ()
    {
        var rng = new Random(1);
        const int heads = 4, headDim = 3, dModel = 10;
        float[] w = Random(rng, dModel * heads * headDim), b = Random(rng, dModel), z = Random(rng, heads * headDim);
        float[] gates = [1.5f, -0.25f, 0f, 2f]; // negative and zero gates fold like any other
        var gatedZ = z.Select((v, i) => v * gates[i / headDim]).ToArray();
        double[] expected = Apply(w, b, gatedZ, dModel);

        float[] folded = (float[])w.Clone();
        GateFolding.FoldHeadSite(folded, dModel, gates);
        double[] actual = Apply(folded, b, z, dModel);
        for (int i = 0; i < dModel; i++) Assert.Equal(expected[i], actual[i], 1e-6);
    }

    [Fact]
    public void OProjOutSite_FoldedWeightAndBias_EqualReferenceReshapeAndScale()
    {
        // The reference's head_gating_truthful_head: attn_output [d_model] reshaped to [n_heads, d_model / n_heads],
        // each row times its gate, reshaped back. Note d_model / n_heads need not equal head_dim.
        var rng = new Random(2);
        const int heads = 4, inFeatures = 8, dModel = 12;
        float[] w = Random(rng, dModel * inFeatures), b = Random(rng, dModel), z = Random(rng, inFeatures);
        float[] gates = [0.5f, -1f, 3f, 1f];
        double[] output = Apply(w, b, z, dModel);
        int chunk = dModel / heads;
        var reshaped = new double[heads, chunk];
        for (int h = 0; h < heads; h++) for (int j = 0; j < chunk; j++) reshaped[h, j] = output[h * chunk + j] * gates[h];

        float[] folded = (float[])w.Clone(), foldedBias = (float[])b.Clone();
        GateFolding.FoldOProjOutSite(folded, foldedBias, dModel, gates);
        double[] actual = Apply(folded, foldedBias, z, dModel);
        for (int h = 0; h < heads; h++) for (int j = 0; j < chunk; j++) Assert.Equal(reshaped[h, j], actual[h * chunk + j], 1e-6);
    }

    [Fact]
    public void ShapesThatDoNotSplitIntoHeads_AreRejected()
    {
        Assert.Throws<ArgumentException>(() => GateFolding.FoldHeadSite(new float[10 * 9], 10, [1f, 1f, 1f, 1f]));
        Assert.Throws<ArgumentException>(() => GateFolding.FoldOProjOutSite(new float[10 * 8], Span<float>.Empty, 10, [1f, 1f, 1f, 1f]));
        Assert.Throws<ArgumentException>(() => GateFolding.FoldOProjOutSite(new float[8 * 8], new float[7], 8, [1f, 1f]));
    }
}
