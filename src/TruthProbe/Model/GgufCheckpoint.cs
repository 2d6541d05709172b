using System.Runtime.InteropServices;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Tokenizers;

namespace TruthProbe.Model;

/// <summary>
/// GGUF models (architectures <c>llama</c> and <c>qwen2</c>), both ways. Loading maps the file and keeps
/// F32/F16/BF16/Q8_0 matrices where they lie, in their type; <c>llama</c> q/k rows are stored for interleaved
/// RoPE, so those two are reordered into the engine's half-split layout (a copy read from the file, as for
/// llama2.c). Writing
/// streams each tensor from the loaded weights, converting rows to the chosen type (copying them when the type
/// is already right) and reordering llama q/k rows on the way out.
/// </summary>
public static unsafe class GgufCheckpoint
{
    public static (ModelConfig Config, ModelWeights Weights, TokenizerVocabulary? Vocabulary, GgufFile File) Load(string path)
    {
        var file = GgufFile.Open(path);
        try
        {
            var m = file.Metadata;
            string arch = GgufArchitectures.CheckArchitecture(m.String(GgufKeys.Architecture), path);
            var vocabulary = GgufTokenizer.Read(m);
            var config = ReadConfig(file, arch, vocabulary);
            return (config, ReadWeights(file, config), vocabulary, file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static ModelConfig ReadConfig(GgufFile file, string arch, TokenizerVocabulary? vocabulary)
    {
        var m = file.Metadata;
        int IntOr(string key, int? fallback)
        {
            long v = m.IntegerOrNull(key) ?? fallback ?? m.Integer(key);
            return v is >= 0 and <= int.MaxValue ? (int)v : throw new UserError($"{file.Path}: GGUF metadata key '{key}' is {v}, expected a count from 0 to {int.MaxValue}");
        }
        int Int(string key) => IntOr(key, null);
        int d = Int(GgufKeys.EmbeddingLength(arch)), heads = Int(GgufKeys.HeadCount(arch));
        int headDim = IntOr(GgufKeys.KeyLength(arch), heads > 0 ? d / heads : 0);
        if (m.IntegerOrNull(GgufKeys.ValueLength(arch)) is long valueLength && valueLength != headDim)
            throw new UserError($"{file.Path}: {GgufKeys.ValueLength(arch)} ({valueLength}) differs from the key length ({headDim}); not supported");
        if (m.IntegerOrNull(GgufKeys.RopeDimensionCount(arch)) is long ropeDims && ropeDims != headDim)
            throw new UserError($"{file.Path}: {GgufKeys.RopeDimensionCount(arch)} is {ropeDims} but heads are {headDim} wide; partial rotary embeddings are not supported");

        float linear = 1f;
        string scaling = m.StringOrNull(GgufKeys.RopeScalingType(arch)) ?? "none";
        if (scaling == "linear") linear = (float)m.Float(GgufKeys.RopeScalingFactor(arch));
        else if (scaling != "none")
            throw new UserError($"{file.Path}: {GgufKeys.RopeScalingType(arch)} is '{scaling}'; supported: none, linear");
        if (file.Contains("rope_freqs.weight"))
            throw new UserError($"{file.Path}: tensor 'rope_freqs.weight' (per-frequency RoPE factors, Llama 3.1 style) is not supported");

        // As llama.cpp does, ties and biases follow from which tensors exist (layer 0's for the biases), the vocabulary size from the embedding.
        bool Holds(DecoderTensor kind) => file.Contains(new CheckpointTensor(kind).Name(TensorNaming.Gguf));
        string embeddingName = new CheckpointTensor(DecoderTensor.Embedding).Name(TensorNaming.Gguf);
        var embedding = file.Get(embeddingName);
        if (embedding.Shape.Length != 2 || embedding.Shape[1] != d)
            throw new UserError($"{file.Path}: tensor '{embeddingName}' has shape [{string.Join(", ", embedding.Shape)}], expected [vocab, {d}]");
        int vocab = checked((int)embedding.Shape[0]);
        if (vocabulary != null && vocabulary.Tokens.Length != vocab)
            throw new UserError($"{file.Path}: {GgufKeys.Tokens} has {vocabulary.Tokens.Length} tokens but '{embeddingName}' has {vocab} rows");

        var config = new ModelConfig
        {
            Architecture = arch,
            Layers = Int(GgufKeys.BlockCount(arch)),
            DModel = d,
            Heads = heads,
            KvHeads = IntOr(GgufKeys.HeadCountKv(arch), heads),
            HeadDim = headDim,
            Ffn = Int(GgufKeys.FeedForwardLength(arch)),
            Vocab = vocab,
            MaxContext = Int(GgufKeys.ContextLength(arch)),
            RopeTheta = (float)(m.FloatOrNull(GgufKeys.RopeFreqBase(arch)) ?? 10000.0),
            RopeLinearFactor = linear,
            RmsEps = (float)m.Float(GgufKeys.RmsNormEpsilon(arch)),
            TiedEmbeddings = !Holds(DecoderTensor.Classifier),
            QkvBias = Holds(DecoderTensor.QBias),
            OProjBias = Holds(DecoderTensor.OBias),
            BosId = vocabulary?.BosId ?? (int?)m.IntegerOrNull(GgufKeys.BosId),
            EosIds = (vocabulary?.EosId ?? (int?)m.IntegerOrNull(GgufKeys.EosId)) is int eos ? [eos] : [],
        };
        config.Validate(file.Path);
        return config;
    }

    private static ModelWeights ReadWeights(GgufFile file, ModelConfig c)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        bool interleaved = GgufArchitectures.PermutesQK(c.Architecture);

        GgufTensorInfo Tensor(CheckpointTensor tensor)
        {
            string name = tensor.Name(TensorNaming.Gguf);
            long[] shape = tensor.Shape(c);
            var t = file.Get(name);
            if (!t.Shape.SequenceEqual(shape))
                throw new UserError($"{file.Path}: tensor '{name}' has shape [{string.Join(", ", t.Shape)}], expected [{string.Join(", ", shape)}] from the metadata");
            used.Add(name);
            return t;
        }
        int RopeHeads(CheckpointTensor tensor) => interleaved ? tensor.RopeHeads(c) : 0;
        WeightMatrix Matrix(CheckpointTensor tensor)
        {
            var t = Tensor(tensor);
            int ropeHeads = RopeHeads(tensor);
            return ropeHeads == 0
                ? new WeightMatrix((int)t.Shape[0], (int)t.Shape[1], EngineDType(t.Type), file.Pointer(t), file)
                : HalfSplitCopy.Read((int)t.Shape[0], (int)t.Shape[1], EngineDType(t.Type), ropeHeads, c.HeadDim, (into, at) => file.ReadBytes(t, at, into));
        }
        float[] Vector(CheckpointTensor tensor)
        {
            float[] v = file.ReadSingles(Tensor(tensor));
            int ropeHeads = RopeHeads(tensor);
            if (ropeHeads == 0) return v;
            var reordered = new float[v.Length];
            RopeLayout.InterleavedToHalfSplit(MemoryMarshal.AsBytes(v.AsSpan()), MemoryMarshal.AsBytes(reordered.AsSpan()), ropeHeads, c.HeadDim, sizeof(float));
            return reordered;
        }

        var weights = CheckpointTensor.Read(c, Matrix, Vector);
        var unused = file.Tensors.Select(t => t.Name).Where(n => !used.Contains(n)).ToList();
        if (unused.Count > 0)
            throw new UserError($"{file.Path}: tensor '{unused[0]}' is not part of a {c.Architecture} decoder with this metadata ({unused.Count} such tensor(s)); the file is not a model truthprobe can run");
        return weights;
    }

    /// <summary>
    /// Writes a model as GGUF: matrices as <paramref name="type"/> (F32, F16, BF16 or Q8_0), norms and biases as
    /// F32 (what llama.cpp's converter does), llama q/k rows (and biases) reordered for interleaved RoPE, the
    /// tokenizer when there is one.
    /// Mistral is written as <c>llama</c>, which llama.cpp runs without a sliding window: refused when the window
    /// is shorter than the context, as the two would then differ.
    /// </summary>
    public static void Write(string path, ModelConfig c, ModelWeights w, TokenizerVocabulary? vocabulary, GgufTensorType type, string name)
    {
        string arch = c.Architecture == "mistral" ? "llama" : c.Architecture;
        if (c.SlidingWindow is int window && window < c.MaxContext)
            throw new UserError($"{name}: sliding window {window} is shorter than the context {c.MaxContext}; GGUF 'llama' has no sliding window, so the converted model would compute something else");

        var m = new GgufMetadata(path);
        m[GgufKeys.Architecture] = GgufValue.Of(arch);
        m[GgufKeys.Name] = GgufValue.Of(name);
        // llama.cpp's llama_ftype: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q8_0 7, MOSTLY_BF16 32.
        m[GgufKeys.FileType] = GgufValue.Of(type switch { GgufTensorType.F32 => 0u, GgufTensorType.F16 => 1u, GgufTensorType.Q8_0 => 7u, _ => 32u });
        m[GgufKeys.ContextLength(arch)] = GgufValue.Of((uint)c.MaxContext);
        m[GgufKeys.EmbeddingLength(arch)] = GgufValue.Of((uint)c.DModel);
        m[GgufKeys.BlockCount(arch)] = GgufValue.Of((uint)c.Layers);
        m[GgufKeys.FeedForwardLength(arch)] = GgufValue.Of((uint)c.Ffn);
        m[GgufKeys.HeadCount(arch)] = GgufValue.Of((uint)c.Heads);
        m[GgufKeys.HeadCountKv(arch)] = GgufValue.Of((uint)c.KvHeads);
        if (c.HeadDim * c.Heads != c.DModel)
        {
            m[GgufKeys.KeyLength(arch)] = GgufValue.Of((uint)c.HeadDim);
            m[GgufKeys.ValueLength(arch)] = GgufValue.Of((uint)c.HeadDim);
        }
        m[GgufKeys.RmsNormEpsilon(arch)] = GgufValue.Of(c.RmsEps);
        m[GgufKeys.RopeFreqBase(arch)] = GgufValue.Of(c.RopeTheta);
        m[GgufKeys.RopeDimensionCount(arch)] = GgufValue.Of((uint)c.HeadDim);
        if (c.RopeLinearFactor != 1f)
        {
            m[GgufKeys.RopeScalingType(arch)] = GgufValue.Of("linear");
            m[GgufKeys.RopeScalingFactor(arch)] = GgufValue.Of(c.RopeLinearFactor);
        }
        m[GgufKeys.VocabSize(arch)] = GgufValue.Of((uint)c.Vocab);
        GgufTokenizer.Write(m, vocabulary, c.Vocab, c.BosId, c.EosIds.Count > 0 ? c.EosIds[0] : null);

        if (type == GgufTensorType.Q8_0 && (c.DModel % GgufTensorTypes.Q8_0BlockValues != 0 || c.Ffn % GgufTensorTypes.Q8_0BlockValues != 0 || c.QDim % GgufTensorTypes.Q8_0BlockValues != 0))
            throw new UserError($"{name}: Q8_0 needs rows in multiples of {GgufTensorTypes.Q8_0BlockValues} values, but d_model is {c.DModel}, ffn {c.Ffn}, heads x d_head {c.QDim}; choose f32, f16 or bf16");
        bool interleave = GgufArchitectures.PermutesQK(arch);
        var tensors = new List<GgufTensorToWrite>();
        void AddMatrix(string tensorName, WeightMatrix matrix, bool interleaveRows) =>
            tensors.Add(new GgufTensorToWrite(tensorName, type, [matrix.Rows, matrix.Cols], s =>
            {
                var row = new float[matrix.Cols];
                var blocks = new byte[type.RowBytes(matrix.Cols)];
                for (int r = 0; r < matrix.Rows; r++)
                {
                    int source = interleaveRows ? HalfSplitRowOf(r, c.HeadDim) : r;
                    if (matrix.DType == EngineDType(type)) s.Write(new ReadOnlySpan<byte>(matrix.Row(source), blocks.Length));
                    else if (type == GgufTensorType.Q8_0)
                    {
                        matrix.ReadRow(source, row);
                        GgufTensorTypes.QuantizeQ8_0(row, blocks);
                        s.Write(blocks);
                    }
                    else
                    {
                        matrix.ReadRow(source, row);
                        HfCheckpoint.WriteNarrowed(s, row, EngineDType(type));
                    }
                }
            }));
        void AddVector(string tensorName, float[] v, bool interleaveRows)
        {
            float[] data = interleaveRows ? Enumerable.Range(0, v.Length).Select(r => v[HalfSplitRowOf(r, c.HeadDim)]).ToArray() : v;
            tensors.Add(new GgufTensorToWrite(tensorName, GgufTensorType.F32, [v.Length], s => s.Write(MemoryMarshal.AsBytes(data.AsSpan()))));
        }

        foreach (var tensor in CheckpointTensor.All(c))
        {
            string tensorName = tensor.Name(TensorNaming.Gguf);
            bool interleaveRows = interleave && tensor.RopeHeads(c) > 0;
            var (matrix, vector) = tensor.In(w);
            if (matrix != null) AddMatrix(tensorName, matrix, interleaveRows);
            else AddVector(tensorName, vector!, interleaveRows);
        }
        GgufWriter.Write(path, m, tensors);
    }

    private static WeightDType EngineDType(GgufTensorType type) => type switch
    {
        GgufTensorType.F32 => WeightDType.F32,
        GgufTensorType.F16 => WeightDType.F16,
        GgufTensorType.BF16 => WeightDType.BF16,
        GgufTensorType.Q8_0 => WeightDType.Q8_0,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>The half-split row that interleaved row <paramref name="r"/> comes from: within a head, 2i + j &lt;- j*d/2 + i.</summary>
    private static int HalfSplitRowOf(int r, int headDim)
    {
        int head = r / headDim, within = r % headDim;
        return head * headDim + (within % 2) * (headDim / 2) + within / 2;
    }
}
