using System.Numerics.Tensors;
using TruthProbe.Common;
using TruthProbe.Model;

namespace TruthProbe.Training;

/// <summary>
/// A batch of token sequences: tokens, next-token targets and a per-position loss weight (0 on prompt tokens and
/// padding; so the loss can sit on answers only). Without <paramref name="Starts"/>, all padded to one length and
/// flattened [Batch, SeqLen]; with it, packed: sequence b is rows [Starts[b], Starts[b + 1]) (Batch + 1 entries), no
/// padding, and SeqLen is the longest. A sequence attends only to itself, so both layouts give the same loss.
/// </summary>
internal sealed record TrainingBatch(int Batch, int SeqLen, int[] Tokens, int[] Targets, float[] Weights, int[]? Starts = null)
{
    /// <summary>Positions the model runs: Batch·SeqLen padded, the sum of the lengths packed.</summary>
    public int Rows => Starts?[^1] ?? Batch * SeqLen;

    public int Start(int sequence) => Starts?[sequence] ?? sequence * SeqLen;

    public int Length(int sequence) => Starts == null ? SeqLen : Starts[sequence + 1] - Starts[sequence];
}

/// <summary>LLaVA's splice: the batch rows (flattened [B·T] positions) whose input embedding is replaced by a row of <c>Values</c> [rows, d_model].</summary>
internal sealed record EmbeddingSplice(int[] Rows, float[] Values);

/// <summary>
/// The Llama-style decoder of the engine (token embedding, RMSNorm, RoPE half-split, causal GQA attention,
/// SwiGLU MLP, tied or untied head) with a backward pass, in fp32 on batches [B, T]. Optional LoRA adapters
/// on q/k/v/o: y = x·Wᵀ + (alpha/r)·(x·Aᵀ)·Bᵀ. Every activation the backward needs is kept in buffers sized
/// once for the largest batch, so a training step allocates nothing.
/// </summary>
internal sealed class TrainableLlama
{
    public ModelConfig Config { get; }
    public ParameterSet Parameters { get; }
    public int LoraRank { get; private set; }
    public float LoraScale { get; private set; }

    private readonly float[] _cos, _sin;
    private readonly int _embed, _finalNorm, _head;
    private readonly LayerParams[] _layers;
    private Activations? _act;

    private sealed class Linear(int weight, int inputs, int outputs)
    {
        public readonly int Weight = weight, In = inputs, Out = outputs;
        public int LoraA = -1, LoraB = -1;
        public float[] Xa = [];
    }

    private sealed record LayerParams(int AttnNorm, int MlpNorm, Linear Q, Linear K, Linear V, Linear O, Linear Gate, Linear Up, Linear Down)
    {
        public IEnumerable<Linear> Attention => [Q, K, V, O];
    }

    /// <summary>Buffers for up to <paramref name="rows"/> = B·T positions, any T up to max_position_embeddings.</summary>
    private sealed class Activations(ModelConfig c, int rows)
    {
        public readonly int Rows = rows;
        public readonly float[][] ResidPre = Make(c.Layers, rows * c.DModel), AttnIn = Make(c.Layers, rows * c.DModel), AttnInvRms = Make(c.Layers, rows);
        public readonly float[][] Q = Make(c.Layers, rows * c.QDim), K = Make(c.Layers, rows * c.KvDim), V = Make(c.Layers, rows * c.KvDim);
        public readonly float[][] Z = Make(c.Layers, rows * c.QDim);
        /// <summary>Attention weights, sized per batch shape (<see cref="Ops.AttentionProbsLength"/>) by <see cref="Buffers"/>.</summary>
        public float[][] Probs = [];
        public readonly float[][] ResidMid = Make(c.Layers, rows * c.DModel), MlpIn = Make(c.Layers, rows * c.DModel), MlpInvRms = Make(c.Layers, rows);
        public readonly float[][] GateOut = Make(c.Layers, rows * c.Ffn), UpOut = Make(c.Layers, rows * c.Ffn), Swish = Make(c.Layers, rows * c.Ffn);
        public readonly float[] Final = new float[rows * c.DModel], FinalIn = new float[rows * c.DModel], FinalInvRms = new float[rows];
        public readonly float[] Logits = new float[rows * c.Vocab], DLogits = new float[rows * c.Vocab];
        // Backward scratch.
        public readonly float[] Dx = new float[rows * c.DModel], DNorm = new float[rows * c.DModel];
        public readonly float[] DQ = new float[rows * c.QDim], DK = new float[rows * c.KvDim], DV = new float[rows * c.KvDim], DZ = new float[rows * c.QDim];
        public readonly float[] DGate = new float[rows * c.Ffn], DUp = new float[rows * c.Ffn], DSwish = new float[rows * c.Ffn];
        public TrainingBatch? Last;
        public EmbeddingSplice? Splice;

