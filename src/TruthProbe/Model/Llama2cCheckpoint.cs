using System.Runtime.InteropServices;
using TruthProbe.Common;
using TruthProbe.Formats;

namespace TruthProbe.Model;

/// <summary>
/// llama2.c legacy checkpoints (<c>run.c</c>'s format): 7 int32 (dim, hidden, layers, heads, kv_heads,
/// vocab — negative when the classifier is separate — and seq_len), then float32 tensors, each stacked over
/// layers: embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq_cis_real, freq_cis_imag,
/// [wcls]. The file is memory-mapped; only q and k are copied (read from the file, not the mapping), to reorder
/// their rows from llama2.c's interleaved RoPE pairs into the half-split layout the engine uses.
/// </summary>
public static unsafe class Llama2cCheckpoint
{
    private const int HeaderBytes = 7 * 4;

    public static (ModelConfig Config, ModelWeights Weights, MappedFile File) Load(string path)
    {
        var file = new MappedFile(path);
        try
        {
            if (file.Length < HeaderBytes)
                throw new UserError($"{path}: {file.Length} bytes is too short for a llama2.c checkpoint (the header alone is 28 bytes)");
            // Header and norms are copied with file reads, as q and k are: nothing but the matrices used in place
            // is touched through the mapping (see HalfSplitCopy).
            Span<int> h = stackalloc int[HeaderBytes / 4];
            file.ReadBytes(0, MemoryMarshal.AsBytes(h));
            int dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kvHeads = h[4], vocab = h[5], seqLen = h[6];
            if (vocab == int.MinValue)
                throw new UserError($"{path}: header says vocab {vocab}; not a llama2.c checkpoint (vocab is the vocabulary size, negated when the classifier is separate)");
            bool tied = vocab > 0;
            vocab = Math.Abs(vocab);
            if (dim <= 0 || heads <= 0 || dim % heads != 0)
                throw new UserError($"{path}: header says dim {dim} and {heads} heads; not a llama2.c checkpoint (dim must be a positive multiple of the head count)");
            var config = new ModelConfig
            {
                Architecture = "llama",
                Layers = layers,
                DModel = dim,
                Heads = heads,
                KvHeads = kvHeads,
                HeadDim = dim / heads,
                Ffn = hidden,
                Vocab = vocab,
                MaxContext = seqLen,
                RmsEps = 1e-5f,
                TiedEmbeddings = tied,
                // llama2.c's SentencePiece vocabularies: 1 = <s>, 2 = </s>.
                BosId = vocab > 2 ? 1 : null,
                EosIds = vocab > 2 ? [2] : [],
            };
            config.Validate(path);

            int hd = config.HeadDim, qDim = config.QDim, kvDim = config.KvDim;
            string header = $"header (dim {dim}, hidden {hidden}, layers {layers}, heads {heads}, kv_heads {kvHeads}, vocab {h[5]}, seq_len {seqLen})";
            // Each field is a free int32, so the size is computed checked: an overflow is a header no file can match.
            long expected;
            try
            {
                long floats = checked((long)vocab * dim + layers * (2L * dim + (long)qDim * dim + 2L * kvDim * dim + (long)dim * qDim + 3L * hidden * dim)
                    + dim + (long)seqLen * hd + (tied ? 0 : (long)vocab * dim));
                expected = checked(HeaderBytes + floats * 4);
            }
            catch (OverflowException)
            {
                throw new UserError($"{path}: {header} implies more than 2^63 bytes, but the file has {file.Length}; not a llama2.c checkpoint");
            }
            if (file.Length != expected)
                throw new UserError($"{path}: {header} implies {expected} bytes, but the file has {file.Length} ({(file.Length < expected ? "truncated" : "trailing data")})");

            long offset = HeaderBytes;
            WeightMatrix[] Stack(int rows, int cols)
            {
                var result = new WeightMatrix[layers];
                for (int l = 0; l < layers; l++) result[l] = Next(rows, cols);
                return result;
            }
            WeightMatrix Next(int rows, int cols)
            {
                long bytes = (long)rows * cols * 4;
                var m = new WeightMatrix(rows, cols, WeightDType.F32, file.At(offset, bytes), file);
                offset += bytes;
                return m;
            }
            float[][] Vectors(int count, int n)
            {
                var result = new float[count][];
                for (int i = 0; i < count; i++)
                {
                    result[i] = new float[n];
                    file.ReadBytes(offset, MemoryMarshal.AsBytes(result[i].AsSpan()));
                    offset += n * 4L;
                }
                return result;
            }

            WeightMatrix[] HalfSplitStack(int ropeHeads)
            {
                var result = new WeightMatrix[layers];
                for (int l = 0; l < layers; l++)
                {
                    long start = offset;
                    result[l] = HalfSplitCopy.Read(ropeHeads * hd, dim, WeightDType.F32, ropeHeads, hd, (into, at) => file.ReadBytes(start + at, into));
                    offset += (long)ropeHeads * hd * dim * 4;
                }
                return result;
            }

            var embedding = Next(vocab, dim);
            var attNorm = Vectors(layers, dim);
            var wq = HalfSplitStack(heads);
            var wk = HalfSplitStack(kvHeads);
            var wv = Stack(kvDim, dim);
            var wo = Stack(dim, qDim);
            var ffnNorm = Vectors(layers, dim);
            var w1 = Stack(hidden, dim);
            var w2 = Stack(dim, hidden);
            var w3 = Stack(hidden, dim);
            var finalNorm = Vectors(1, dim)[0];
            offset += (long)seqLen * hd * 4; // freq_cis_real and _imag: RoPE is recomputed, as run.c does
            var classifier = tied ? embedding : Next(vocab, dim);

            var weights = new ModelWeights
            {
                TokenEmbedding = embedding,
                Layers = Enumerable.Range(0, layers).Select(l => new LayerWeights
                {
                    InputNorm = attNorm[l], Q = wq[l], K = wk[l], V = wv[l], O = wo[l],
                    PostAttentionNorm = ffnNorm[l], Gate = w1[l], Up = w3[l], Down = w2[l],
                }).ToArray(),
                FinalNorm = finalNorm,
                Classifier = classifier,
            };
            return (config, weights, file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }
}
