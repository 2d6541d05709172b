using TruthProbe.Lab;
using TruthProbe.Model;
using TruthProbe.Numerics;
using TruthProbe.Training;

namespace TruthProbe.Tests.Training;

/// <summary>
/// Packed batches (sequences back to back, no padding) against the padded layout, whose ops the gradient checks
/// cover: a sequence attends only to itself and padding carries no loss, so both give the same loss and gradients.
/// </summary>
public class PackedBatchTests
{
    /// <summary>The layout the trainer used before packing: every sequence padded with EOS (weight 0) to the longest.</summary>
    private static TrainingBatch Padded(IReadOnlyList<Sequence> sequences)
    {
        int seqLen = sequences.Max(s => s.Tokens.Length) - 1, n = sequences.Count * seqLen;
        var tokens = Enumerable.Repeat(WordTokenizer.EosId, n).ToArray();
        var targets = Enumerable.Repeat(WordTokenizer.EosId, n).ToArray();
        var weights = new float[n];
        for (int b = 0; b < sequences.Count; b++)
            for (int t = 0; t + 1 < sequences[b].Tokens.Length; t++)
            {
                tokens[b * seqLen + t] = sequences[b].Tokens[t];
                targets[b * seqLen + t] = sequences[b].Tokens[t + 1];
                weights[b * seqLen + t] = sequences[b].TokenWeights[t + 1];
            }
        return new TrainingBatch(sequences.Count, seqLen, tokens, targets, weights);
    }