        public static float[][] Make(int count, int length) => Enumerable.Range(0, count).Select(_ => new float[length]).ToArray();
    }

    public TrainableLlama(ModelConfig config, ParameterSet? parameters = null)
    {
        config.Validate("model config");
        Config = config;
        Parameters = parameters ?? new ParameterSet();
        bool fresh = parameters == null;
        // Names and shapes from the one table of decoder tensors; the order below (norms before projections) is the
        // parameter layout, which the seeded initialisation walks, so it stays as it is.
        int Param(DecoderTensor kind, int layer = 0)
        {
            var tensor = new CheckpointTensor(kind, layer);
            string name = tensor.Name(TensorNaming.HuggingFace);
            return fresh ? Parameters.Add(name, Array.ConvertAll(tensor.Shape(config), d => checked((int)d))) : Parameters.IndexOf(name);
        }
        Linear Lin(DecoderTensor kind, int layer)
        {
            long[] shape = new CheckpointTensor(kind, layer).Shape(config);
            return new(Param(kind, layer), (int)shape[1], (int)shape[0]);
        }

        _embed = Param(DecoderTensor.Embedding);
        _layers = new LayerParams[config.Layers];
        for (int l = 0; l < config.Layers; l++)
            _layers[l] = new LayerParams(
                Param(DecoderTensor.InputNorm, l), Param(DecoderTensor.PostAttentionNorm, l),
                Lin(DecoderTensor.Q, l), Lin(DecoderTensor.K, l), Lin(DecoderTensor.V, l), Lin(DecoderTensor.O, l),
                Lin(DecoderTensor.Gate, l), Lin(DecoderTensor.Up, l), Lin(DecoderTensor.Down, l));
        _finalNorm = Param(DecoderTensor.FinalNorm);
        _head = config.TiedEmbeddings ? _embed : Param(DecoderTensor.Classifier);
        (_cos, _sin) = RopeTables.Create(config.MaxContext, config.HeadDim, config.RopeTheta);
    }

    /// <summary>Normal(0, 0.02) weights, output projections scaled by 1/sqrt(2·layers) (GPT-2), norms at 1.</summary>
    public void Initialize(int seed)
    {
        var rng = new SeededSystemRandom(seed);
        foreach (var (t, i) in Parameters.Tensors.Select((t, i) => (t, i)))
        {
            var v = Parameters.Value(i);
            if (t.Shape.Length == 1) { v.Fill(1f); continue; }
            double std = 0.02 * (t.Name.EndsWith("o_proj.weight") || t.Name.EndsWith("down_proj.weight") ? 1 / Math.Sqrt(2 * Config.Layers) : 1);
            for (int j = 0; j < v.Length; j++) v[j] = (float)(std * Gaussian(rng));
        }
    }

