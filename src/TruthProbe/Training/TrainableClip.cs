using System.Numerics.Tensors;

namespace TruthProbe.Training;

/// <summary>The shapes of a lab CLIP tower and its LLaVA projector.</summary>
internal sealed record ClipShape(int ImageSize, int PatchSize, int Hidden, int Heads, int Layers, int Intermediate, int TextDim, int Labels, int Channels = 3, float Eps = 1e-5f)
{
    public int Grid => ImageSize / PatchSize;
    public int Patches => Grid * Grid;
    /// <summary>The class token, then the patches.</summary>
    public int Positions => Patches + 1;
    public int PatchValues => Channels * PatchSize * PatchSize;
    public int PixelValues => Channels * ImageSize * ImageSize;
    public int HeadDim => Hidden / Heads;
}

/// <summary>
/// A CLIP vision tower and the LLaVA projector with a backward pass, named as llava-hf names them: patch embedding
/// (a GEMM over unfolded patches), class token and learned positions, <c>pre_layrnorm</c>, pre-norm layers
/// (LayerNorm, bidirectional attention with biases, LayerNorm, quick-GELU MLP), all layers' output as the features
/// (<c>vision_feature_layer</c> −1) with the class row dropped (<c>"default"</c>), then linear, erf GELU, linear.
/// <c>post_layernorm</c> and a linear head over each patch row give the per-cell label logits that pre-train the tower
/// (the head is the lab's, not part of the written checkpoint).
/// </summary>
internal sealed class TrainableClip
{
    public const string Tower = "vision_tower.vision_model.", Projector = "multi_modal_projector.", HeadPrefix = "lab_presence_head.";

    public ClipShape Shape { get; }
    public ParameterSet Parameters { get; } = new();

    private readonly int _patch, _class, _positions, _preW, _preB, _postW, _postB, _lin1, _bias1, _lin2, _bias2, _head, _headBias;
    private readonly Layer[] _layers;
    private Buffers? _buf;

    private sealed record Layer(int Norm1W, int Norm1B, int Q, int Qb, int K, int Kb, int V, int Vb, int O, int Ob, int Norm2W, int Norm2B, int Fc1, int Fc1b, int Fc2, int Fc2b);

