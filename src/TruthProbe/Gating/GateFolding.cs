using System.Numerics.Tensors;

namespace TruthProbe.Gating;

/// <summary>
/// Fixed gates are linear, so they fold into <c>o_proj</c>'s weights and the steered model becomes an
/// ordinary checkpoint (docs/design.md §5). <c>o_proj</c>'s weight is row-major [out = d_model][in = H * d_head]
/// (y = W z + b):
/// <list type="bullet">
/// <item><c>head</c> scales head h's slice of z, columns h*d_head .. (h+1)*d_head-1 of W: W (g ⊙ z) + b. The bias is untouched.</item>
/// <item><c>o-proj-out</c> scales the h-th of H equal chunks of the output, as the reference does: rows
/// h*(d_model/H) .. and the same entries of the bias: g ⊙ (W z + b).</item>
/// </list>
/// </summary>
public static class GateFolding
{
    /// <summary>Scales each head's input columns of one layer's <c>o_proj</c> weight by that head's gate.</summary>
    public static void FoldHeadSite(Span<float> weight, int outFeatures, ReadOnlySpan<float> gates)
    {
        int inFeatures = CheckShape(weight, outFeatures, gates.Length);
        if (inFeatures % gates.Length != 0)
            throw new ArgumentException($"o_proj has {inFeatures} input columns, not a multiple of {gates.Length} heads");
        int headDim = inFeatures / gates.Length;
        for (int r = 0; r < outFeatures; r++)
        {
            var row = weight.Slice(r * inFeatures, inFeatures);
            for (int h = 0; h < gates.Length; h++)
            {
                var slice = row.Slice(h * headDim, headDim);
                TensorPrimitives.Multiply(slice, gates[h], slice);
            }
        }
    }

    /// <summary>Scales the output rows (and bias entries, when there is a bias) of chunk h by gate h.</summary>
    public static void FoldOProjOutSite(Span<float> weight, Span<float> bias, int outFeatures, ReadOnlySpan<float> gates)
    {
        int inFeatures = CheckShape(weight, outFeatures, gates.Length);
        if (outFeatures % gates.Length != 0)
            throw new ArgumentException($"o_proj has {outFeatures} outputs, not a multiple of {gates.Length} heads (the o-proj-out site needs equal chunks)");
        if (!bias.IsEmpty && bias.Length != outFeatures)
            throw new ArgumentException($"o_proj bias has {bias.Length} entries, expected {outFeatures}");
        int chunk = outFeatures / gates.Length;
        for (int h = 0; h < gates.Length; h++)
        {
            var rows = weight.Slice(h * chunk * inFeatures, chunk * inFeatures);
            TensorPrimitives.Multiply(rows, gates[h], rows);
            if (!bias.IsEmpty)
            {
                var entries = bias.Slice(h * chunk, chunk);
                TensorPrimitives.Multiply(entries, gates[h], entries);
            }
        }
    }

    private static int CheckShape(ReadOnlySpan<float> weight, int outFeatures, int heads)
    {
        if (heads <= 0) throw new ArgumentException("no gates given");
        if (outFeatures <= 0 || weight.Length % outFeatures != 0)
            throw new ArgumentException($"o_proj weight of {weight.Length} values is not [{outFeatures} x n]");
        return weight.Length / outFeatures;
    }
}
