using TruthProbe.Lab;
using TruthProbe.Training;

namespace TruthProbe.Tests.Training;

/// <summary>The tower's and projector's layers against central finite differences of their forwards, at awkward sizes, and the closed forms.</summary>
public class VisionOpsGradientTests
{
    [Fact]
    public void LayerNorm_Backward_MatchesFiniteDifferences()
    {
        const int rows = 3, dim = 7;
        var x = GradientCheck.Random(rows * dim, 1);
        var w = GradientCheck.Random(dim, 2);
        var b = GradientCheck.Random(dim, 3);
        var r = GradientCheck.Random(rows * dim, 4);
        var y = new float[rows * dim];
        float[] mean = new float[rows], rstd = new float[rows];
        double Loss() { VisionOps.LayerNormForward(x, w, b, y, mean, rstd, dim, 1e-5f); return GradientCheck.Project(y, r); }
        Loss();
        float[] dx = new float[x.Length], dw = new float[dim], db = new float[dim];
        VisionOps.LayerNormBackward(r, x, w, mean, rstd, dx, dw, db, dim);
        GradientCheck.Assert("dx", x, dx, Loss);
        GradientCheck.Assert("dw", w, dw, Loss);
        GradientCheck.Assert("db", b, db, Loss);
    }

    [Fact]
    public void LayerNorm_Forward_MatchesClosedForm()
    {
        // x = [1, 3]: mean 2, biased variance 1, so xhat = [-1, 1].
        float[] y = new float[2], mean = new float[1], rstd = new float[1];
        VisionOps.LayerNormForward([1f, 3f], [2f, 3f], [0.5f, -1f], y, mean, rstd, 2, 0);
        Assert.Equal(-1.5f, y[0], 6);
        Assert.Equal(2f, y[1], 6);
    }

    [Fact]
    public void Gelu_MatchesPublishedValues_AndBackward_MatchesFiniteDifferences()
    {
        // torch.nn.functional.gelu (exact) at 1, -1 and 2: 0.8413447, -0.1586553, 1.9544997.
        var y = new float[3];
        VisionOps.GeluForward([1f, -1f, 2f], y);
        Assert.Equal(0.8413447f, y[0], 6);
        Assert.Equal(-0.1586553f, y[1], 6);
        Assert.Equal(1.9544997f, y[2], 6);
        // Φ far in the tail keeps its relative precision: Φ(-6) = 9.8658765e-10.
        Assert.InRange(VisionOps.NormalCdf(-6) / 9.8658765e-10, 1 - 1e-6, 1 + 1e-6);
        CheckElementwise("gelu", VisionOps.GeluForward, VisionOps.GeluBackward, 13, 5);
    }

    [Fact]
    public void QuickGelu_MatchesClosedForm_AndBackward_MatchesFiniteDifferences()
    {
        var y = new float[1];
        VisionOps.QuickGeluForward([1f], y);
        Assert.Equal(1 / (1 + Math.Exp(-1.702)), y[0], 6);
        CheckElementwise("quick gelu", VisionOps.QuickGeluForward, VisionOps.QuickGeluBackward, 11, 7);
    }