    /// <summary>Activations of one batch of images, sized once for the largest.</summary>
    private sealed class Buffers(ClipShape s, int images)
    {
        public readonly int Images = images;
        private static float[] F(long n) => new float[n];
        private static float[][] L(int count, long n) => Enumerable.Range(0, count).Select(_ => new float[n]).ToArray();
        public readonly float[] Patches = F((long)images * s.Patches * s.PatchValues), Embedded = F((long)images * s.Positions * s.Hidden);
        public readonly float[] PreMean = F(images * s.Positions), PreRstd = F(images * s.Positions);
        // Resid[l] is layer l's input; Resid[Layers] the tower's output.
        public readonly float[][] Resid = L(s.Layers + 1, (long)images * s.Positions * s.Hidden), Mid = L(s.Layers, (long)images * s.Positions * s.Hidden);
        public readonly float[][] Ln1 = L(s.Layers, (long)images * s.Positions * s.Hidden), Ln2 = L(s.Layers, (long)images * s.Positions * s.Hidden);
        public readonly float[][] Mean1 = L(s.Layers, images * s.Positions), Rstd1 = L(s.Layers, images * s.Positions);
        public readonly float[][] Mean2 = L(s.Layers, images * s.Positions), Rstd2 = L(s.Layers, images * s.Positions);
        public readonly float[][] Q = L(s.Layers, (long)images * s.Positions * s.Hidden), K = L(s.Layers, (long)images * s.Positions * s.Hidden), V = L(s.Layers, (long)images * s.Positions * s.Hidden);
        public readonly float[][] Z = L(s.Layers, (long)images * s.Positions * s.Hidden), Probs = L(s.Layers, (long)images * s.Heads * s.Positions * s.Positions);
        public readonly float[][] Pre = L(s.Layers, (long)images * s.Positions * s.Intermediate), Act = L(s.Layers, (long)images * s.Positions * s.Intermediate);
        public readonly float[] Selected = F((long)images * s.Patches * s.Hidden), Mid1 = F((long)images * s.Patches * s.TextDim), Gelu = F((long)images * s.Patches * s.TextDim);
        public readonly float[] Features = F((long)images * s.Patches * s.TextDim);
        public readonly float[] Post = F((long)images * s.Patches * s.Hidden), PostMean = F(images * s.Patches), PostRstd = F(images * s.Patches), CellLogits = F((long)images * s.Patches * s.Labels);
        // Backward scratch.
        public readonly float[] DResid = F((long)images * s.Positions * s.Hidden), DLn = F((long)images * s.Positions * s.Hidden), DBranch = F((long)images * s.Positions * s.Hidden);
        public readonly float[] DQ = F((long)images * s.Positions * s.Hidden), DK = F((long)images * s.Positions * s.Hidden), DV = F((long)images * s.Positions * s.Hidden);
        public readonly float[] DZ = F((long)images * s.Positions * s.Hidden), DPre = F((long)images * s.Positions * s.Intermediate), DAct = F((long)images * s.Positions * s.Intermediate);
        public readonly float[] DSelected = F((long)images * s.Patches * s.Hidden), DMid1 = F((long)images * s.Patches * s.TextDim), DGelu = F((long)images * s.Patches * s.TextDim);
        public readonly float[] DPost = F((long)images * s.Patches * s.Hidden);
        /// <summary>Images of the last forward; 0 when it started from given tower features (<see cref="Project"/>).</summary>
        public int LastImages;
        public int LastRows;
    }

    public TrainableClip(ClipShape shape)
    {
        Shape = shape;
        int d = shape.Hidden;
        int P(string name, params int[] dims) => Parameters.Add(name, dims);
        _patch = P(Tower + "embeddings.patch_embedding.weight", d, shape.Channels, shape.PatchSize, shape.PatchSize);
        _class = P(Tower + "embeddings.class_embedding", d);
        _positions = P(Tower + "embeddings.position_embedding.weight", shape.Positions, d);
        _preW = P(Tower + "pre_layrnorm.weight", d);
        _preB = P(Tower + "pre_layrnorm.bias", d);
        _layers = new Layer[shape.Layers];
        for (int l = 0; l < shape.Layers; l++)
        {
            string p = $"{Tower}encoder.layers.{l}.";
            _layers[l] = new Layer(
                P(p + "layer_norm1.weight", d), P(p + "layer_norm1.bias", d),
                P(p + "self_attn.q_proj.weight", d, d), P(p + "self_attn.q_proj.bias", d),
                P(p + "self_attn.k_proj.weight", d, d), P(p + "self_attn.k_proj.bias", d),
                P(p + "self_attn.v_proj.weight", d, d), P(p + "self_attn.v_proj.bias", d),
                P(p + "self_attn.out_proj.weight", d, d), P(p + "self_attn.out_proj.bias", d),
                P(p + "layer_norm2.weight", d), P(p + "layer_norm2.bias", d),
                P(p + "mlp.fc1.weight", shape.Intermediate, d), P(p + "mlp.fc1.bias", shape.Intermediate),
                P(p + "mlp.fc2.weight", d, shape.Intermediate), P(p + "mlp.fc2.bias", d));
        }
        _postW = P(Tower + "post_layernorm.weight", d);
        _postB = P(Tower + "post_layernorm.bias", d);
        _lin1 = P(Projector + "linear_1.weight", shape.TextDim, d);
        _bias1 = P(Projector + "linear_1.bias", shape.TextDim);
        _lin2 = P(Projector + "linear_2.weight", shape.TextDim, shape.TextDim);
        _bias2 = P(Projector + "linear_2.bias", shape.TextDim);
        _head = P(HeadPrefix + "weight", shape.Labels, d);
        _headBias = P(HeadPrefix + "bias", shape.Labels);
    }

