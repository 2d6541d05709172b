using System.Globalization;
using TruthProbe.Common;
using TruthProbe.Numerics;

namespace TruthProbe.Model;

/// <summary>
/// NaN and infinity in weights, found before they reach an activation: one NaN in a checkpoint turns every later
/// activation and logit into NaN, which a forward pass would report as garbage text with exit 0. A UserError names the
/// tensor (by its Hugging Face name, whatever the file's format), the row and the column.
/// </summary>
public static class FiniteWeights
{
    /// <summary>The <see cref="UserError.Field"/> of these errors: the option that runs such a model anyway.</summary>
    public const string AllowField = "allow_nonfinite";

    /// <summary>
    /// Every tensor a forward pass reads in full. The token embedding is left out unless it is also the classifier:
    /// a forward reads only the rows of its tokens, which <see cref="RequireRows"/> checks as they are looked up.
    /// </summary>
    public static void Require(ModelConfig config, ModelWeights w, string source)
    {
        bool tied = ReferenceEquals(w.Classifier, w.TokenEmbedding);
        foreach (var tensor in CheckpointTensor.All(config))
        {
            if (tensor.Kind == DecoderTensor.Embedding && !tied) continue;
            string name = tensor.Name(TensorNaming.HuggingFace) + (tied && tensor.Kind == DecoderTensor.Embedding ? " (tied lm_head)" : "");
            var (matrix, vector) = tensor.In(w);
            if (matrix != null) Matrix(matrix, name, source);
            else Vector(vector!, name, source);
        }
    }

    /// <summary>The embedding rows of <paramref name="tokens"/>, already widened into <paramref name="rows"/> [T, d_model].</summary>
    public static void RequireRows(ReadOnlySpan<float> rows, ReadOnlySpan<int> tokens, int width, string source)
    {
        int at = NonFinite.IndexOf(rows);
        if (at >= 0) throw Found(source, "model.embed_tokens.weight", tokens[at / width], at % width, rows[at]);
    }

    internal static void Vector(float[] values, string name, string source)
    {
        int at = NonFinite.IndexOf(values);
        if (at >= 0) throw Found(source, name, 0, at, values[at]);
    }

    internal static unsafe void Matrix(WeightMatrix m, string name, string source)
    {
        for (int r = 0; r < m.Rows; r++)
        {
            int at;
            byte* row = m.Row(r);
            switch (m.DType)
            {
                case WeightDType.F32: at = NonFinite.IndexOf(new ReadOnlySpan<float>(row, m.Cols)); break;
                case WeightDType.F16: at = NonFinite.IndexOfHalf(new ReadOnlySpan<ushort>(row, m.Cols)); break;
                case WeightDType.BF16: at = NonFinite.IndexOfBFloat16(new ReadOnlySpan<ushort>(row, m.Cols)); break;
                default:
                    // Q8_0: the int8 quants are finite; only each block's float16 scale can be NaN or infinite.
                    at = -1;
                    for (int b = 0; b < m.Cols / WeightMatrix.Q8_0Block && at < 0; b++)
                        if (NonFinite.IndexOfHalf(new ReadOnlySpan<ushort>(row + b * 34, 1)) == 0) at = b * WeightMatrix.Q8_0Block;
                    break;
            }
            if (at < 0) continue;
            float[] values = new float[m.Cols];
            m.ReadRow(r, values);
            throw Found(source, name, r, at, values[at]);
        }
    }

    private static UserError Found(string source, string name, int row, int column, float value) =>
        new($"{source}: weight {name} holds {value.ToString(CultureInfo.InvariantCulture)} at row {row}, column {column}; a non-finite weight makes every later activation NaN, so the checkpoint is corrupt or was saved after training diverged") { Field = AllowField };
}
