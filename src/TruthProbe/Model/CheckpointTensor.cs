using static TruthProbe.Model.DecoderTensor;

namespace TruthProbe.Model;

/// <summary>The tensors of a decoder checkpoint, named after the <see cref="ModelWeights"/> fields they fill.</summary>
public enum DecoderTensor
{
    Embedding, InputNorm, Q, K, V, O, QBias, KBias, VBias, OBias, PostAttentionNorm, Gate, Up, Down, FinalNorm, Classifier,
}

/// <summary>How a checkpoint format names its tensors.</summary>
public enum TensorNaming { HuggingFace, Gguf }

/// <summary>
/// Where a decoder's Hugging Face tensors sit inside a larger checkpoint: <see cref="Body"/> replaces the leading
/// <c>model.</c> of the body's names, <see cref="Head"/> goes before <c>lm_head.weight</c> (LLaVA stores its language
/// model as <c>language_model.model.*</c> + <c>language_model.lm_head.*</c>, or <c>model.language_model.*</c> + <c>lm_head.*</c>).
/// </summary>
public readonly record struct HfPrefix(string Body, string Head)
{
    public static readonly HfPrefix Decoder = new("model.", "");
}

/// <summary>
/// One tensor of a decoder checkpoint (<see cref="Layer"/> means nothing for the embedding, final norm and
/// classifier): its name in each format, its shape and presence for a config, and whether it takes the RoPE row
/// reorder. The Hugging Face and GGUF readers and writers and <see cref="RandomModel"/> all go through here, so
/// which tensor feeds which weight is written down once.
/// </summary>
public readonly record struct CheckpointTensor(DecoderTensor Kind, int Layer = 0)
{
    /// <summary>A layer's tensors in the order both formats store them.</summary>
    private static readonly DecoderTensor[] LayerFileOrder = [InputNorm, Q, K, V, O, QBias, KBias, VBias, OBias, PostAttentionNorm, Gate, Up, Down];

    /// <summary>The tensors a checkpoint of <paramref name="c"/> holds, in file order.</summary>
    public static IEnumerable<CheckpointTensor> All(ModelConfig c)
    {
        yield return new(Embedding);
        for (int l = 0; l < c.Layers; l++)
            foreach (var kind in LayerFileOrder)
                if (Exists(kind, c)) yield return new(kind, l);
        yield return new(FinalNorm);
        if (Exists(Classifier, c)) yield return new(Classifier);
    }

    /// <summary>Builds a model's weights from one checkpoint's readers, asking for the tensors in file order. A tied classifier is the embedding itself.</summary>
    public static ModelWeights Read(ModelConfig c, Func<CheckpointTensor, WeightMatrix> matrix, Func<CheckpointTensor, float[]> vector)
    {
        var embedding = matrix(new(Embedding));
        var layers = new LayerWeights[c.Layers];
        for (int l = 0; l < c.Layers; l++)
        {
            WeightMatrix Matrix(DecoderTensor kind) => matrix(new(kind, l));
            float[] Vector(DecoderTensor kind) => vector(new(kind, l));
            float[]? Bias(DecoderTensor kind) => Exists(kind, c) ? Vector(kind) : null;
            layers[l] = new LayerWeights
            {
                InputNorm = Vector(InputNorm),
                Q = Matrix(Q), K = Matrix(K), V = Matrix(V), O = Matrix(O),
                QBias = Bias(QBias), KBias = Bias(KBias), VBias = Bias(VBias), OBias = Bias(OBias),
                PostAttentionNorm = Vector(PostAttentionNorm),
                Gate = Matrix(Gate), Up = Matrix(Up), Down = Matrix(Down),
            };
        }
        return new ModelWeights
        {
            TokenEmbedding = embedding,
            Layers = layers,
            FinalNorm = vector(new(FinalNorm)),
            Classifier = Exists(Classifier, c) ? matrix(new(Classifier)) : embedding,
        };
    }

    private static bool Exists(DecoderTensor kind, ModelConfig c) => kind switch
    {
        QBias or KBias or VBias => c.QkvBias,
        OBias => c.OProjBias,
        Classifier => !c.TiedEmbeddings,
        _ => true,
    };

    public string Name(TensorNaming naming, HfPrefix? prefix = null)
    {
        if (naming == TensorNaming.HuggingFace && prefix is { } p && p != HfPrefix.Decoder)
        {
            string plain = Name(naming);
            return plain.StartsWith(HfPrefix.Decoder.Body, StringComparison.Ordinal) ? p.Body + plain[HfPrefix.Decoder.Body.Length..] : p.Head + plain;
        }
        var (huggingFace, gguf) = Kind switch
        {
            Embedding => ("model.embed_tokens.weight", "token_embd.weight"),
            FinalNorm => ("model.norm.weight", "output_norm.weight"),
            Classifier => ("lm_head.weight", "output.weight"),
            InputNorm => ("input_layernorm.weight", "attn_norm.weight"),
            Q => ("self_attn.q_proj.weight", "attn_q.weight"),
            K => ("self_attn.k_proj.weight", "attn_k.weight"),
            V => ("self_attn.v_proj.weight", "attn_v.weight"),
            O => ("self_attn.o_proj.weight", "attn_output.weight"),
            QBias => ("self_attn.q_proj.bias", "attn_q.bias"),
            KBias => ("self_attn.k_proj.bias", "attn_k.bias"),
            VBias => ("self_attn.v_proj.bias", "attn_v.bias"),
            OBias => ("self_attn.o_proj.bias", "attn_output.bias"),
            PostAttentionNorm => ("post_attention_layernorm.weight", "ffn_norm.weight"),
            Gate => ("mlp.gate_proj.weight", "ffn_gate.weight"),
            Up => ("mlp.up_proj.weight", "ffn_up.weight"),
            Down => ("mlp.down_proj.weight", "ffn_down.weight"),
            _ => throw new ArgumentOutOfRangeException(nameof(Kind), Kind, null),
        };
        if (Kind is Embedding or FinalNorm or Classifier) return naming == TensorNaming.HuggingFace ? huggingFace : gguf;
        return naming == TensorNaming.HuggingFace ? $"model.layers.{Layer}.{huggingFace}" : $"blk.{Layer}.{gguf}";
    }

    /// <summary>Row-major, outermost first: [rows, cols] for a matrix (y = W x), [n] for a norm or bias.</summary>
    public long[] Shape(ModelConfig c) => Kind switch
    {
        Embedding or Classifier => [c.Vocab, c.DModel],
        Q => [c.QDim, c.DModel],
        K or V => [c.KvDim, c.DModel],
        O => [c.DModel, c.QDim],
        Gate or Up => [c.Ffn, c.DModel],
        Down => [c.DModel, c.Ffn],
        QBias => [c.QDim],
        KBias or VBias => [c.KvDim],
        InputNorm or PostAttentionNorm or FinalNorm or OBias => [c.DModel],
        _ => throw new ArgumentOutOfRangeException(nameof(Kind), Kind, null),
    };

    public bool IsMatrix => Kind is Embedding or Q or K or V or O or Gate or Up or Down or Classifier;
    public bool IsNorm => Kind is InputNorm or PostAttentionNorm or FinalNorm;

    /// <summary>
    /// The heads whose rows a format storing interleaved RoPE pairs keeps in the other order (q, k and their
    /// biases; see <see cref="RopeLayout"/>); 0 for every other tensor.
    /// </summary>
    public int RopeHeads(ModelConfig c) => Kind switch
    {
        Q or QBias => c.Heads,
        K or KBias => c.KvHeads,
        _ => 0,
    };

    /// <summary>This tensor's data in <paramref name="w"/>: a matrix, or else a norm or bias (one the config promises must be there).</summary>
    public (WeightMatrix? Matrix, float[]? Vector) In(ModelWeights w)
    {
        (WeightMatrix? Matrix, float[]? Vector) data = Kind switch
        {
            Embedding => (w.TokenEmbedding, null),
            FinalNorm => (null, w.FinalNorm),
            Classifier => (w.Classifier, null),
            InputNorm => (null, w.Layers[Layer].InputNorm),
            Q => (w.Layers[Layer].Q, null),
            K => (w.Layers[Layer].K, null),
            V => (w.Layers[Layer].V, null),
            O => (w.Layers[Layer].O, null),
            QBias => (null, w.Layers[Layer].QBias),
            KBias => (null, w.Layers[Layer].KBias),
            VBias => (null, w.Layers[Layer].VBias),
            OBias => (null, w.Layers[Layer].OBias),
            PostAttentionNorm => (null, w.Layers[Layer].PostAttentionNorm),
            Gate => (w.Layers[Layer].Gate, null),
            Up => (w.Layers[Layer].Up, null),
            Down => (w.Layers[Layer].Down, null),
            _ => throw new ArgumentOutOfRangeException(nameof(Kind), Kind, null),
        };
        return data is (null, null) ? throw new InvalidOperationException($"layer {Layer} has no {Kind} although its config says it has one") : data;
    }
}