    /// <summary>
    /// transformers' CLIP initialisation (factor 1): attention and fc2 weights N(0, d^-0.5·(2L)^-0.5), fc1 N(0, (2d)^-0.5),
    /// patch and class embeddings N(0, d^-0.5), positions N(0, 0.02); the projector and presence head as torch's
    /// Linear default, U(±1/√fan_in); norms 1, biases 0. Seeded: a frozen tower is reproducible.
    /// </summary>
    public void Initialize(int seed)
    {
        var rng = new Random(seed);
        int d = Shape.Hidden;
        double attention = Math.Pow(d, -0.5) * Math.Pow(2 * Shape.Layers, -0.5);
        foreach (var (t, i) in Parameters.Tensors.Select((t, i) => (t, i)))
        {
            var v = Parameters.Value(i);
            string name = t.Name;
            if (name.EndsWith("norm.weight") || name.Contains("norm1.weight") || name.Contains("norm2.weight") || name.EndsWith("layrnorm.weight")) { v.Fill(1f); continue; }
            if (t.Shape.Length == 1 && !name.EndsWith("class_embedding")) continue;
            double std = name.Contains("position_embedding") ? 0.02
                : name.Contains("patch_embedding") || name.EndsWith("class_embedding") ? Math.Pow(d, -0.5)
                : name.Contains("fc1") ? Math.Pow(2 * d, -0.5)
                : name.Contains("self_attn") || name.Contains("fc2") ? attention : double.NaN;
            if (double.IsNaN(std))
            {
                double bound = 1 / Math.Sqrt(t.Shape[^1]);
                for (int j = 0; j < v.Length; j++) v[j] = (float)(bound * (2 * rng.NextDouble() - 1));
            }
            else for (int j = 0; j < v.Length; j++) v[j] = (float)(std * TrainableLlama.Gaussian(rng));
        }
    }

    /// <summary>Freezes or thaws the tower (embeddings, layers, post_layernorm) and the presence head.</summary>
    public void SetTowerTrainable(bool tower, bool projector) =>
        Parameters.SetTrainable(t => t.Name.StartsWith(Projector, StringComparison.Ordinal) ? projector : tower);

    private Buffers Buf(int images)
    {
        if (_buf == null || _buf.Images < images) _buf = new Buffers(Shape, images);
        return _buf;
    }

    private Span<float> W(int index) => Parameters.Value(index);

    // ---- forward ----

