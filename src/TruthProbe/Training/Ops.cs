using System.Numerics.Tensors;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TruthProbe.Model;
using TruthProbe.Numerics;

namespace TruthProbe.Training;

/// <summary>
/// The layers of the Llama-style decoder, forward and backward, on row-major spans ([rows, width]).
/// Convention: a forward writes its output; a backward ADDS into the gradients of its inputs and weights
/// (residual branches and shared weights then need no extra code), so callers zero gradients once. Except
/// SwiGLU and attention, whose input gradients have no other source: their backwards write them, which saves
/// a zeroing pass over the widest activations. Work is split over the cores in fixed shares, so every result
/// is the same bits whatever the thread timing.
/// </summary>
internal static unsafe class Ops
{
    // ---- embedding ----

    public static void EmbeddingForward(ReadOnlySpan<float> table, ReadOnlySpan<int> tokens, Span<float> x, int dim)
    {
        for (int t = 0; t < tokens.Length; t++) table.Slice(tokens[t] * dim, dim).CopyTo(x.Slice(t * dim, dim));
    }

    public static void EmbeddingBackward(ReadOnlySpan<float> dx, ReadOnlySpan<int> tokens, Span<float> dTable, int dim)
    {
        for (int t = 0; t < tokens.Length; t++)
        {
            var row = dTable.Slice(tokens[t] * dim, dim);
            TensorPrimitives.Add(row, dx.Slice(t * dim, dim), row);
        }
    }

    // ---- RMSNorm: y = x / sqrt(mean(x^2) + eps) * w ----

    private struct RmsNormJob : IRowJob<RmsNormJob>
    {
        public float* X, W, Y, InvRms, Dy, Dx, DwParts;
        public int Dim;
        public float Eps;

        public static void Rows<TVec>(ref RmsNormJob j, int first, int end, int part) where TVec : unmanaged, IVec<TVec>
        {
            int dim = j.Dim, lanes = TVec.Count;
            for (int r = first; r < end; r++)
            {
                float* x = j.X + (long)r * dim, y = j.Y + (long)r * dim;
                TVec squares = default;
                for (int i = 0; i < dim; i += lanes)
                {
                    var v = TVec.LoadPartial(x + i, Math.Min(lanes, dim - i));
                    squares = TVec.Fma(v, v, squares);
                }
                float inv = 1f / MathF.Sqrt(TVec.Sum(squares) / dim + j.Eps);
                j.InvRms[r] = inv;
                for (int i = 0; i < dim; i += lanes)
                {
                    int count = Math.Min(lanes, dim - i);
                    TVec.StorePartial(TVec.LoadPartial(x + i, count) * TVec.Create(inv) * TVec.LoadPartial(j.W + i, count), y + i, count);
                }
            }
        }
    }