    [Theory]
    [MemberData(nameof(Widths.Every), MemberType = typeof(Widths))]
    public void PackedBatch_GivesThePaddedLossAndGradients(SimdPath path)
    {
        using var width = Widths.Use(path);
        var tokenizer = WordTokenizer.ForWorld();
        var recipe = new PretrainRecipe(new Corpus(new SyntheticWorld(1), tokenizer));
        // Late in the curriculum (contexts of 1-4 facts, passages, closed-book questions): lengths from about 10 to 70.
        var rng = Corpus.StepRandom(3, 90);
        var sequences = Enumerable.Range(0, 6).Select(_ => recipe.Sample(rng, 90, 100)).ToList();
        var packed = Corpus.Batch(sequences);
        var padded = Padded(sequences);
        Assert.True(packed.Rows < padded.Rows, "the sample should hold sequences of different lengths");

        var config = LabModelConfig.Create(tokenizer.VocabSize, Dim: 32, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 8, Hidden: 48, MaxPositions: 128);
        var model = new TrainableLlama(config);
        model.Initialize(5);
        var p = model.Parameters;
        p.ZeroGrads();
        double paddedLoss = model.Forward(padded, out int paddedCorrect, out int paddedCounted);
        model.Backward();
        var paddedGrads = p.Grads.ToArray();
        p.ZeroGrads();
        double packedLoss = model.Forward(packed, out int packedCorrect, out int packedCounted);
        model.Backward();

        Assert.Equal(paddedLoss, packedLoss, paddedLoss * 1e-6);
        Assert.Equal((paddedCorrect, paddedCounted), (packedCorrect, packedCounted));
        foreach (var t in p.Tensors)
        {
            var expected = paddedGrads.AsSpan(t.Offset, t.Length);
            var actual = p.Grads.AsSpan(t.Offset, t.Length);
            float scale = Math.Abs(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(expected));
            Assert.True(scale > 0, $"{t.Name}: no gradient to compare");
            // Relative to the tensor's largest gradient: an element that is a near-cancelling sum over the batch's
            // positions (measured 1.4e-5 of itself) moves with the order of the sum, which the layouts change.
            for (int i = 0; i < t.Length; i++)
                Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-5 * scale, $"{t.Name}[{i}]: packed {actual[i]:G9}, padded {expected[i]:G9} (largest {scale:G3})");
        }
        // The logits of every real position are the padded run's, row for row.
        var packedLogits = model.Logits.ToArray();
        model.Forward(padded, out _, out _);
        var paddedLogits = model.Logits;
        for (int b = 0; b < sequences.Count; b++)
            for (int t = 0; t < packed.Length(b); t++)
                for (int v = 0; v < config.Vocab; v++)
                    Assert.Equal(paddedLogits[(padded.Start(b) + t) * config.Vocab + v], packedLogits[(packed.Start(b) + t) * config.Vocab + v], 1e-5f);
    }

    [Theory]
    [MemberData(nameof(Widths.Every), MemberType = typeof(Widths))]
    public void PackedAttention_IsEachSequenceAttendingAlone(SimdPath path)
    {
        using var width = Widths.Use(path);
        const int heads = 4, kvHeads = 2, headDim = 16;
        // Lengths around the 4-row tiles and 16-float probs rows, one long enough to split the work over the cores.
        int[] lengths = [1, 5, 17, 64, 3, 33];
        var starts = new int[lengths.Length + 1];
        for (int b = 0; b < lengths.Length; b++) starts[b + 1] = starts[b] + lengths[b];
        int n = starts[^1], seqLen = lengths.Max();
        var q = GradientCheck.Random(n * heads * headDim, 1);
        var k = GradientCheck.Random(n * kvHeads * headDim, 2);
        var v = GradientCheck.Random(n * kvHeads * headDim, 3);
        var dz = GradientCheck.Random(n * heads * headDim, 4);
        var z = new float[q.Length];
        var probs = new float[Ops.AttentionProbsLength(lengths.Length, seqLen, heads, starts)];
        Ops.AttentionForward(q, k, v, z, probs, lengths.Length, seqLen, heads, kvHeads, headDim, starts);
        float[] dq = new float[q.Length], dk = new float[k.Length], dv = new float[v.Length];
        Ops.AttentionBackward(dz, q, k, v, probs, dq, dk, dv, lengths.Length, seqLen, heads, kvHeads, headDim, starts);

        for (int b = 0; b < lengths.Length; b++)
        {
            int t = lengths[b];
            float[] Rows(float[] x, int rowWidth) => x.AsSpan(starts[b] * rowWidth, t * rowWidth).ToArray();
            int qw = heads * headDim, kw = kvHeads * headDim;
            var (q1, k1, v1, dz1) = (Rows(q, qw), Rows(k, kw), Rows(v, kw), Rows(dz, qw));
            var z1 = new float[q1.Length];
            var probs1 = new float[Ops.AttentionProbsLength(1, t, heads)];
            Ops.AttentionForward(q1, k1, v1, z1, probs1, 1, t, heads, kvHeads, headDim);
            float[] dq1 = new float[q1.Length], dk1 = new float[k1.Length], dv1 = new float[v1.Length];
            Ops.AttentionBackward(dz1, q1, k1, v1, probs1, dq1, dk1, dv1, 1, t, heads, kvHeads, headDim);
            Assert.Equal(z1, Rows(z, qw));
            Assert.Equal(dq1, Rows(dq, qw));
            Assert.Equal(dk1, Rows(dk, kw));
            Assert.Equal(dv1, Rows(dv, kw));
        }
    }

    [Theory]
    [MemberData(nameof(Widths.Every), MemberType = typeof(Widths))]
    public void PackedRope_RotatesEachSequenceFromPositionZero(SimdPath path)
    {
        using var width = Widths.Use(path);
        const int heads = 2, headDim = 8;
        int[] starts = [0, 3, 10, 11];
        var (cos, sin) = RopeTables.Create(16, headDim, 10000f);
        var x = GradientCheck.Random(starts[^1] * heads * headDim, 5);
        var packed = x.ToArray();
        Ops.Rope(packed, 7, heads, headDim, cos, sin, starts: starts);
        for (int b = 0; b + 1 < starts.Length; b++)
        {
            var alone = x.AsSpan(starts[b] * heads * headDim, (starts[b + 1] - starts[b]) * heads * headDim).ToArray();
            Ops.Rope(alone, starts[b + 1] - starts[b], heads, headDim, cos, sin);
            Assert.Equal(alone, packed.AsSpan(starts[b] * heads * headDim, alone.Length).ToArray());
        }
    }
}