    /// <summary>
    /// The tower over images [images, 3, size, size]: the selected features [images·patches, hidden] (the last
    /// layer's patch rows), kept with every activation for the backward.
    /// </summary>
    public ReadOnlySpan<float> TowerForward(ReadOnlySpan<float> pixels, int images)
    {
        var s = Shape;
        var a = Buf(images);
        int d = s.Hidden, n = images * s.Positions;
        VisionOps.Unfold(pixels, a.Patches, images, s.Channels, s.ImageSize, s.PatchSize);
        var emb = a.Embedded.AsSpan(0, n * d);
        for (int b = 0; b < images; b++)
        {
            var image = emb.Slice(b * s.Positions * d, s.Positions * d);
            TrainingGemm.MatMulTransB(a.Patches.AsSpan(b * s.Patches * s.PatchValues, s.Patches * s.PatchValues), W(_patch), image[d..], s.Patches, s.PatchValues, d);
            W(_class).CopyTo(image);
            TensorPrimitives.Add(image, W(_positions), image);
        }
        VisionOps.LayerNormForward(emb, W(_preW), W(_preB), a.Resid[0], a.PreMean.AsSpan(0, n), a.PreRstd.AsSpan(0, n), d, s.Eps);
        for (int l = 0; l < s.Layers; l++)
        {
            var L = _layers[l];
            var x = a.Resid[l].AsSpan(0, n * d);
            var mid = a.Mid[l].AsSpan(0, n * d);
            VisionOps.LayerNormForward(x, W(L.Norm1W), W(L.Norm1B), a.Ln1[l], a.Mean1[l].AsSpan(0, n), a.Rstd1[l].AsSpan(0, n), d, s.Eps);
            Linear(L.Q, L.Qb, a.Ln1[l], a.Q[l], n);
            Linear(L.K, L.Kb, a.Ln1[l], a.K[l], n);
            Linear(L.V, L.Vb, a.Ln1[l], a.V[l], n);
            VisionOps.AttentionForward(a.Q[l], a.K[l], a.V[l], a.Z[l], a.Probs[l], images, s.Positions, s.Heads, s.HeadDim);
            Linear(L.O, L.Ob, a.Z[l], mid, n);
            TensorPrimitives.Add(mid, x, mid);
            VisionOps.LayerNormForward(mid, W(L.Norm2W), W(L.Norm2B), a.Ln2[l], a.Mean2[l].AsSpan(0, n), a.Rstd2[l].AsSpan(0, n), d, s.Eps);
            Linear(L.Fc1, L.Fc1b, a.Ln2[l], a.Pre[l], n);
            VisionOps.QuickGeluForward(a.Pre[l].AsSpan(0, n * s.Intermediate), a.Act[l]);
            var next = a.Resid[l + 1].AsSpan(0, n * d);
            Linear(L.Fc2, L.Fc2b, a.Act[l], next, n);
            TensorPrimitives.Add(next, mid, next);
        }
        var output = a.Resid[s.Layers];
        for (int b = 0; b < images; b++)
            output.AsSpan((b * s.Positions + 1) * d, s.Patches * d).CopyTo(a.Selected.AsSpan(b * s.Patches * d, s.Patches * d));
        a.LastImages = images;
        return a.Selected.AsSpan(0, images * s.Patches * d);
    }

    /// <summary>Image features [rows, text dim] of selected tower rows [rows, hidden]: linear_2(gelu(linear_1(x))).</summary>
    public ReadOnlySpan<float> Project(ReadOnlySpan<float> selected, int rows)
    {
        var a = Buf((rows + Shape.Patches - 1) / Shape.Patches);
        selected[..(rows * Shape.Hidden)].CopyTo(a.Selected);
        a.LastImages = 0;
        return ProjectSelected(rows);
    }

    private ReadOnlySpan<float> ProjectSelected(int rows)
    {
        var s = Shape;
        var a = _buf!;
        Linear(_lin1, _bias1, a.Selected, a.Mid1, rows);
        VisionOps.GeluForward(a.Mid1.AsSpan(0, rows * s.TextDim), a.Gelu);
        Linear(_lin2, _bias2, a.Gelu, a.Features, rows);
        a.LastRows = rows;
        return a.Features.AsSpan(0, rows * s.TextDim);
    }

    /// <summary>Pixels to image features: <see cref="TowerForward"/> then <see cref="Project"/>.</summary>
    public ReadOnlySpan<float> Forward(ReadOnlySpan<float> pixels, int images)
    {
        TowerForward(pixels, images);
        return ProjectSelected(images * Shape.Patches);
    }

    /// <summary>Per-patch label logits [images·patches, labels] of the last <see cref="TowerForward"/>: head(post_layernorm(patch row)).</summary>
    public ReadOnlySpan<float> CellLogits()
    {
        var s = Shape;
        var a = _buf!;
        int rows = a.LastImages * s.Patches;
        VisionOps.LayerNormForward(a.Selected.AsSpan(0, rows * s.Hidden), W(_postW), W(_postB), a.Post, a.PostMean.AsSpan(0, rows), a.PostRstd.AsSpan(0, rows), s.Hidden, s.Eps);
        Linear(_head, _headBias, a.Post, a.CellLogits, rows);
        return a.CellLogits.AsSpan(0, rows * s.Labels);
    }