    public static void RmsNormForward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, Span<float> invRms, int dim, float eps)
    {
        int rows = invRms.Length;
        CheckRows(x.Length, y.Length, rows, dim);
        fixed (float* px = x, pw = w, py = y, pinv = invRms)
        {
            var job = new RmsNormJob { X = px, W = pw, Y = py, InvRms = pinv, Dim = dim, Eps = eps };
            RowParallel.Run(ref job, rows);
        }
    }

    private struct RmsNormBackwardJob : IRowJob<RmsNormBackwardJob>
    {
        public RmsNormJob Shapes;

        public static void Rows<TVec>(ref RmsNormBackwardJob job, int first, int end, int part) where TVec : unmanaged, IVec<TVec>
        {
            ref var j = ref job.Shapes;
            int dim = j.Dim, lanes = TVec.Count;
            float* dw = j.DwParts + (long)part * dim;
            new Span<float>(dw, dim).Clear();
            for (int r = first; r < end; r++)
            {
                float* x = j.X + (long)r * dim, dy = j.Dy + (long)r * dim, dx = j.Dx + (long)r * dim;
                var inv = TVec.Create(j.InvRms[r]);
                TVec dot = default;
                for (int i = 0; i < dim; i += lanes)
                {
                    int count = Math.Min(lanes, dim - i);
                    var xhat = TVec.LoadPartial(x + i, count) * inv;
                    var dyi = TVec.LoadPartial(dy + i, count);
                    TVec.StorePartial(TVec.Fma(dyi, xhat, TVec.LoadPartial(dw + i, count)), dw + i, count);
                    dot = TVec.Fma(dyi * TVec.LoadPartial(j.W + i, count), xhat, dot);
                }
                var scaledMean = TVec.Create(j.InvRms[r] * (TVec.Sum(dot) / dim));
                for (int i = 0; i < dim; i += lanes)
                {
                    int count = Math.Min(lanes, dim - i);
                    var xhat = TVec.LoadPartial(x + i, count) * inv;
                    var g = TVec.LoadPartial(dy + i, count) * TVec.LoadPartial(j.W + i, count);
                    TVec.StorePartial(TVec.LoadPartial(dx + i, count) + g * inv - xhat * scaledMean, dx + i, count);
                }
            }
        }
    }

    [ThreadStatic] private static float[]? _shareSums;

    /// <summary>
    /// With xhat = x·inv and g = dy⊙w: dx += inv·(g − xhat·mean(g⊙xhat)), dw += Σ dy⊙xhat (summed per row
    /// share, then the shares in order).
    /// </summary>
    public static void RmsNormBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> invRms,
        Span<float> dx, Span<float> dw, int dim)
    {
        int rows = invRms.Length;
        CheckRows(x.Length, dy.Length, rows, dim);
        CheckRows(dx.Length, dx.Length, rows, dim);
        var dwParts = ShareSums(RowParallel.Parts * dim);
        fixed (float* pdy = dy, px = x, pw = w, pinv = invRms, pdx = dx, pparts = dwParts)
        {
            var job = new RmsNormBackwardJob { Shapes = new RmsNormJob { Dy = pdy, X = px, W = pw, InvRms = pinv, Dx = pdx, DwParts = pparts, Dim = dim } };
            RowParallel.Run(ref job, rows);
        }
        for (int part = 0; part < RowParallel.Parts; part++) TensorPrimitives.Add(dw, dwParts.AsSpan(part * dim, dim), dw);
    }

    /// <summary>The calling thread's buffer for per-share partial sums.</summary>
    private static float[] ShareSums(int length)
    {
        if (_shareSums == null || _shareSums.Length < length) _shareSums = new float[length];
        return _shareSums;
    }

    private static void CheckRows(int a, int b, int rows, int width)
    {
        if (a < (long)rows * width || b < (long)rows * width) throw new ArgumentException("span shorter than rows x width");
    }

    // ---- RoPE, Hugging Face half-split convention: pairs (i, i + headDim/2) ----

    private struct RopeJob : IRowJob<RopeJob>
    {
        public float* X, Cos, Sin;
        public int* Starts;
        public int SeqLen, Sequences, Heads, HeadDim;
        public float Sign;

        public static void Rows<TVec>(ref RopeJob j, int first, int end, int part) where TVec : unmanaged, IVec<TVec>
        {
            int half = j.HeadDim / 2, width = j.Heads * j.HeadDim;
            int sequence = j.Starts == null ? 0 : SequenceOf(j.Starts, j.Sequences, first);
            for (int r = first; r < end; r++)
            {
                while (j.Starts != null && r >= j.Starts[sequence + 1]) sequence++;
                int pos = j.Starts == null ? r % j.SeqLen : r - j.Starts[sequence];
                float* c = j.Cos + (long)pos * half, s = j.Sin + (long)pos * half;
                for (int h = 0; h < j.Heads; h++)
                {
                    float* v = j.X + (long)r * width + h * j.HeadDim;
                    int i = 0;
                    // Eight pairs at a time, the scalar loop's operations lane by lane (same bits). Vector256 at every
                    // width: the lab's heads have 8 pairs, and wider vectors would mix the two halves of a head.
                    for (; i + 8 <= half; i += 8)
                    {
                        Vector256<float> a = Vector256.Load(v + i), b = Vector256.Load(v + i + half), ci = Vector256.Load(c + i);
                        var si = Vector256.Create(j.Sign) * Vector256.Load(s + i);
                        Vector256.Store(a * ci - b * si, v + i);
                        Vector256.Store(b * ci + a * si, v + i + half);
                    }
                    for (; i < half; i++)
                    {
                        float a = v[i], b = v[i + half], si = j.Sign * s[i];
                        v[i] = a * c[i] - b * si;
                        v[i + half] = b * c[i] + a * si;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Rotates every head of x [rows, heads·headDim] in place; row r sits at position r mod seqLen, or, with
    /// <paramref name="starts"/> (packed sequences, see <see cref="AttentionForward"/>), at r minus its sequence's start.
    /// The backward of a rotation is the rotation by the opposite angle, so <paramref name="inverse"/> serves it.
    /// </summary>
    public static void Rope(Span<float> x, int seqLen, int heads, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, bool inverse = false,
        ReadOnlySpan<int> starts = default)
    {
        int width = heads * headDim, rows = starts.IsEmpty ? x.Length / width : starts[^1];
        if (cos.Length < Math.Min(rows, seqLen) * (headDim / 2) || sin.Length < cos.Length) throw new ArgumentException("RoPE tables shorter than the sequence");
        if (!starts.IsEmpty) CheckStarts(starts, seqLen, x.Length / width);
        fixed (float* px = x, pc = cos, ps = sin)
        fixed (int* pstarts = starts)
        {
            var job = new RopeJob { X = px, Cos = pc, Sin = ps, Starts = pstarts, SeqLen = seqLen, Sequences = Math.Max(0, starts.Length - 1), Heads = heads, HeadDim = headDim, Sign = inverse ? -1f : 1f };
            RowParallel.Run(ref job, rows);
        }
    }

    /// <summary>The sequence whose rows [starts[s], starts[s + 1]) hold <paramref name="row"/> (the last one for rows past the end).</summary>
    private static int SequenceOf(int* starts, int sequences, int row)
    {
        int lo = 0, hi = sequences - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (starts[mid] <= row) lo = mid; else hi = mid - 1;
        }
        return lo;
    }

    /// <summary>Packed sequences: starts[0] = 0, lengths from 1 to <paramref name="seqLen"/>, and no more rows than the spans hold.</summary>
    private static void CheckStarts(ReadOnlySpan<int> starts, int seqLen, long rows)
    {
        if (starts.Length < 2 || starts[0] != 0 || starts[^1] > rows) throw new ArgumentException("sequence starts do not cover the rows");
        for (int s = 0; s + 1 < starts.Length; s++)
            if (starts[s + 1] - starts[s] < 1 || starts[s + 1] - starts[s] > seqLen) throw new ArgumentException("a packed sequence is empty or longer than seqLen");
    }

    // ---- causal grouped-query attention ----

    /// <summary>One attention call: shapes and the spans as pointers, read by every worker (see <see cref="WorkerPool"/>).</summary>
    private struct AttentionJob
    {
        public float* Q, K, V, Z, Probs, DQ, DK, DV;
        public int* Starts;
        public int Batch, SeqLen, Heads, KvHeads, HeadDim;

        /// <summary>Sequence b: its first row and length (packed by <see cref="Starts"/>, else every one seqLen long).</summary>
        public readonly (int Start, int Length) Sequence(int b) =>
            Starts == null ? (b * SeqLen, SeqLen) : (Starts[b], Starts[b + 1] - Starts[b]);

        /// <summary>Where sequence b's softmax weights begin: the blocks of the sequences before it (see <see cref="AttentionProbsLength"/>).</summary>
        public readonly long ProbsStart(int b)
        {
            if (Starts == null) return b * ProbsBlock(Heads, SeqLen);
            long offset = 0;
            for (int s = 0; s < b; s++) offset += ProbsBlock(Heads, Starts[s + 1] - Starts[s]);
            return offset;
        }

        /// <summary>
        /// The work items (sequence, kv head) of one share, split by their cost (length²): packed sequences differ in
        /// length. Each item writes only its own rows, so the split changes no result.
        /// </summary>
        public readonly (int First, int End) Items(int part, int parts) => (Boundary(part, parts), Boundary(part + 1, parts));

        /// <summary>The first item of share <paramref name="part"/>: the first whose cost before it reaches part/parts of the total.</summary>
        private readonly int Boundary(int part, int parts)
        {
            int items = Batch * KvHeads;
            if (part == 0 || part == parts) return part == 0 ? 0 : items;
            long total = 0;
            for (int b = 0; b < Batch; b++) total += Cost(b) * KvHeads;
            long before = 0;
            for (int item = 0; item < items; item++)
            {
                if (before * parts >= total * part) return item;
                before += Cost(item / KvHeads);
            }
            return items;
        }

        private readonly long Cost(int b) { long t = Sequence(b).Length; return t * t + t; }
    }

    [ThreadStatic] private static float[]? _attentionScratch;

    /// <summary>
    /// q [B·T, H·hd], k and v [B·T, Hkv·hd] → z [B·T, H·hd]; query head h reads kv head h / (H/Hkv).
    /// probs keeps the softmax weights for the backward, <see cref="AttentionProbsLength"/> floats: per (sequence,
    /// head) a block of T rows rounded up to the 4-row tile, each row <see cref="ProbsPad"/>-padded (entries above the
    /// diagonal that the backward reads are 0). The forward computes them in place, so the backward reads them without
    /// a copy.
    /// Work items are (sequence, kv head) with its query heads, split statically over the cores: each writes
    /// only its own rows, so the result does not depend on the thread count.
    /// With <paramref name="starts"/> [batch + 1] the sequences are packed: sequence b is rows [starts[b], starts[b + 1])
    /// (at most seqLen of them), attends over its own length only, and its probs blocks are sized by that length.
    /// </summary>
    public static void AttentionForward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> z, Span<float> probs,
        int batch, int seqLen, int heads, int kvHeads, int headDim, ReadOnlySpan<int> starts = default)
    {
        CheckAttention(q.Length, k.Length, v.Length, z.Length, probs.Length, batch, seqLen, heads, kvHeads, headDim, starts);
        fixed (float* pq = q, pk = k, pv = v, pz = z, pp = probs)
        fixed (int* pstarts = starts)
        {
            var job = new AttentionJob { Q = pq, K = pk, V = pv, Z = pz, Probs = pp, Starts = pstarts, Batch = batch, SeqLen = seqLen, Heads = heads, KvHeads = kvHeads, HeadDim = headDim };
            WorkerPool.Run(Lanes.Pick(&AttentionForwardPart<Vec<Vector512<float>>>, &AttentionForwardPart<Vec<Vector256<float>>>, &AttentionForwardPart<Vec<Vector128<float>>>), &job, AttentionParts(job));
        }
    }

    /// <summary>
    /// dP = dz·vᵀ, dS = P⊙(dP − rowsum(dP⊙P)), dq = scale·dS·k, dk = scale·dSᵀ·q, dv = Pᵀ·dz. Writes (does not add)
    /// dq, dk and dv: attention is their only source, so the caller needs no zeroing pass.
    /// </summary>
    public static void AttentionBackward(ReadOnlySpan<float> dz, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> probs,
        Span<float> dq, Span<float> dk, Span<float> dv, int batch, int seqLen, int heads, int kvHeads, int headDim, ReadOnlySpan<int> starts = default)
    {
        CheckAttention(q.Length, k.Length, v.Length, dz.Length, probs.Length, batch, seqLen, heads, kvHeads, headDim, starts);
        CheckAttention(dq.Length, dk.Length, dv.Length, dz.Length, probs.Length, batch, seqLen, heads, kvHeads, headDim, starts);
        fixed (float* pdz = dz, pq = q, pk = k, pv = v, pp = probs, pdq = dq, pdk = dk, pdv = dv)
        fixed (int* pstarts = starts)
        {
            var job = new AttentionJob { Q = pq, K = pk, V = pv, Z = pdz, Probs = pp, DQ = pdq, DK = pdk, DV = pdv, Starts = pstarts, Batch = batch, SeqLen = seqLen, Heads = heads, KvHeads = kvHeads, HeadDim = headDim };
            WorkerPool.Run(Lanes.Pick(&AttentionBackwardPart<Vec<Vector512<float>>>, &AttentionBackwardPart<Vec<Vector256<float>>>, &AttentionBackwardPart<Vec<Vector128<float>>>), &job, AttentionParts(job));
        }
    }

    private static void CheckAttention(int q, int k, int v, int z, int probs, int batch, int seqLen, int heads, int kvHeads, int headDim, ReadOnlySpan<int> starts)
    {
        if (!starts.IsEmpty && starts.Length != batch + 1) throw new ArgumentException("packed attention needs batch + 1 sequence starts");
        long rows = starts.IsEmpty ? (long)batch * seqLen : starts[^1];
        if (heads % kvHeads != 0 || q < rows * heads * headDim || z < rows * heads * headDim || k < rows * kvHeads * headDim
            || v < rows * kvHeads * headDim || probs < AttentionProbsLength(batch, seqLen, heads, starts))
            throw new ArgumentException("attention spans shorter than their shapes");
        if (!starts.IsEmpty) CheckStarts(starts, seqLen, rows);
    }

    /// <summary>Rows of the softmax weights are padded to this many floats: the widest vector, so the layout is the same at every width.</summary>
    private const int ProbsPad = 16;

    /// <summary>Floats of the softmax weights that <see cref="AttentionForward"/> keeps for a batch (packed by <paramref name="starts"/>, if given).</summary>
    public static long AttentionProbsLength(int batch, int seqLen, int heads, ReadOnlySpan<int> starts = default)
    {
        if (starts.IsEmpty) return batch * ProbsBlock(heads, seqLen);
        long length = 0;
        for (int b = 0; b + 1 < starts.Length; b++) length += ProbsBlock(heads, starts[b + 1] - starts[b]);
        return length;
    }

    /// <summary>Floats of one sequence's softmax weights: every head's [length, length] block, rows tiled, columns padded.</summary>
    private static long ProbsBlock(int heads, int length) => (long)heads * RoundUp(length, Tile) * RoundUp(length, ProbsPad);

    private static int AttentionParts(in AttentionJob j) =>
        (long)j.Batch * j.Heads * j.SeqLen * j.SeqLen * j.HeadDim < 1 << 15 ? 1 : Math.Min(WorkerPool.Count, j.Batch * j.KvHeads);

    /// <summary>Per-thread scratch of at least <paramref name="length"/> floats, kept across calls.</summary>
    private static float[] AttentionScratch(int length)
    {
        if (_attentionScratch == null || _attentionScratch.Length < length) _attentionScratch = GC.AllocateUninitializedArray<float>(length, pinned: true);
        return _attentionScratch;
    }

    /// <summary>
    /// Query rows go four at a time (<see cref="Tile"/>): each key or value vector loaded serves four rows.
    /// A head's rows are read in place; a last tile past the sequence repeats its last row (see <see cref="TileTimesTransposed{TVec}"/>).
    /// </summary>
    private const int Tile = 4;

    private static void AttentionForwardPart<TVec>(void* args, int part, int parts) where TVec : unmanaged, IVec<TVec>
    {
        ref AttentionJob j = ref *(AttentionJob*)args;
        int hd = j.HeadDim, lanes = TVec.Count, group = j.Heads / j.KvHeads;
        int qWidth = j.Heads * hd, kvWidth = j.KvHeads * hd;
        float scale = 1f / MathF.Sqrt(hd);
        var (firstItem, endItem) = j.Items(part, parts);
        fixed (float* scratch = AttentionScratch(hd * RoundUp(j.SeqLen, ProbsPad) + Tile * hd))
        {
            for (int item = firstItem; item < endItem; item++)
            {
                int b = item / j.KvHeads, g = item % j.KvHeads;
                var (start, T) = j.Sequence(b);
                int padded = RoundUp(T, ProbsPad), tiled = RoundUp(T, Tile);
                float* keysT = scratch, sink = keysT + hd * padded;
                float* values = j.V + (long)start * kvWidth + g * hd;
                Transpose(j.K + (long)start * kvWidth + g * hd, kvWidth, keysT, T, hd, padded);
                long probsStart = j.ProbsStart(b);
                for (int h = g * group; h < (g + 1) * group; h++)
                {
                    float* z = j.Z + (long)start * qWidth + h * hd, queries = j.Q + (long)start * qWidth + h * hd;
                    float* probs = j.Probs + probsStart + (long)h * tiled * padded;
                    for (int t0 = 0; t0 < T; t0 += Tile)
                    {
                        int blocks = (t0 + Tile - 1) / lanes + 1, rows = Math.Min(Tile, T - t0);
                        float* scores = probs + (long)t0 * padded;
                        TileTimesTransposed<TVec>(queries + (long)t0 * qWidth, qWidth, rows, keysT, padded, hd, blocks, scale, scores);
                        CausalSoftmaxTile<TVec>(scores, padded, t0, T, blocks);
                        WeightedRowSums<TVec>(scores, padded, 1, values, kvWidth, Math.Min(T, t0 + Tile), hd, z + (long)t0 * qWidth, qWidth, rows, sink, accumulate: false);
                    }
                }
            }
        }
    }

    private static void AttentionBackwardPart<TVec>(void* args, int part, int parts) where TVec : unmanaged, IVec<TVec>
    {
        ref AttentionJob j = ref *(AttentionJob*)args;
        int hd = j.HeadDim, lanes = TVec.Count, group = j.Heads / j.KvHeads;
        int qWidth = j.Heads * hd, kvWidth = j.KvHeads * hd;
        float scale = 1f / MathF.Sqrt(hd);
        var (firstItem, endItem) = j.Items(part, parts);
        int maxPadded = RoundUp(j.SeqLen, ProbsPad), maxTiled = RoundUp(j.SeqLen, Tile);
        fixed (float* scratch = AttentionScratch(hd * maxPadded + maxTiled * maxPadded + Tile * hd))
        {
            for (int item = firstItem; item < endItem; item++)
            {
                int b = item / j.KvHeads, g = item % j.KvHeads;
                var (start, T) = j.Sequence(b);
                int padded = RoundUp(T, ProbsPad), tiled = RoundUp(T, Tile);
                float* valuesT = scratch, dS = valuesT + hd * padded, sink = dS + tiled * padded;
                long kvBase = (long)start * kvWidth + g * hd;
                Transpose(j.V + kvBase, kvWidth, valuesT, T, hd, padded);
                long probsStart = j.ProbsStart(b);
                for (int h = g * group; h < (g + 1) * group; h++)
                {
                    long qBase = (long)start * qWidth + h * hd;
                    float* queries = j.Q + qBase, dz = j.Z + qBase;
                    // Rows T..tiled of p and dS repeat the tile's last row (see TileTimesTransposed); no result reads them.
                    float* p = j.Probs + probsStart + (long)h * tiled * padded;
                    for (int t0 = 0; t0 < T; t0 += Tile)
                    {
                        int blocks = (t0 + Tile - 1) / lanes + 1, rows = Math.Min(Tile, T - t0);
                        TileTimesTransposed<TVec>(dz + (long)t0 * qWidth, qWidth, rows, valuesT, padded, hd, blocks, 1f, dS + (long)t0 * padded);
                        SoftmaxBackwardTile<TVec>(p + (long)t0 * padded, dS + (long)t0 * padded, padded, blocks, scale);
                        WeightedRowSums<TVec>(dS + (long)t0 * padded, padded, 1, j.K + kvBase, kvWidth, Math.Min(T, t0 + Tile), hd, j.DQ + qBase + (long)t0 * qWidth, qWidth, rows, sink, accumulate: false);
                    }
                    // Key and value rows gather over the queries that saw them (t ≥ s): columns of P and dS.
                    for (int s0 = 0; s0 < T; s0 += Tile)
                    {
                        int rows = Math.Min(Tile, T - s0);
                        WeightedRowSums<TVec>(p + (long)s0 * padded + s0, 1, padded, dz + (long)s0 * qWidth, qWidth, T - s0, hd, j.DV + kvBase + (long)s0 * kvWidth, kvWidth, rows, sink, accumulate: h > g * group);
                        WeightedRowSums<TVec>(dS + (long)s0 * padded + s0, 1, padded, queries + (long)s0 * qWidth, qWidth, T - s0, hd, j.DK + kvBase + (long)s0 * kvWidth, kvWidth, rows, sink, accumulate: h > g * group);
                    }
                }
            }
        }
    }

    private static int RoundUp(int n, int multiple) => (n + multiple - 1) / multiple * multiple;

    /// <summary>dst[c, s] = src[s, c] for one head (rows <paramref name="stride"/> apart), columns T..padded zeroed.</summary>
    private static void Transpose(float* src, int stride, float* dst, int rows, int headDim, int padded)
    {
        for (int c = 0; c < headDim; c++)
        {
            float* row = dst + (long)c * padded;
            for (int s = 0; s < rows; s++) row[s] = src[(long)s * stride + c];
            for (int s = rows; s < padded; s++) row[s] = 0;
        }
    }

    /// <summary>
    /// out[r, s] = alpha · Σ_c x[r, c]·mT[c, s] for the 4 rows of a tile of x (rows <paramref name="xStride"/> apart, the
    /// first <paramref name="rows"/> of them real: the others repeat the last real row, so the tile reads nothing past its
    /// head's rows) and the first blocks vectors of columns of mT [headDim, padded]: a vector of keys per broadcast-FMA,
    /// each load of mT shared by four accumulators. Reading the rows in place saves a copy per head into scratch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // as the non-generic kernels were: the JIT's inline budget counts all widths' IL
    private static void TileTimesTransposed<TVec>(float* x, long xStride, int rows, float* mT, int padded, int headDim, int blocks, float alpha, float* output) where TVec : unmanaged, IVec<TVec>
    {
        int lanes = TVec.Count;
        var scale = TVec.Create(alpha);
        float* x0 = x, x1 = x + Math.Min(1, rows - 1) * xStride, x2 = x + Math.Min(2, rows - 1) * xStride, x3 = x + Math.Min(3, rows - 1) * xStride;
        for (int i = 0; i < blocks; i++)
        {
            float* column = mT + i * lanes;
            TVec s0 = default, s1 = default, s2 = default, s3 = default;
            for (int c = 0; c < headDim; c++)
            {
                var m = TVec.Load(column + (long)c * padded);
                s0 = TVec.Fma(TVec.Create(x0[c]), m, s0);
                s1 = TVec.Fma(TVec.Create(x1[c]), m, s1);
                s2 = TVec.Fma(TVec.Create(x2[c]), m, s2);
                s3 = TVec.Fma(TVec.Create(x3[c]), m, s3);
            }
            TVec.Store(s0 * scale, output + i * lanes);
            TVec.Store(s1 * scale, output + padded + i * lanes);
            TVec.Store(s2 * scale, output + 2 * padded + i * lanes);
            TVec.Store(s3 * scale, output + 3 * padded + i * lanes);
        }
    }

    /// <summary>
    /// In place over blocks vectors of each of a tile's 4 score rows (<paramref name="padded"/> apart, row r counting
    /// min(t0 + r + 1, T) entries): softmax of those, zeros after. Only the last vector may be partly masked (the rows of
    /// a tile share their blocks). Each row takes the same operations in the same order as it would alone; the four
    /// rows go interleaved so that their serial chains (max, horizontal max, exp and sum, horizontal sum, divide)
    /// overlap: one row alone leaves the core waiting on each step's latency. The passes are separate methods because
    /// the JIT's inline budget is per method: in one, it called even the vector operators.
    /// </summary>
    private static void CausalSoftmaxTile<TVec>(float* scores, int padded, int t0, int T, int blocks) where TVec : unmanaged, IVec<TVec>
    {
        int lastStart = (blocks - 1) * TVec.Count;
        var valid = Vector128.Min(Vector128.Create(t0 + 1, t0 + 2, t0 + 3, t0 + 4), Vector128.Create(T)) - Vector128.Create(lastStart);
        var maxima = TileRowMaxima<TVec>(scores, padded, lastStart, valid);
        var sums = TileExpAndSum<TVec>(scores, padded, lastStart, valid, maxima);
        TileScale<TVec>(scores, padded, lastStart, 1f / sums[0], 1f / sums[1], 1f / sums[2], 1f / sums[3]);
    }

    /// <summary>The 4 rows' maxima over their first valid[r] entries past lastStart and all before it.</summary>
    private static Vector128<float> TileRowMaxima<TVec>(float* row0, int padded, int lastStart, Vector128<int> valid) where TVec : unmanaged, IVec<TVec>
    {
        float* row1 = row0 + padded, row2 = row1 + padded, row3 = row2 + padded;
        var masked = TVec.Create(float.NegativeInfinity);
        var max0 = TVec.FirstLanes(valid[0], TVec.Load(row0 + lastStart), masked);
        var max1 = TVec.FirstLanes(valid[1], TVec.Load(row1 + lastStart), masked);
        var max2 = TVec.FirstLanes(valid[2], TVec.Load(row2 + lastStart), masked);
        var max3 = TVec.FirstLanes(valid[3], TVec.Load(row3 + lastStart), masked);
        for (int i = 0; i < lastStart; i += TVec.Count)
        {
            max0 = TVec.Max(max0, TVec.Load(row0 + i));
            max1 = TVec.Max(max1, TVec.Load(row1 + i));
            max2 = TVec.Max(max2, TVec.Load(row2 + i));
            max3 = TVec.Max(max3, TVec.Load(row3 + i));
        }
        return Vector128.Create(TVec.MaxAcross(max0), TVec.MaxAcross(max1), TVec.MaxAcross(max2), TVec.MaxAcross(max3));
    }

    /// <summary>Each row's entries → exp(entry − its maximum), zeros past its valid ones; returns the 4 rows' sums.</summary>
    private static Vector128<float> TileExpAndSum<TVec>(float* row0, int padded, int lastStart, Vector128<int> valid, Vector128<float> maxima)
        where TVec : unmanaged, IVec<TVec>
    {
        float* row1 = row0 + padded, row2 = row1 + padded, row3 = row2 + padded;
        TVec m0 = TVec.Create(maxima[0]), m1 = TVec.Create(maxima[1]), m2 = TVec.Create(maxima[2]), m3 = TVec.Create(maxima[3]);
        TVec sum0 = default, sum1 = default, sum2 = default, sum3 = default;
        int lanes = TVec.Count;
        for (int i = 0; i <= lastStart; i += lanes)
        {
            bool last = i == lastStart;
            var e0 = TVec.FirstLanes(last ? valid[0] : lanes, FastExp.Exp(TVec.Load(row0 + i) - m0), default);
            var e1 = TVec.FirstLanes(last ? valid[1] : lanes, FastExp.Exp(TVec.Load(row1 + i) - m1), default);
            var e2 = TVec.FirstLanes(last ? valid[2] : lanes, FastExp.Exp(TVec.Load(row2 + i) - m2), default);
            var e3 = TVec.FirstLanes(last ? valid[3] : lanes, FastExp.Exp(TVec.Load(row3 + i) - m3), default);
            TVec.Store(e0, row0 + i); TVec.Store(e1, row1 + i); TVec.Store(e2, row2 + i); TVec.Store(e3, row3 + i);
            sum0 += e0; sum1 += e1; sum2 += e2; sum3 += e3;
        }
        return Vector128.Create(TVec.Sum(sum0), TVec.Sum(sum1), TVec.Sum(sum2), TVec.Sum(sum3));
    }

    /// <summary>Each of the 4 rows, through its last vector, times its own inverse sum: the weights the backward reads.</summary>
    private static void TileScale<TVec>(float* row0, int padded, int lastStart, float inverse0, float inverse1, float inverse2, float inverse3)
        where TVec : unmanaged, IVec<TVec>
    {
        float* row1 = row0 + padded, row2 = row1 + padded, row3 = row2 + padded;
        TVec by0 = TVec.Create(inverse0), by1 = TVec.Create(inverse1), by2 = TVec.Create(inverse2), by3 = TVec.Create(inverse3);
        for (int i = 0; i <= lastStart; i += TVec.Count)
        {
            TVec.Store(TVec.Load(row0 + i) * by0, row0 + i);
            TVec.Store(TVec.Load(row1 + i) * by1, row1 + i);
            TVec.Store(TVec.Load(row2 + i) * by2, row2 + i);
            TVec.Store(TVec.Load(row3 + i) * by3, row3 + i);
        }
    }

    /// <summary>
    /// dP (in ds) → dS = scale·P⊙(dP − Σ dP⊙P) for a tile's 4 rows (<paramref name="padded"/> apart), over blocks vectors
    /// of entries (P is 0 past the diagonal). Per row the operations and their order are a single row's; the rows go
    /// interleaved so that their dot-product chains and horizontal sums overlap.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // as the non-generic kernels were: the JIT's inline budget counts all widths' IL
    private static void SoftmaxBackwardTile<TVec>(float* p, float* ds, int padded, int blocks, float scale) where TVec : unmanaged, IVec<TVec>
    {
        int end = blocks * TVec.Count, lanes = TVec.Count;
        float* p1 = p + padded, p2 = p1 + padded, p3 = p2 + padded, ds1 = ds + padded, ds2 = ds1 + padded, ds3 = ds2 + padded;
        TVec dot0 = default, dot1 = default, dot2 = default, dot3 = default;
        for (int i = 0; i < end; i += lanes)
        {
            dot0 = TVec.Fma(TVec.Load(ds + i), TVec.Load(p + i), dot0);
            dot1 = TVec.Fma(TVec.Load(ds1 + i), TVec.Load(p1 + i), dot1);
            dot2 = TVec.Fma(TVec.Load(ds2 + i), TVec.Load(p2 + i), dot2);
            dot3 = TVec.Fma(TVec.Load(ds3 + i), TVec.Load(p3 + i), dot3);
        }
        TVec rowDot0 = TVec.Create(TVec.Sum(dot0)), rowDot1 = TVec.Create(TVec.Sum(dot1));
        TVec rowDot2 = TVec.Create(TVec.Sum(dot2)), rowDot3 = TVec.Create(TVec.Sum(dot3));
        var scaleVector = TVec.Create(scale);
        for (int i = 0; i < end; i += lanes)
        {
            TVec.Store(TVec.Load(p + i) * scaleVector * (TVec.Load(ds + i) - rowDot0), ds + i);
            TVec.Store(TVec.Load(p1 + i) * scaleVector * (TVec.Load(ds1 + i) - rowDot1), ds1 + i);
            TVec.Store(TVec.Load(p2 + i) * scaleVector * (TVec.Load(ds2 + i) - rowDot2), ds2 + i);
            TVec.Store(TVec.Load(p3 + i) * scaleVector * (TVec.Load(ds3 + i) - rowDot3), ds3 + i);
        }
    }

    /// <summary>
    /// output[r] (+)= Σ_j w[r·wRow + j·wStep] · rows[j·rowStride] for the 4 rows of a tile and <paramref name="count"/>
    /// head rows: each vector-wide chunk of a head row, loaded once, feeds four register accumulators. Output row r sits
    /// r·<paramref name="outStride"/> past <paramref name="output"/> (in place in the activations: no copy out of scratch);
    /// rows from <paramref name="outRows"/> on go to <paramref name="sink"/> [4, headDim], which nothing reads.
    /// </summary>
    private static void WeightedRowSums<TVec>(float* w, long wRow, long wStep, float* rows, long rowStride, int count, int headDim,
        float* output, long outStride, int outRows, float* sink, bool accumulate) where TVec : unmanaged, IVec<TVec>
    {
        float* out0 = output, out1 = outRows > 1 ? output + outStride : sink + headDim;
        float* out2 = outRows > 2 ? output + 2 * outStride : sink + 2 * headDim, out3 = outRows > 3 ? output + 3 * outStride : sink + 3 * headDim;
        int c = 0, lanes = TVec.Count;
        // Two vectors of the head row per pass where it is that wide: 8 independent FMA chains, which the
        // latency of 256-bit FMAs needs (one 512-bit vector covers the lab's 16-wide heads).
        for (; c + 2 * lanes <= headDim; c += 2 * lanes)
        {
            TVec o0 = default, o1 = default, o2 = default, o3 = default, p0 = default, p1 = default, p2 = default, p3 = default;
            for (int s = 0; s < count; s++)
            {
                float* row = rows + s * rowStride + c, ws = w + s * wStep;
                TVec low = TVec.Load(row), high = TVec.Load(row + lanes), x = TVec.Create(ws[0]);
                o0 = TVec.Fma(x, low, o0); p0 = TVec.Fma(x, high, p0);
                x = TVec.Create(ws[wRow]);
                o1 = TVec.Fma(x, low, o1); p1 = TVec.Fma(x, high, p1);
                x = TVec.Create(ws[2 * wRow]);
                o2 = TVec.Fma(x, low, o2); p2 = TVec.Fma(x, high, p2);
                x = TVec.Create(ws[3 * wRow]);
                o3 = TVec.Fma(x, low, o3); p3 = TVec.Fma(x, high, p3);
            }
            Put(o0, out0 + c, accumulate); Put(o1, out1 + c, accumulate); Put(o2, out2 + c, accumulate); Put(o3, out3 + c, accumulate);
            Put(p0, out0 + c + lanes, accumulate); Put(p1, out1 + c + lanes, accumulate); Put(p2, out2 + c + lanes, accumulate); Put(p3, out3 + c + lanes, accumulate);
        }
        for (; c + lanes <= headDim; c += lanes)
        {
            TVec o0 = default, o1 = default, o2 = default, o3 = default;
            for (int s = 0; s < count; s++)
            {
                var row = TVec.Load(rows + s * rowStride + c);
                float* ws = w + s * wStep;
                o0 = TVec.Fma(TVec.Create(ws[0]), row, o0);
                o1 = TVec.Fma(TVec.Create(ws[wRow]), row, o1);
                o2 = TVec.Fma(TVec.Create(ws[2 * wRow]), row, o2);
                o3 = TVec.Fma(TVec.Create(ws[3 * wRow]), row, o3);
            }
            Put(o0, out0 + c, accumulate); Put(o1, out1 + c, accumulate); Put(o2, out2 + c, accumulate); Put(o3, out3 + c, accumulate);
        }
        for (; c < headDim; c++)
            for (int r = 0; r < Tile; r++)
            {
                float sum = 0;
                for (int s = 0; s < count; s++) sum = MathF.FusedMultiplyAdd(w[r * wRow + s * wStep], rows[s * rowStride + c], sum);
                float* o = (r == 0 ? out0 : r == 1 ? out1 : r == 2 ? out2 : out3) + c;
                *o = accumulate ? *o + sum : sum;
            }
    }

    /// <summary>*p = v, or *p += v (a gradient that a group's query heads share).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put<TVec>(TVec v, float* p, bool accumulate) where TVec : unmanaged, IVec<TVec> =>
        TVec.Store(accumulate ? TVec.Load(p) + v : v, p);

    // ---- SwiGLU: h = silu(gate) ⊙ up ----

    /// <summary>
    /// Elementwise work (SwiGLU, AdamW) is split into shares of whole chunks of this many floats, a whole number of
    /// vectors at every width, so the shares do not depend on the width.
    /// </summary>
    internal const int Chunk = 16;

    /// <summary>Elementwise spans as pointers; a "row" is a <see cref="Chunk"/>, the last one possibly partial.</summary>
    private struct SwiGluJob : IRowJob<SwiGluJob>
    {
        public float* Gate, Up, H, DGate, DUp;
        public int Length;

        public static void Rows<TVec>(ref SwiGluJob j, int first, int end, int part) where TVec : unmanaged, IVec<TVec>
        {
            var one = TVec.Create(1f);
            int lanes = TVec.Count;
            for (int i = first * Chunk; i < Math.Min(j.Length, end * Chunk); i += lanes)
            {
                int count = Math.Min(lanes, j.Length - i);
                var g = TVec.LoadPartial(j.Gate + i, count);
                var sig = one / (one + FastExp.Exp(-g));
                var silu = g * sig;
                var u = TVec.LoadPartial(j.Up + i, count);
                if (j.DGate == null)
                {
                    TVec.StorePartial(silu * u, j.H + i, count);
                    continue;
                }
                // silu'(g) = σ(g)·(1 + g·(1 − σ(g))) = σ + silu(g)·(1 − σ)
                var dh = TVec.LoadPartial(j.H + i, count);
                TVec.StorePartial(dh * u * TVec.Fma(silu, one - sig, sig), j.DGate + i, count);
                TVec.StorePartial(dh * silu, j.DUp + i, count);
            }
        }
    }

    public static void SwiGluForward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> h)
    {
        if (gate.Length < h.Length || up.Length < h.Length) throw new ArgumentException("SwiGLU inputs shorter than the output");
        fixed (float* pg = gate, pu = up, ph = h)
        {
            var job = new SwiGluJob { Gate = pg, Up = pu, H = ph, Length = h.Length };
            RowParallel.Run(ref job, (h.Length + Chunk - 1) / Chunk);
        }
    }

    /// <summary>
    /// Writes (does not add) dGate and dUp: they have no other source, so the caller needs no zeroing pass over
    /// the MLP's widest activations.
    /// </summary>
    public static void SwiGluBackward(ReadOnlySpan<float> dh, ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> dGate, Span<float> dUp)
    {
        if (gate.Length < dh.Length || up.Length < dh.Length || dGate.Length < dh.Length || dUp.Length < dh.Length)
            throw new ArgumentException("SwiGLU spans shorter than the gradient");
        fixed (float* pdh = dh, pg = gate, pu = up, pdg = dGate, pdu = dUp)
        {
            var job = new SwiGluJob { Gate = pg, Up = pu, H = pdh, DGate = pdg, DUp = pdu, Length = dh.Length };
            RowParallel.Run(ref job, (dh.Length + Chunk - 1) / Chunk);
        }
    }

    // ---- cross-entropy with per-row weights ----

    private struct CrossEntropyJob : IRowJob<CrossEntropyJob>
    {
        public float* Logits, Weights, DLogits;
        public int* Targets;
        public double* Loss;
        public int* Correct;
        public int Vocab;
        public double WeightSum;

        public static void Rows<TVec>(ref CrossEntropyJob j, int first, int end, int part) where TVec : unmanaged, IVec<TVec>
        {
            double loss = 0;
            int correct = 0;
            for (int r = first; r < end; r++)
            {
                var dr = new Span<float>(j.DLogits + (long)r * j.Vocab, j.Vocab);
                float w = j.Weights[r];
                if (w == 0) { dr.Clear(); continue; }
                var lr = new ReadOnlySpan<float>(j.Logits + (long)r * j.Vocab, j.Vocab);
                TensorPrimitives.SoftMax(lr, dr);
                int target = j.Targets[r];
                loss -= w * Math.Log(Math.Max(dr[target], 1e-30f));
                if (TensorPrimitives.IndexOfMax(lr) == target) correct++;
                dr[target] -= 1f;
                TensorPrimitives.Multiply(dr, (float)(w / j.WeightSum), dr);
            }
            j.Loss[part] = loss;
            j.Correct[part] = correct;
        }
    }

    /// <summary>
    /// Mean over weighted rows of −log softmax(logits)[target]; rows of weight 0 (prompt tokens, padding)
    /// neither count nor get a gradient. Writes dLogits (not accumulated: it starts the backward).
    /// Returns the loss; <paramref name="correct"/> counts weighted rows whose argmax is the target.
    /// </summary>
    public static double CrossEntropy(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> weights, Span<float> dLogits, int vocab, out int correct)
    {
        int rows = weights.Length;
        CheckRows(logits.Length, dLogits.Length, rows, vocab);
        if (targets.Length < rows) throw new ArgumentException("fewer targets than weighted rows");
        double weightSum = 0;
        foreach (float w in weights) weightSum += w;
        correct = 0;
        if (weightSum == 0)
        {
            dLogits[..(rows * vocab)].Clear();
            return 0;
        }
        double* partLoss = stackalloc double[RowParallel.Parts];
        int* partCorrect = stackalloc int[RowParallel.Parts];
        fixed (float* pl = logits, pw = weights, pd = dLogits)
        fixed (int* pt = targets)
        {
            var job = new CrossEntropyJob { Logits = pl, Weights = pw, DLogits = pd, Targets = pt, Loss = partLoss, Correct = partCorrect, Vocab = vocab, WeightSum = weightSum };
            RowParallel.Run(ref job, rows);
        }
        double loss = 0;
        for (int part = 0; part < RowParallel.Parts; part++) { loss += partLoss[part]; correct += partCorrect[part]; }
        return loss / weightSum;
    }
}
