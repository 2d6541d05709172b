using System.Numerics.Tensors;

namespace TruthProbe.Model;

/// <summary>
/// One decoding step for several sequences at once: token b of the step continues sequence b (its own
/// <see cref="RunState"/>, cache and position). The step's activations form [B, width] rows, so every weight
/// matrix is streamed from memory once per step for the whole batch (<see cref="BatchMatVec"/>) instead of once
/// per sequence; attention reads each sequence's own cache. Every row gets the same operations in the same
/// order as a one-token <see cref="Transformer.Forward"/> on that sequence's state, so the logits are the
/// same bits. Interventions apply as in <c>Forward</c>; capture is not offered (use <c>Forward</c> to record).
/// </summary>
public sealed class DecodeBatch
{
    private readonly Transformer _model;
    /// <summary>Scratch for the step's [B, width] rows; its own cache stays empty.</summary>
    private readonly RunState _rows;

    public int Capacity { get; }

    public DecodeBatch(Transformer model, int capacity)
    {
        if (capacity < 1) throw new ArgumentOutOfRangeException(nameof(capacity), "a batch holds at least one sequence");
        _model = model;
        Capacity = capacity;
        _rows = model.NewState();
        _rows.EnsureCapacity(capacity, 0);
        _rows.LogitsBuffer(capacity);
    }

    /// <summary>
    /// Runs <paramref name="tokens"/>[b] at the next position of <paramref name="sequences"/>[b] for every b,
    /// appending to each cache. Returns the logits [B, vocab] (valid until the next step of this batch).
    /// </summary>
    public ReadOnlySpan<float> Step(ReadOnlySpan<RunState> sequences, ReadOnlySpan<int> tokens, Interventions? interventions = null)
    {
        int B = sequences.Length;
        if (B == 0 || B != tokens.Length || B > Capacity)
            throw new ArgumentException($"a step takes one token per sequence, 1..{Capacity} of them; got {B} sequences and {tokens.Length} tokens");
        var c = _model.Config;
        var weights = _model.Weights;
        for (int b = 0; b < B; b++)
        {
            _model.CheckTokens(tokens.Slice(b, 1), sequences[b].Position);
            sequences[b].EnsureCapacity(1, sequences[b].Position + 1);
        }
        var s = _rows;
        int d = c.DModel, qDim = c.QDim, kvDim = c.KvDim, half = c.HeadDim / 2, ffn = c.Ffn;
        var x = s.Residual.AsSpan(0, B * d);
        var xb = s.Normed.AsSpan(0, B * d);
        var q = s.Q.AsSpan(0, B * qDim);
        var k = s.K.AsSpan(0, B * kvDim);
        var v = s.V.AsSpan(0, B * kvDim);
        var z = s.Z.AsSpan(0, B * qDim);
        var attnOut = s.AttnOut.AsSpan(0, B * d);
        var hidden = s.Hidden.AsSpan(0, B * ffn);
        var hiddenUp = s.HiddenUp.AsSpan(0, B * ffn);
        var mlpOut = s.MlpOut.AsSpan(0, B * d);

        for (int b = 0; b < B; b++)
        {
            weights.TokenEmbedding.ReadRow(tokens[b], x.Slice(b * d, d));
            RopeTables.Fill(sequences[b].Position, 1, c.HeadDim, c.RopeTheta, c.RopeLinearFactor, s.RopeCos.AsSpan(b * half, half), s.RopeSin.AsSpan(b * half, half));
        }
        _model.Hook(HookKind.Embed, 0, x, B, null, interventions);

        for (int l = 0; l < c.Layers; l++)
        {
            var layer = weights.Layers[l];
            _model.Hook(HookKind.ResidPre, l, x, B, null, interventions);

            _model.RmsNormRows(x, layer.InputNorm, xb, B);
            BatchMatVec.Multiply(layer.Q, xb, q, B);
            BatchMatVec.Multiply(layer.K, xb, k, B);
            BatchMatVec.Multiply(layer.V, xb, v, B);
            Transformer.AddBias(q, layer.QBias, B);
            Transformer.AddBias(k, layer.KBias, B);
            Transformer.AddBias(v, layer.VBias, B);
            _model.Hook(HookKind.Q, l, q, B, null, interventions);
            _model.Hook(HookKind.K, l, k, B, null, interventions);
            _model.Hook(HookKind.V, l, v, B, null, interventions);
            Kernels.RopeRows(q, qDim, k, kvDim, c.HeadDim, s.RopeCos, s.RopeSin, B);
            _model.Hook(HookKind.RotQ, l, q, B, null, interventions);
            _model.Hook(HookKind.RotK, l, k, B, null, interventions);
            // Each sequence attends over its own cache, its new key and value included.
            for (int b = 0; b < B; b++)
            {
                var seq = sequences[b];
                int p = seq.Position;
                seq.StoreKeysValues(l, p, k.Slice(b * kvDim, kvDim), v.Slice(b * kvDim, kvDim));
                seq.Attend(l, q.Slice(b * qDim, qDim), z.Slice(b * qDim, qDim), 1, p);
            }
            _model.Hook(HookKind.Z, l, z, B, null, interventions);

            BatchMatVec.Multiply(layer.O, z, attnOut, B);
            Transformer.AddBias(attnOut, layer.OBias, B);
            _model.Hook(HookKind.AttnOut, l, attnOut, B, null, interventions);
            TensorPrimitives.Add(x, attnOut, x);
            _model.Hook(HookKind.ResidMid, l, x, B, null, interventions);

            _model.RmsNormRows(x, layer.PostAttentionNorm, xb, B);
            BatchMatVec.Multiply(layer.Gate, xb, hidden, B);
            BatchMatVec.Multiply(layer.Up, xb, hiddenUp, B);
            _model.Hook(HookKind.MlpPre, l, hidden, B, null, interventions);
            _model.Hook(HookKind.MlpPreLinear, l, hiddenUp, B, null, interventions);
            // Row by row: SwiGlu works in chunks from the start of its span, as it does on one token's row.
            for (int b = 0; b < B; b++) Kernels.SwiGlu(hidden.Slice(b * ffn, ffn), hiddenUp.Slice(b * ffn, ffn));
            _model.Hook(HookKind.MlpPost, l, hidden, B, null, interventions);
            BatchMatVec.Multiply(layer.Down, hidden, mlpOut, B);
            _model.Hook(HookKind.MlpOut, l, mlpOut, B, null, interventions);
            TensorPrimitives.Add(x, mlpOut, x);
            _model.Hook(HookKind.ResidPost, l, x, B, null, interventions);
        }

        _model.RmsNormRows(x, weights.FinalNorm, xb, B);
        var logits = s.LogitsBuffer(B);
        BatchMatVec.Multiply(weights.Classifier, xb, logits, B);
        _model.Hook(HookKind.Logits, 0, logits, B, null, interventions);
        for (int b = 0; b < B; b++) sequences[b].Position++;
        return logits;
    }
}