    private void Linear(int weight, int bias, ReadOnlySpan<float> x, Span<float> y, int rows)
    {
        var t = Parameters.Tensors[weight];
        int outputs = t.Shape[0], inputs = t.Length / outputs;
        TrainingGemm.MatMulTransB(x[..(rows * inputs)], W(weight), y, rows, inputs, outputs);
        VisionOps.AddBias(y[..(rows * outputs)], W(bias));
    }

    // ---- backward ----

    /// <summary>
    /// Adds the gradient of the last <see cref="Project"/> (or <see cref="Forward"/>) given dFeatures [rows, text dim] to
    /// the trainable parameters; through the tower too when it is trainable and the forward started from pixels.
    /// </summary>
    public void Backward(ReadOnlySpan<float> dFeatures)
    {
        var s = Shape;
        var a = _buf ?? throw new InvalidOperationException("Backward before Forward");
        int rows = a.LastRows;
        var dGelu = a.DGelu.AsSpan(0, rows * s.TextDim);
        LinearBackward(_lin2, _bias2, dFeatures[..(rows * s.TextDim)], a.Gelu, dGelu, rows, accumulateInput: false);
        var dMid = a.DMid1.AsSpan(0, rows * s.TextDim);
        dMid.Clear();
        VisionOps.GeluBackward(dGelu, a.Mid1, dMid);
        bool tower = a.LastImages > 0 && Parameters.IsTrainable(_patch);
        LinearBackward(_lin1, _bias1, dMid, a.Selected, tower ? a.DSelected : default, rows, accumulateInput: false);
        if (!tower) return;
        ScatterPatches(a.LastImages);
        TowerBackward(a.LastImages);
    }

    /// <summary>Adds the gradient of the last <see cref="CellLogits"/> given dLogits [images·patches, labels], through the whole tower.</summary>
    public void CellBackward(ReadOnlySpan<float> dLogits)
    {
        var s = Shape;
        var a = _buf!;
        int images = a.LastImages, rows = images * s.Patches, d = s.Hidden;
        var dPost = a.DPost.AsSpan(0, rows * d);
        LinearBackward(_head, _headBias, dLogits, a.Post, dPost, rows, accumulateInput: false);
        var dSelected = a.DSelected.AsSpan(0, rows * d);
        dSelected.Clear();
        VisionOps.LayerNormBackward(dPost, a.Selected, W(_postW), a.PostMean, a.PostRstd, dSelected, Grad(_postW), Grad(_postB), d);
        ScatterPatches(images);
        TowerBackward(images);
    }

    /// <summary>DSelected (the patch rows' gradient) into DResid, the class rows' gradient 0.</summary>
    private void ScatterPatches(int images)
    {
        var s = Shape;
        var a = _buf!;
        int d = s.Hidden;
        var dOut = a.DResid.AsSpan(0, images * s.Positions * d);
        dOut.Clear();
        for (int b = 0; b < images; b++)
            a.DSelected.AsSpan(b * s.Patches * d, s.Patches * d).CopyTo(dOut.Slice((b * s.Positions + 1) * d, s.Patches * d));
    }