    private delegate void Forward(ReadOnlySpan<float> x, Span<float> y);
    private delegate void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx);

    private static void CheckElementwise(string what, Forward forward, Backward backward, int length, int seed)
    {
        var x = GradientCheck.Random(length, seed, std: 2);
        var r = GradientCheck.Random(length, seed + 1);
        var y = new float[length];
        double Loss() { forward(x, y); return GradientCheck.Project(y, r); }
        var dx = new float[length];
        backward(r, x, dx);
        GradientCheck.Assert(what + " dx", x, dx, Loss, eps: 1e-3);
    }

    [Fact]
    public void BidirectionalAttention_Backward_MatchesFiniteDifferences_AndSeesLaterPositions()
    {
        const int images = 2, n = 5, heads = 3, hd = 4, width = heads * hd;
        var q = GradientCheck.Random(images * n * width, 9);
        var k = GradientCheck.Random(images * n * width, 10);
        var v = GradientCheck.Random(images * n * width, 11);
        var r = GradientCheck.Random(images * n * width, 12);
        var z = new float[q.Length];
        var probs = new float[images * heads * n * n];
        double Loss() { VisionOps.AttentionForward(q, k, v, z, probs, images, n, heads, hd); return GradientCheck.Project(z, r); }
        Loss();
        // No mask: the first query's weight on the last key is a plain softmax share, not 0.
        Assert.True(probs[n - 1] > 0);
        float[] dq = new float[q.Length], dk = new float[k.Length], dv = new float[v.Length];
        VisionOps.AttentionBackward(r, q, k, v, probs, dq, dk, dv, images, n, heads, hd);
        GradientCheck.Assert("dq", q, dq, Loss);
        GradientCheck.Assert("dk", k, dk, Loss);
        GradientCheck.Assert("dv", v, dv, Loss);
    }

    [Fact]
    public void Unfold_PutsEachPatchInKernelOrder()
    {
        // One 2-channel 4x4 image with value = 100·channel + 10·y + x; patch 2: patch (0, 1) row is channel 0 rows 0-1 at x 2-3, then channel 1.
        var pixels = new float[2 * 16];
        for (int c = 0; c < 2; c++) for (int y = 0; y < 4; y++) for (int x = 0; x < 4; x++) pixels[c * 16 + y * 4 + x] = 100 * c + 10 * y + x;
        var patches = new float[4 * 8];
        VisionOps.Unfold(pixels, patches, 1, 2, 4, 2);
        Assert.Equal([2f, 3, 12, 13, 102, 103, 112, 113], patches.AsSpan(8, 8).ToArray());
    }

    private static ClipShape Tiny => new(ImageSize: 12, PatchSize: 4, Hidden: 8, Heads: 2, Layers: 2, Intermediate: 12, TextDim: 6, Labels: 5);

    [Fact]
    public void Tower_CellLabelBackward_MatchesFiniteDifferences()
    {
        var clip = new TrainableClip(Tiny);
        clip.Initialize(3);
        var rng = new Random(4);
        for (int i = 0; i < clip.Parameters.Values.Length; i++) clip.Parameters.Values[i] += (float)(0.3 * TrainableLlama.Gaussian(rng));
        const int images = 2;
        var pixels = GradientCheck.Random(images * Tiny.PixelValues, 5);
        var r = GradientCheck.Random(images * Tiny.Patches * Tiny.Labels, 6);
        double Loss() { clip.TowerForward(pixels, images); return GradientCheck.Project(clip.CellLogits(), r); }
        Loss();
        clip.Parameters.ZeroGrads();
        clip.CellBackward(r);
        // A key bias adds the same q·b to every score of a row, which the softmax cancels: its gradient is 0 in closed form
        // (finite differences see only float noise there).
        foreach (var t in clip.Parameters.Tensors.Where(t => t.Name.EndsWith("k_proj.bias")))
            Assert.All(clip.Parameters.Grads.AsSpan(t.Offset, t.Length).ToArray(), g => Assert.True(Math.Abs(g) < 1e-6, $"{t.Name}: {g}"));
        foreach (var t in clip.Parameters.Tensors.Where(t => !t.Name.StartsWith(TrainableClip.Projector) && !t.Name.EndsWith("k_proj.bias")))
            GradientCheck.Assert(t.Name, clip.Parameters.Values, clip.Parameters.Grads, Loss, maxChecks: 6, offset: t.Offset, length: t.Length);
    }

    /// <summary>
    /// Pixels → tower → projector → spliced into the decoder's input at the image positions → loss: the gradient reaches the
    /// projector and the tower, and the image token's own embedding row gets none (its input is replaced).
    /// </summary>
    [Fact]
    public void Splice_GradientFlowsIntoProjectorAndTower()
    {
        var shape = Tiny;
        var clip = new TrainableClip(shape);
        clip.Initialize(7);
        var config = LabModelConfig.Create(Vocab: 11, Dim: shape.TextDim, Layers: 1, Heads: 2, KvHeads: 1, HeadDim: 4, Hidden: 10, MaxPositions: 32, TieEmbeddings: false);
        var lm = new TrainableLlama(config);
        lm.Initialize(8);
        const int image = 10, images = 2, seqLen = 13;
        // Two sequences: 2 text tokens, the 9 image positions, 2 text tokens.
        var tokens = new int[images * seqLen];
        var targets = new int[tokens.Length];
        var weights = new float[tokens.Length];
        var rows = new List<int>();
        for (int b = 0; b < images; b++)
            for (int t = 0; t < seqLen; t++)
            {
                bool isImage = t >= 2 && t < 2 + shape.Patches;
                tokens[b * seqLen + t] = isImage ? image : (3 * t + b) % 10;
                targets[b * seqLen + t] = (5 * t + 2 * b + 1) % 10;
                weights[b * seqLen + t] = 1;
                if (isImage) rows.Add(b * seqLen + t);
            }
        var batch = new TrainingBatch(images, seqLen, tokens, targets, weights);
        var pixels = GradientCheck.Random(images * shape.PixelValues, 9);
        var features = new float[rows.Count * shape.TextDim];
        double Loss()
        {
            clip.Forward(pixels, images).CopyTo(features);
            return lm.Forward(batch, out _, out _, new EmbeddingSplice([.. rows], features));
        }
        Loss();
        clip.Parameters.ZeroGrads();
        lm.Parameters.ZeroGrads();
        var dFeatures = new float[features.Length];
        lm.Backward(dFeatures);
        clip.Backward(dFeatures);
        Assert.All(lm.Parameters.Grad(lm.Parameters.IndexOf("model.embed_tokens.weight")).Slice(image * shape.TextDim, shape.TextDim).ToArray(), g => Assert.Equal(0f, g));
        foreach (var t in clip.Parameters.Tensors.Where(t => !t.Name.StartsWith(TrainableClip.HeadPrefix) && !t.Name.Contains("post_layernorm") && !t.Name.EndsWith("k_proj.bias")))
            GradientCheck.Assert(t.Name, clip.Parameters.Values, clip.Parameters.Grads, Loss, maxChecks: 3, offset: t.Offset, length: t.Length);
    }
}