    internal static double Gaussian(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    // ---- LoRA ----

    /// <summary>
    /// Adds rank-r adapters to q/k/v/o (A ~ N(0, 1/in), B = 0, so the model is unchanged at step 0) and
    /// freezes every other parameter.
    /// </summary>
    public void AddLora(int rank, float alpha, int seed)
    {
        if (LoraRank != 0) throw new InvalidOperationException("LoRA adapters are already attached");
        if (rank < 1) throw new ArgumentOutOfRangeException(nameof(rank));
        LoraRank = rank;
        LoraScale = alpha / rank;
        Parameters.SetTrainable(_ => false);
        var rng = new SeededSystemRandom(seed);
        foreach (var lin in _layers.SelectMany(l => l.Attention))
        {
            string baseName = Parameters.Tensors[lin.Weight].Name.Replace(".weight", "");
            lin.LoraA = Parameters.Add(baseName + ".lora_A.weight", [rank, lin.In]);
            lin.LoraB = Parameters.Add(baseName + ".lora_B.weight", [lin.Out, rank]);
            var a = Parameters.Value(lin.LoraA);
            double std = 1 / Math.Sqrt(lin.In);
            for (int j = 0; j < a.Length; j++) a[j] = (float)(std * Gaussian(rng));
        }
        _act = null;
    }

    /// <summary>Folds every adapter into its weight, W += scale·B·A, and detaches the adapters.</summary>
    public TrainableLlama MergeLora()
    {
        if (LoraRank == 0) return this;
        var merged = new ParameterSet();
        foreach (var t in Parameters.Tensors.Where(t => !t.Name.Contains(".lora_")))
        {
            int i = merged.Add(t.Name, t.Shape);
            Parameters.Value(t.Name).CopyTo(merged.Value(i));
        }
        foreach (var lin in _layers.SelectMany(l => l.Attention))
        {
            var delta = new float[lin.Out * lin.In];
            TrainingGemm.MatMul(Parameters.Value(lin.LoraB), Parameters.Value(lin.LoraA), delta, lin.Out, LoraRank, lin.In);
            var w = merged.Value(Parameters.Tensors[lin.Weight].Name);
            TensorPrimitives.MultiplyAdd(delta, LoraScale, w, w);
        }
        return new TrainableLlama(Config, merged);
    }

    // ---- forward ----

    /// <summary>Runs the batch, keeps what the backward needs, returns the weighted mean cross-entropy.</summary>
    /// <param name="splice">rows whose embedding is replaced (image features), or null.</param>
    public double Forward(TrainingBatch batch, out int correct, out int counted, EmbeddingSplice? splice = null)
    {
        var c = Config;
        if (batch.SeqLen > c.MaxContext) throw new ArgumentException($"sequence of {batch.SeqLen} tokens exceeds max_position_embeddings {c.MaxContext}");
        var a = Buffers(batch);
        int n = batch.Rows;
        var P = Parameters;
        // The residual stream: layer l reads ResidPre[l] and writes the next layer's ResidPre (FinalIn after the
        // last), so each is kept for the backward without a copy; the o and down projections add their branch to it.
        int width = n * c.DModel;
        Ops.EmbeddingForward(P.Value(_embed), batch.Tokens, a.ResidPre[0], c.DModel);
        for (int i = 0; i < (splice?.Rows.Length ?? 0); i++)
            splice!.Values.AsSpan(i * c.DModel, c.DModel).CopyTo(a.ResidPre[0].AsSpan(splice.Rows[i] * c.DModel, c.DModel));
        a.Splice = splice;
        for (int l = 0; l < c.Layers; l++)
        {
            var L = _layers[l];
            var x = a.ResidPre[l].AsSpan(0, width);
            var mid = a.ResidMid[l].AsSpan(0, width);
            var next = (l + 1 < c.Layers ? a.ResidPre[l + 1] : a.FinalIn).AsSpan(0, width);
            Ops.RmsNormForward(x, P.Value(L.AttnNorm), a.AttnIn[l], a.AttnInvRms[l].AsSpan(0, n), c.DModel, c.RmsEps);
            LinearForward(L.Q, a.AttnIn[l], a.Q[l], n);
            LinearForward(L.K, a.AttnIn[l], a.K[l], n);
            LinearForward(L.V, a.AttnIn[l], a.V[l], n);
            Ops.Rope(a.Q[l].AsSpan(0, n * c.QDim), batch.SeqLen, c.Heads, c.HeadDim, _cos, _sin, starts: batch.Starts);
            Ops.Rope(a.K[l].AsSpan(0, n * c.KvDim), batch.SeqLen, c.KvHeads, c.HeadDim, _cos, _sin, starts: batch.Starts);
            Ops.AttentionForward(a.Q[l], a.K[l], a.V[l], a.Z[l], a.Probs[l], batch.Batch, batch.SeqLen, c.Heads, c.KvHeads, c.HeadDim, batch.Starts);
            LinearForward(L.O, a.Z[l], mid, n, residual: x);
            Ops.RmsNormForward(mid, P.Value(L.MlpNorm), a.MlpIn[l], a.MlpInvRms[l].AsSpan(0, n), c.DModel, c.RmsEps);
            LinearForward(L.Gate, a.MlpIn[l], a.GateOut[l], n);
            LinearForward(L.Up, a.MlpIn[l], a.UpOut[l], n);
            Ops.SwiGluForward(a.GateOut[l].AsSpan(0, n * c.Ffn), a.UpOut[l], a.Swish[l].AsSpan(0, n * c.Ffn));
            LinearForward(L.Down, a.Swish[l], next, n, residual: mid);
        }
        Ops.RmsNormForward(a.FinalIn, P.Value(_finalNorm), a.Final, a.FinalInvRms.AsSpan(0, n), c.DModel, c.RmsEps);
        TrainingGemm.MatMulTransB(a.Final, P.Value(_head), a.Logits, n, c.DModel, c.Vocab);
        a.Last = batch;
        counted = batch.Weights.Count(w => w != 0);
        return Ops.CrossEntropy(a.Logits.AsSpan(0, n * c.Vocab), batch.Targets, batch.Weights, a.DLogits, c.Vocab, out correct);
    }

    /// <summary>Logits [rows, vocab] of the last forward, one row per position of its batch (<see cref="TrainingBatch.Rows"/>).</summary>
    public ReadOnlySpan<float> Logits => _act!.Logits.AsSpan(0, _act.Last!.Rows * Config.Vocab);

    /// <summary>output = x·Wᵀ (+ LoRA) (+ residual: added last, after the adapter's term).</summary>
    private void LinearForward(Linear lin, float[] input, Span<float> output, int rows, ReadOnlySpan<float> residual = default)
    {
        if (lin.LoraA < 0)
        {
            TrainingGemm.MatMulTransB(input, Parameters.Value(lin.Weight), output, rows, lin.In, lin.Out, addend: residual);
            return;
        }
        TrainingGemm.MatMulTransB(input, Parameters.Value(lin.Weight), output, rows, lin.In, lin.Out);
        var xa = lin.Xa.AsSpan(0, rows * LoraRank);
        TrainingGemm.MatMulTransB(input, Parameters.Value(lin.LoraA), xa, rows, lin.In, LoraRank);
        TensorPrimitives.Multiply(xa, LoraScale, xa);
        TrainingGemm.MatMulTransB(xa, Parameters.Value(lin.LoraB), output, rows, LoraRank, lin.Out, accumulate: true);
        if (!residual.IsEmpty) TensorPrimitives.Add(output, residual, output);
    }

    // ---- backward ----

    /// <summary>
    /// Adds the gradient of the last forward's loss to <see cref="ParameterSet.Grads"/> (trainable tensors only); with a
    /// splice, writes the gradient of its rows into <paramref name="dSplice"/> [rows, d_model] (none reaches the table).
    /// </summary>
    public void Backward(Span<float> dSplice = default)
    {
        var c = Config;
        var a = _act ?? throw new InvalidOperationException("Backward before Forward");
        var batch = a.Last ?? throw new InvalidOperationException("Backward before Forward");
        int n = batch.Rows;
        var P = Parameters;
        var dx = a.Dx.AsSpan(0, n * c.DModel);
        var dNorm = a.DNorm.AsSpan(0, n * c.DModel);

        TrainingGemm.MatMul(a.DLogits, P.Value(_head), dNorm, n, c.Vocab, c.DModel);
        if (P.IsTrainable(_head)) TrainingGemm.MatMulTransA(a.DLogits, a.Final, P.Grad(_head), c.Vocab, n, c.DModel, accumulate: true);
        dx.Clear();
        Ops.RmsNormBackward(dNorm, a.FinalIn, P.Value(_finalNorm), a.FinalInvRms.AsSpan(0, n), dx, GradOrScratch(_finalNorm), c.DModel);

        for (int l = c.Layers - 1; l >= 0; l--)
        {
            var L = _layers[l];
            // MLP branch: x_out = resid_mid + down(swiglu(gate(norm(resid_mid)), up(...)))
            LinearBackward(L.Down, dx, a.Swish[l], a.DSwish.AsSpan(0, n * c.Ffn), n, accumulateInput: false);
            Ops.SwiGluBackward(a.DSwish.AsSpan(0, n * c.Ffn), a.GateOut[l], a.UpOut[l], a.DGate, a.DUp);
            LinearBackward(L.Gate, a.DGate, a.MlpIn[l], dNorm, n, accumulateInput: false);
            LinearBackward(L.Up, a.DUp, a.MlpIn[l], dNorm, n, accumulateInput: true);
            Ops.RmsNormBackward(dNorm, a.ResidMid[l], P.Value(L.MlpNorm), a.MlpInvRms[l].AsSpan(0, n), dx, GradOrScratch(L.MlpNorm), c.DModel);

            // Attention branch: resid_mid = resid_pre + o(attn(rope(q), rope(k), v))
            LinearBackward(L.O, dx, a.Z[l], a.DZ.AsSpan(0, n * c.QDim), n, accumulateInput: false);
            Ops.AttentionBackward(a.DZ, a.Q[l], a.K[l], a.V[l], a.Probs[l], a.DQ, a.DK, a.DV, batch.Batch, batch.SeqLen, c.Heads, c.KvHeads, c.HeadDim, batch.Starts);
            Ops.Rope(a.DQ.AsSpan(0, n * c.QDim), batch.SeqLen, c.Heads, c.HeadDim, _cos, _sin, inverse: true, batch.Starts);
            Ops.Rope(a.DK.AsSpan(0, n * c.KvDim), batch.SeqLen, c.KvHeads, c.HeadDim, _cos, _sin, inverse: true, batch.Starts);
            LinearBackward(L.Q, a.DQ, a.AttnIn[l], dNorm, n, accumulateInput: false);
            LinearBackward(L.K, a.DK, a.AttnIn[l], dNorm, n, accumulateInput: true);
            LinearBackward(L.V, a.DV, a.AttnIn[l], dNorm, n, accumulateInput: true);
            Ops.RmsNormBackward(dNorm, a.ResidPre[l], P.Value(L.AttnNorm), a.AttnInvRms[l].AsSpan(0, n), dx, GradOrScratch(L.AttnNorm), c.DModel);
        }
        for (int i = 0; i < (a.Splice?.Rows.Length ?? 0); i++)
        {
            var row = dx.Slice(a.Splice!.Rows[i] * c.DModel, c.DModel);
            if (!dSplice.IsEmpty) row.CopyTo(dSplice.Slice(i * c.DModel, c.DModel));
            row.Clear();
        }
        if (P.IsTrainable(_embed)) Ops.EmbeddingBackward(dx, batch.Tokens, P.Grad(_embed), c.DModel);
    }

    private float[] _frozenGradScratch = [];

    /// <summary>The gradient of a norm weight, or a throw-away buffer when the weight is frozen.</summary>
    private Span<float> GradOrScratch(int index)
    {
        if (Parameters.IsTrainable(index)) return Parameters.Grad(index);
        if (_frozenGradScratch.Length < Config.DModel) _frozenGradScratch = new float[Config.DModel];
        return _frozenGradScratch.AsSpan(0, Config.DModel);
    }

    /// <summary>y = x·Wᵀ (+ LoRA): dW += dyᵀ·x, dx (+)= dy·W, and for adapters dB += dyᵀ·xa, dA += s·(dy·B)ᵀ·x, dx += s·(dy·B)·A.</summary>
    private void LinearBackward(Linear lin, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, int rows, bool accumulateInput)
    {
        var P = Parameters;
        dy = dy[..(rows * lin.Out)];
        x = x[..(rows * lin.In)];
        if (P.IsTrainable(lin.Weight)) TrainingGemm.MatMulTransA(dy, x, P.Grad(lin.Weight), lin.Out, rows, lin.In, accumulate: true);
        TrainingGemm.MatMul(dy, P.Value(lin.Weight), dx, rows, lin.Out, lin.In, accumulateInput);
        if (lin.LoraA < 0) return;
        var xa = lin.Xa.AsSpan(0, rows * LoraRank);
        TrainingGemm.MatMulTransA(dy, xa, P.Grad(lin.LoraB), lin.Out, rows, LoraRank, accumulate: true);
        var dxa = _loraScratch.AsSpan(0, rows * LoraRank);
        TrainingGemm.MatMul(dy, P.Value(lin.LoraB), dxa, rows, lin.Out, LoraRank);
        TensorPrimitives.Multiply(dxa, LoraScale, dxa);
        TrainingGemm.MatMulTransA(dxa, x, P.Grad(lin.LoraA), LoraRank, rows, lin.In, accumulate: true);
        TrainingGemm.MatMul(dxa, P.Value(lin.LoraA), dx, rows, LoraRank, lin.In, accumulate: true);
    }

    private float[] _loraScratch = [];

    private Activations Buffers(TrainingBatch batch)
    {
        // Packed batches vary in size from step to step: the buffers grow by half again when outgrown, not to each new
        // largest batch. Every regrowth is fresh memory the kernel zeroes on first touch (a 60-step wide run spent 12%
        // of its time there, growing to each new maximum).
        int rows = batch.Rows;
        if (_act == null || _act.Rows < rows)
        {
            rows = Math.Max(rows, (_act?.Rows ?? 0) * 3 / 2);
            _act = new Activations(Config, rows);
            foreach (var lin in _layers.SelectMany(l => l.Attention).Where(l => l.LoraA >= 0)) lin.Xa = new float[rows * LoraRank];
            _loraScratch = new float[rows * Math.Max(1, LoraRank)];
        }
        long probs = Ops.AttentionProbsLength(batch.Batch, batch.SeqLen, Config.Heads, batch.Starts);
        int held = _act.Probs.Length == 0 ? 0 : _act.Probs[0].Length;
        if (held < probs) _act.Probs = Activations.Make(Config.Layers, checked((int)Math.Max(probs, held * 3L / 2)));
        return _act;
    }
}