    /// <summary>From dResid (the gradient of the tower's output, in <c>DResid</c>) down to the embeddings.</summary>
    private void TowerBackward(int images)
    {
        var s = Shape;
        var a = _buf!;
        int d = s.Hidden, n = images * s.Positions;
        var dx = a.DResid.AsSpan(0, n * d);
        var dLn = a.DLn.AsSpan(0, n * d);
        for (int l = s.Layers - 1; l >= 0; l--)
        {
            var L = _layers[l];
            // x_next = mid + fc2(quick_gelu(fc1(ln2(mid))))
            var dAct = a.DAct.AsSpan(0, n * s.Intermediate);
            LinearBackward(L.Fc2, L.Fc2b, dx, a.Act[l], dAct, n, accumulateInput: false);
            var dPre = a.DPre.AsSpan(0, n * s.Intermediate);
            dPre.Clear();
            VisionOps.QuickGeluBackward(dAct, a.Pre[l], dPre);
            LinearBackward(L.Fc1, L.Fc1b, dPre, a.Ln2[l], dLn, n, accumulateInput: false);
            VisionOps.LayerNormBackward(dLn, a.Mid[l], W(L.Norm2W), a.Mean2[l], a.Rstd2[l], dx, Grad(L.Norm2W), Grad(L.Norm2B), d);
            // mid = x + out_proj(attention(q, k, v of ln1(x)))
            var dz = a.DZ.AsSpan(0, n * d);
            LinearBackward(L.O, L.Ob, dx, a.Z[l], dz, n, accumulateInput: false);
            VisionOps.AttentionBackward(dz, a.Q[l], a.K[l], a.V[l], a.Probs[l], a.DQ, a.DK, a.DV, images, s.Positions, s.Heads, s.HeadDim);
            LinearBackward(L.Q, L.Qb, a.DQ, a.Ln1[l], dLn, n, accumulateInput: false);
            LinearBackward(L.K, L.Kb, a.DK, a.Ln1[l], dLn, n, accumulateInput: true);
            LinearBackward(L.V, L.Vb, a.DV, a.Ln1[l], dLn, n, accumulateInput: true);
            VisionOps.LayerNormBackward(dLn, a.Resid[l], W(L.Norm1W), a.Mean1[l], a.Rstd1[l], dx, Grad(L.Norm1W), Grad(L.Norm1B), d);
        }
        var dEmb = a.DBranch.AsSpan(0, n * d);
        dEmb.Clear();
        VisionOps.LayerNormBackward(dx, a.Embedded, W(_preW), a.PreMean, a.PreRstd, dEmb, Grad(_preW), Grad(_preB), d);
        var dPatch = Grad(_patch);
        for (int b = 0; b < images; b++)
        {
            var image = dEmb.Slice(b * s.Positions * d, s.Positions * d);
            TensorPrimitives.Add(Grad(_class), image[..d], Grad(_class));
            TensorPrimitives.Add(Grad(_positions), image, Grad(_positions));
            TrainingGemm.MatMulTransA(image[d..], a.Patches.AsSpan(b * s.Patches * s.PatchValues, s.Patches * s.PatchValues), dPatch, d, s.Patches, s.PatchValues, accumulate: true);
        }
    }

    /// <summary>dW += dyᵀ·x and db += Σ dy when trainable; dx (+)= dy·W unless <paramref name="dx"/> is empty.</summary>
    private void LinearBackward(int weight, int bias, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, int rows, bool accumulateInput)
    {
        var t = Parameters.Tensors[weight];
        int outputs = t.Shape[0], inputs = t.Length / outputs;
        dy = dy[..(rows * outputs)];
        if (Parameters.IsTrainable(weight))
        {
            TrainingGemm.MatMulTransA(dy, x[..(rows * inputs)], Parameters.Grad(weight), outputs, rows, inputs, accumulate: true);
            VisionOps.BiasBackward(dy, Parameters.Grad(bias));
        }
        if (!dx.IsEmpty) TrainingGemm.MatMul(dy, W(weight), dx, rows, outputs, inputs, accumulateInput);
    }

    private float[] _frozenScratch = [];

    /// <summary>The gradient of a norm weight, or a throw-away buffer when it is frozen.</summary>
    private Span<float> Grad(int index)
    {
        if (Parameters.IsTrainable(index)) return Parameters.Grad(index);
        int length = Parameters.Tensors[index].Length;
        if (_frozenScratch.Length < length) _frozenScratch = new float[length];
        var scratch = _frozenScratch.AsSpan(0, length);
        scratch.Clear();
        return scratch;
    }
}
