using System.Numerics.Tensors;

namespace TruthProbe.Model;

/// <summary>
/// Causal attention without the score matrix: keys are visited in tiles of <see cref="KeyTile"/> with an online
/// softmax (running maximum and sum per query; earlier output rescaled when the maximum grows), as in
/// flash-attention. The query heads sharing a key/value head are processed together, so each cached key and
/// value row is fetched once per group. Work items (token, kv head) are dealt round-robin to the threads,
/// which balances the causal triangle. Same contract as <see cref="Kernels.Attention"/> without the pattern.
/// </summary>
public static unsafe class FlashAttention
{
    private const int KeyTile = 64;

    private struct Job
    {
        public float* Q, K, V, Z;
        public int Tokens, FirstPosition, Heads, KvHeads, HeadDim, Window;
    }

    public static void Run(ReadOnlySpan<float> q, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, Span<float> z,
        int tokens, int firstPosition, int heads, int kvHeads, int headDim, int? window)
    {
        int total = firstPosition + tokens;
        if (q.Length < (long)tokens * heads * headDim || z.Length < (long)tokens * heads * headDim
            || keys.Length < (long)total * kvHeads * headDim || values.Length < (long)total * kvHeads * headDim)
            throw new ArgumentException("attention spans shorter than their shapes");
        fixed (float* pq = q, pk = keys, pv = values, pz = z)
        {
            var job = new Job
            {
                Q = pq, K = pk, V = pv, Z = pz, Tokens = tokens, FirstPosition = firstPosition,
                Heads = heads, KvHeads = kvHeads, HeadDim = headDim, Window = window ?? int.MaxValue,
            };
            long work = (long)tokens * heads * total * headDim;
            WorkerPool.Run(&Part, &job, work < 1 << 15 ? 1 : WorkerPool.Count);
        }
    }

    private static void Part(void* args, int part, int parts)
    {
        ref Job j = ref *(Job*)args;
        int group = j.Heads / j.KvHeads, hd = j.HeadDim, kvDim = j.KvHeads * hd, qDim = j.Heads * hd;
        float scale = 1f / MathF.Sqrt(hd);
        float* scores = stackalloc float[group * KeyTile];
        float* max = stackalloc float[group];
        float* sum = stackalloc float[group];
        for (int item = part; item < j.Tokens * j.KvHeads; item += parts)
        {
            int t = item / j.KvHeads, kvh = item % j.KvHeads, position = j.FirstPosition + t;
            int first = j.Window == int.MaxValue ? 0 : Math.Max(0, position - j.Window + 1);
            float* queries = j.Q + (long)t * qDim + kvh * group * hd;   // the group's heads are consecutive
            float* outputs = j.Z + (long)t * qDim + kvh * group * hd;
            new Span<float>(outputs, group * hd).Clear();
            for (int g = 0; g < group; g++) { max[g] = float.NegativeInfinity; sum[g] = 0; }
            for (int j0 = first; j0 <= position; j0 += KeyTile)
            {
                int n = Math.Min(position + 1, j0 + KeyTile) - j0;
                for (int k = 0; k < n; k++)
                {
                    var key = new ReadOnlySpan<float>(j.K + (long)(j0 + k) * kvDim + kvh * hd, hd);
                    for (int g = 0; g < group; g++)
                        scores[g * KeyTile + k] = TensorPrimitives.Dot(new ReadOnlySpan<float>(queries + g * hd, hd), key) * scale;
                }
                for (int g = 0; g < group; g++)
                {
                    var s = new Span<float>(scores + g * KeyTile, n);
                    var output = new Span<float>(outputs + g * hd, hd);
                    float newMax = MathF.Max(max[g], TensorPrimitives.Max(s));
                    if (newMax != max[g] && sum[g] != 0)
                    {
                        float rescale = MathF.Exp(max[g] - newMax);
                        sum[g] *= rescale;
                        TensorPrimitives.Multiply(output, rescale, output);
                    }
                    max[g] = newMax;
                    TensorPrimitives.Subtract(s, newMax, s);
                    TensorPrimitives.Exp(s, s);
                    sum[g] += TensorPrimitives.Sum(s);
                    for (int k = 0; k < n; k++)
                        TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(j.V + (long)(j0 + k) * kvDim + kvh * hd, hd), s[k], output, output);
                }
            }
            for (int g = 0; g < group; g++)
                TensorPrimitives.Multiply(new Span<float>(outputs + g * hd, hd), 1f / sum[g], new Span<float>(outputs + g * hd, hd));
        }
    }
}
