using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TruthProbe.Numerics;

namespace TruthProbe.Model;

/// <summary>
/// Causal attention without the score matrix: keys are visited in tiles of <see cref="KeyTile"/> with an online
/// softmax (running maximum and sum per query; earlier output rescaled when the maximum grows), as in
/// flash-attention. The query heads sharing a key/value head are processed together, so each cached key and
/// value row is fetched once per group. Few queries (decode): work items (token, kv head) are dealt round-robin
/// to the threads, which balances the causal triangle. Many queries: a part is a block of queries of one kv head,
/// the latest (longest) blocks first, claimed one at a time by the threads. Asked for them, it also writes each query head's scores and softmax
/// weights (the hook_attn_scores and hook_pattern maps) from the same scores, maximum and sum that make z, so
/// observing the attention never changes its output.
/// </summary>
internal static unsafe class FlashAttention
{
    private const int KeyTile = 64;

    /// <summary>Most queries of one part in the transposed path: a key and a value tile of a 128-wide head are 32 KB
    /// each, read by this many queries while they stay in L2.</summary>
    private const int MaxQueryBlock = 64;

    /// <summary>Parts per thread the transposed path aims for, so that short calls with few kv heads still split.</summary>
    private const int PartsPerThread = 4;

    /// <summary>From this many queries a call takes the transposed-key kernel; below, the per-key one (other bits).</summary>
    internal const int ManyQueries = 16;

    private struct Job
    {
        public float* Q, K, V, Z;
        /// <summary>[heads, tokens, total] outputs, null when not asked for. Raw scores go to Scores if asked, else to Pattern.</summary>
        public float* Scores, Pattern;
        public int Tokens, FirstPosition, Heads, KvHeads, HeadDim, Window;
        /// <summary>Queries of a part in the transposed path (<see cref="MaxQueryBlock"/> at most).</summary>
        public int QueryBlock;
        /// <summary>Keys transposed, [kv_dim, KeysTStride]: row c holds component c of every position.</summary>
        public float* KeysT;
        public int KeysTStride;
        /// <summary>Values by head, [kv_heads, positions, head_dim]: a tile's rows lie together, where in the cache they
        /// lie kv_dim apart (16 KB at a 7B shape: one L1 set and a page each).</summary>
        public float* HeadValues;
        /// <summary>A 16-bit cache (then K and V are null until widened) and its type.</summary>
        public ushort* K16, V16;
        public KvCacheType Cache;
    }

    [ThreadStatic] private static float[]? _keysT, _values, _tile;

    /// <summary>
    /// Causal multi-head attention of <paramref name="tokens"/> queries at absolute positions
    /// <paramref name="firstPosition"/>.. against the key/value cache ([positions, kvHeads * headDim]).
    /// Query head h reads kv head h / (heads / kvHeads). With a sliding window a query sees only the last
    /// <c>window</c> keys (itself included). z is [tokens, heads * headDim]. <paramref name="scores"/> and
    /// <paramref name="pattern"/>, when not empty, receive [heads, tokens, firstPosition + tokens]: the scaled
    /// scores (-inf where masked) and the softmax weights (0 where masked).
    /// </summary>
    public static void Run(ReadOnlySpan<float> q, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, Span<float> z,
        int tokens, int firstPosition, int heads, int kvHeads, int headDim, int? window, Span<float> scores = default, Span<float> pattern = default)
    {
        CheckShapes(q, keys.Length, values.Length, z, tokens, firstPosition, heads, kvHeads, headDim, scores, pattern);
        fixed (float* pk = keys, pv = values)
            Run(q, pk, pv, null, null, KvCacheType.F32, z, tokens, firstPosition, heads, kvHeads, headDim, window, scores, pattern);
    }

    /// <summary>The same attention over a 16-bit cache (<paramref name="type"/> bf16 or fp16), widened to float32 as it is
    /// read: z is that of the float32 kernel on the widened keys and values, to the bit.</summary>
    public static void Run(ReadOnlySpan<float> q, ReadOnlySpan<ushort> keys, ReadOnlySpan<ushort> values, KvCacheType type, Span<float> z,
        int tokens, int firstPosition, int heads, int kvHeads, int headDim, int? window, Span<float> scores = default, Span<float> pattern = default)
    {
        if (type == KvCacheType.F32) throw new ArgumentException("a 16-bit cache is bf16 or f16", nameof(type));
        CheckShapes(q, keys.Length, values.Length, z, tokens, firstPosition, heads, kvHeads, headDim, scores, pattern);
        fixed (ushort* pk = keys, pv = values)
            Run(q, null, null, pk, pv, type, z, tokens, firstPosition, heads, kvHeads, headDim, window, scores, pattern);
    }

    private static void CheckShapes(ReadOnlySpan<float> q, int keys, int values, Span<float> z, int tokens, int firstPosition, int heads, int kvHeads, int headDim,
        Span<float> scores, Span<float> pattern)
    {
        int total = firstPosition + tokens;
        long map = (long)heads * tokens * total;
        if (q.Length < (long)tokens * heads * headDim || z.Length < (long)tokens * heads * headDim
            || keys < (long)total * kvHeads * headDim || values < (long)total * kvHeads * headDim
            || (!scores.IsEmpty && scores.Length < map) || (!pattern.IsEmpty && pattern.Length < map))
            throw new ArgumentException("attention spans shorter than their shapes");
    }

    /// <summary>Keys and values are float32 at pk, pv, or 16-bit at pk16, pv16 (the other pair null).</summary>
    private static void Run(ReadOnlySpan<float> q, float* pk, float* pv, ushort* pk16, ushort* pv16, KvCacheType type, Span<float> z,
        int tokens, int firstPosition, int heads, int kvHeads, int headDim, int? window, Span<float> scores, Span<float> pattern)
    {
        int total = firstPosition + tokens;
        fixed (float* pq = q, pz = z, ps = scores, pp = pattern)
        {
            var job = new Job
            {
                Q = pq, K = pk, V = pv, K16 = pk16, V16 = pv16, Cache = type, Z = pz, Scores = ps, Pattern = pp, Tokens = tokens, FirstPosition = firstPosition,
                Heads = heads, KvHeads = kvHeads, HeadDim = headDim, Window = window ?? int.MaxValue,
            };
            long work = (long)tokens * heads * total * headDim;
            int parts = work < 1 << 15 ? 1 : WorkerPool.Count;
            // Many queries: transpose the keys once so a tile's scores are broadcast-FMAs over a vector of keys at a
            // time, with no horizontal sums. One query (decode) reads each key once as it is: transposing would double that.
            if (headDim % 16 == 0 && tokens >= ManyQueries)
            {
                int kvDim = kvHeads * headDim, stride = total + KeyTile;   // padded so a last tile may read past the end
                long size = (long)kvDim * stride, cache = (long)total * kvDim;
                if (_keysT == null || _keysT.Length < size) _keysT = GC.AllocateUninitializedArray<float>((int)size, pinned: true);
                if (_values == null || _values.Length < cache) _values = GC.AllocateUninitializedArray<float>((int)cache, pinned: true);
                fixed (float* keysT = _keysT, values = _values)
                {
                    job.KeysT = keysT;
                    job.KeysTStride = stride;
                    job.HeadValues = values;
                    if (parts == 1) for (int kvh = 0; kvh < kvHeads; kvh++) PartLayOut(&job, kvh, kvHeads);
                    else WorkerPool.Run(&PartLayOut, &job, kvHeads);
                    var part = Lanes.Pick(&PartTransposed<Vec<Vector512<float>>>, &PartTransposed<Vec<Vector256<float>>>, &PartTransposed<Vec<Vector128<float>>>);
                    // z does not depend on the block, so it may shrink until every thread has parts to claim.
                    job.QueryBlock = Math.Clamp((int)((long)tokens * kvHeads / (PartsPerThread * WorkerPool.Count)), 1, MaxQueryBlock);
                    int items = QueryBlocks(ref job) * kvHeads;
                    if (parts == 1) for (int item = 0; item < items; item++) part(&job, item, items);
                    else WorkerPool.Run(part, &job, items);
                }
            }
            else WorkerPool.Run(&Part, &job, parts);
        }
    }

    /// <summary>A 16-bit cache's tile (n rows of head <paramref name="kvh"/> from position j0) widened into
    /// <paramref name="tile"/> [n, hd]; for a float32 cache the rows where they lie. Returns the first row;
    /// <paramref name="stride"/> floats separate rows. The raw rows are copied together first and widened after:
    /// at a 7B shape they lie 8 KB apart, each on a new page where the hardware prefetchers stop, and widening fp16
    /// row by row (14 operations per 8 values) left too few loads in flight (a decode step at 2,048 positions took
    /// 1.4x the CPU of the float32 cache's).</summary>
    private static float* TileRows(ref Job j, float* cache, ushort* cache16, float* tile, int j0, int n, int kvh, out int stride)
    {
        int hd = j.HeadDim, kvDim = j.KvHeads * hd;
        stride = cache16 == null ? kvDim : hd;
        if (cache16 == null) return cache + (long)j0 * kvDim + kvh * hd;
        ushort* raw = (ushort*)(tile + KeyTile * hd);
        for (int k = 0; k < n; k++) Buffer.MemoryCopy(cache16 + (long)(j0 + k) * kvDim + kvh * hd, raw + k * hd, hd * sizeof(ushort), hd * sizeof(ushort));
        KvCacheTypes.Widen(j.Cache, raw, tile, n * hd);
        return tile;
    }

    /// <summary>This thread's scratch for one widened tile ([KeyTile, hd] floats) and its raw rows behind it; pinned,
    /// so the pointer stays valid.</summary>
    private static float* Tile(int hd)
    {
        int floats = KeyTile * hd * 3 / 2;
        if (_tile == null || _tile.Length < floats) _tile = GC.AllocateUninitializedArray<float>(floats, pinned: true);
        return (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_tile));
    }

    private static void Part(void* args, int part, int parts)
    {
        ref Job j = ref *(Job*)args;
        int group = j.Heads / j.KvHeads, hd = j.HeadDim, qDim = j.Heads * hd;
        float scale = 1f / MathF.Sqrt(hd);
        float* scores = stackalloc float[group * KeyTile];
        float* max = stackalloc float[group];
        float* sum = stackalloc float[group];
        bool maps = j.Scores != null || j.Pattern != null;
        float* tile = j.K16 == null ? null : Tile(hd);
        for (int item = part; item < j.Tokens * j.KvHeads; item += parts)
        {
            int t = item / j.KvHeads, kvh = item % j.KvHeads, position = j.FirstPosition + t;
            int first = FirstKey(ref j, position);
            float* queries = j.Q + (long)t * qDim + kvh * group * hd;   // the group's heads are consecutive
            float* outputs = j.Z + (long)t * qDim + kvh * group * hd;
            new Span<float>(outputs, group * hd).Clear();
            for (int g = 0; g < group; g++) { max[g] = float.NegativeInfinity; sum[g] = 0; }
            for (int j0 = first; j0 <= position; j0 += KeyTile)
            {
                int n = Math.Min(position + 1, j0 + KeyTile) - j0;
                float* keys = TileRows(ref j, j.K, j.K16, tile, j0, n, kvh, out int keyStride);
                for (int k = 0; k < n; k++)
                {
                    float* key = keys + (long)k * keyStride;
                    for (int g = 0; g < group; g++) scores[g * KeyTile + k] = Dot(queries + g * hd, key, hd) * scale;
                }
                // The keys' tile is spent: a 16-bit cache's values take its place.
                float* values = TileRows(ref j, j.V, j.V16, tile, j0, n, kvh, out int valueStride);
                for (int g = 0; g < group; g++)
                {
                    var s = new Span<float>(scores + g * KeyTile, n);
                    if (maps) s.CopyTo(new Span<float>(MapRow(ref j, kvh * group + g, t) + j0, n));
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
                    for (int k = 0; k < n; k++) AddScaled(outputs + g * hd, values + (long)k * valueStride, s[k], hd);
                }
            }
            for (int g = 0; g < group; g++)
            {
                TensorPrimitives.Multiply(new Span<float>(outputs + g * hd, hd), 1f / sum[g], new Span<float>(outputs + g * hd, hd));
                if (maps) FinishMaps(ref j, kvh * group + g, t, first, max[g], sum[g]);
            }
        }
    }

    /// <summary>Part kvh of the transposed path's setup: head kvh's keys transposed into <see cref="Job.KeysT"/> and
    /// its values into <see cref="Job.HeadValues"/>, widened once per call from a 16-bit cache (every query reads every
    /// row, so widening per query and tile would repeat the work tokens times). Keys go 16 positions at a time through
    /// a contiguous copy: each write to a transposed row then fills most of a cache line, where one position at a time
    /// touched kv_dim lines per position, and the 16 rows, kv_dim apart in the cache, no longer share one L1 set.</summary>
    private static void PartLayOut(void* args, int kvh, int parts)
    {
        const int Block = 16;
        ref Job j = ref *(Job*)args;
        int hd = j.HeadDim, kvDim = j.KvHeads * hd, total = j.FirstPosition + j.Tokens, stride = j.KeysTStride;
        float* keys = stackalloc float[Block * hd];
        float* values = j.HeadValues + (long)kvh * total * hd;
        for (int p0 = 0; p0 < total; p0 += Block)
        {
            int n = Math.Min(Block, total - p0);
            for (int i = 0; i < n; i++)
            {
                long at = (long)(p0 + i) * kvDim + kvh * hd;
                float* key = keys + i * hd, value = values + (long)(p0 + i) * hd;
                if (j.K16 == null)
                {
                    Buffer.MemoryCopy(j.K + at, key, hd * sizeof(float), hd * sizeof(float));
                    Buffer.MemoryCopy(j.V + at, value, hd * sizeof(float), hd * sizeof(float));
                }
                else
                {
                    KvCacheTypes.Widen(j.Cache, j.K16 + at, key, hd);
                    KvCacheTypes.Widen(j.Cache, j.V16 + at, value, hd);
                }
            }
            for (int d = 0; d < hd; d++)
            {
                float* row = j.KeysT + (long)(kvh * hd + d) * stride + p0;
                for (int i = 0; i < n; i++) row[i] = keys[i * hd + d];
            }
        }
    }

    /// <summary>The tiled path on transposed keys (head size a multiple of 16), at any vector width: per query head
    /// of the group, 64 scores in registers four vectors at a time (one pass on Vector512, two on Vector256), exp on
    /// vectors, then the value rows weighted four vectors of components at a time. On Vector512 the operations and
    /// their order are those of the Vector512-only kernel it replaced (z to the bit); on AVX2 that kernel was not
    /// taken and attention ran per key through library calls, 17% of a 7B prefill of 512 tokens.
    /// <para>A part is one kv head for a block of <see cref="Job.QueryBlock"/> queries, which visit each key and value tile
    /// in turn while it is in cache: one query per part read a head's keys and values for every query, from memory at a
    /// 7B shape (16 MB of them per layer at 512 tokens), and ran at 9 GFLOP/s a core. Each query still sees its tiles
    /// in its own order with its own running maximum and sum, so z does not depend on the block.</para></summary>
    private static void PartTransposed<TVec>(void* args, int part, int parts) where TVec : unmanaged, IVec<TVec>
    {
        ref Job j = ref *(Job*)args;
        int group = j.Heads / j.KvHeads, hd = j.HeadDim, qDim = j.Heads * hd, stride = j.KeysTStride;
        int w = TVec.Count, chunk = 4 * w;
        var scale = TVec.Create(1f / MathF.Sqrt(hd));
        // The latest block first: it has the most keys, and the threads claim parts one at a time.
        int block = QueryBlocks(ref j) - 1 - part / j.KvHeads, kvh = part % j.KvHeads;
        int t0 = block * j.QueryBlock, count = Math.Min(j.QueryBlock, j.Tokens - t0);
        float* p = stackalloc float[KeyTile];
        float* max = stackalloc float[count * group];
        float* sum = stackalloc float[count * group];
        bool maps = j.Scores != null || j.Pattern != null;
        for (int t = t0; t < t0 + count; t++) new Span<float>(j.Z + (long)t * qDim + kvh * group * hd, group * hd).Clear();
        for (int i = 0; i < count * group; i++) { max[i] = float.NegativeInfinity; sum[i] = 0; }
        // The block's last query sees the most tiles (a window only slides them along).
        int lastPosition = j.FirstPosition + t0 + count - 1, tiles = (lastPosition - FirstKey(ref j, lastPosition)) / KeyTile + 1;
        for (int tile = 0; tile < tiles; tile++)
            for (int t = t0; t < t0 + count; t++)
            {
                int position = j.FirstPosition + t, j0 = FirstKey(ref j, position) + tile * KeyTile;
                if (j0 > position) continue;
                int n = Math.Min(position + 1, j0 + KeyTile) - j0;
                float* queries = j.Q + (long)t * qDim + kvh * group * hd;   // the group's heads are consecutive
                float* outputs = j.Z + (long)t * qDim + kvh * group * hd;
                float* keys = j.KeysT + (long)kvh * hd * stride + j0;
                float* values = j.HeadValues + ((long)kvh * (j.FirstPosition + j.Tokens) + j0) * hd;
                for (int g = 0; g < group; g++)
                {
                    float* q = queries + g * hd;
                    ref float rowMax = ref max[(t - t0) * group + g], rowSum = ref sum[(t - t0) * group + g];
                    for (int c = 0; c < KeyTile; c += chunk)
                    {
                        TVec s0 = default, s1 = default, s2 = default, s3 = default;
                        for (int d = 0; d < hd; d++)
                        {
                            float* row = keys + (long)d * stride + c;
                            var a = TVec.Create(q[d]);
                            s0 = TVec.Fma(a, TVec.Load(row), s0);
                            s1 = TVec.Fma(a, TVec.Load(row + w), s1);
                            s2 = TVec.Fma(a, TVec.Load(row + 2 * w), s2);
                            s3 = TVec.Fma(a, TVec.Load(row + 3 * w), s3);
                        }
                        TVec.Store(s0 * scale, p + c); TVec.Store(s1 * scale, p + c + w); TVec.Store(s2 * scale, p + c + 2 * w); TVec.Store(s3 * scale, p + c + 3 * w);
                    }
                    // Keys past the query (the tile's ragged end) get -inf, so exp gives them weight 0.
                    if (maps) new ReadOnlySpan<float>(p, n).CopyTo(new Span<float>(MapRow(ref j, kvh * group + g, t) + j0, n));
                    for (int k = n; k < KeyTile; k++) p[k] = float.NegativeInfinity;
                    float tileMax = TensorPrimitives.Max(new ReadOnlySpan<float>(p, n));
                    float newMax = MathF.Max(rowMax, tileMax);
                    float rescale = rowSum == 0 ? 0 : MathF.Exp(rowMax - newMax);
                    var m = TVec.Create(newMax);
                    TVec total = default;
                    for (int c = 0; c < KeyTile; c += chunk)
                    {
                        var e0 = TVec.Exp(TVec.Load(p + c) - m); var e1 = TVec.Exp(TVec.Load(p + c + w) - m);
                        var e2 = TVec.Exp(TVec.Load(p + c + 2 * w) - m); var e3 = TVec.Exp(TVec.Load(p + c + 3 * w) - m);
                        TVec.Store(e0, p + c); TVec.Store(e1, p + c + w); TVec.Store(e2, p + c + 2 * w); TVec.Store(e3, p + c + 3 * w);
                        total = total + (e0 + e1 + e2 + e3);
                    }
                    rowSum = rowSum * rescale + TVec.Sum(total);
                    rowMax = newMax;
                    WeightValues<TVec>(outputs + g * hd, rescale, p, n, values, hd);
                }
            }
        for (int t = t0; t < t0 + count; t++)
            for (int g = 0; g < group; g++)
            {
                var output = new Span<float>(j.Z + (long)t * qDim + (kvh * group + g) * hd, hd);
                int at = (t - t0) * group + g;
                TensorPrimitives.Multiply(output, 1f / sum[at], output);
                if (maps) FinishMaps(ref j, kvh * group + g, t, FirstKey(ref j, j.FirstPosition + t), max[at], sum[at]);
            }
    }

    private static int QueryBlocks(ref Job j) => (j.Tokens + j.QueryBlock - 1) / j.QueryBlock;

    /// <summary>The first key a query at <paramref name="position"/> sees: 0, or the start of its window.</summary>
    private static int FirstKey(ref Job j, int position) => j.Window == int.MaxValue ? 0 : Math.Max(0, position - j.Window + 1);

    /// <summary>Where the raw scores of query head h at token t are kept while its row runs (some map is asked for).</summary>
    private static float* MapRow(ref Job j, int h, int t) =>
        (j.Scores != null ? j.Scores : j.Pattern) + ((long)h * j.Tokens + t) * (j.FirstPosition + j.Tokens);

    /// <summary>Once a row is done: -inf (scores) and 0 (pattern) outside the keys it sees, and the pattern as
    /// exp(score - max) / sum with the row's own maximum and sum, the weights z was made with.</summary>
    private static void FinishMaps(ref Job j, int h, int t, int first, float max, float sum)
    {
        int total = j.FirstPosition + j.Tokens, position = j.FirstPosition + t, seen = position - first + 1;
        long offset = ((long)h * j.Tokens + t) * total;
        var raw = new Span<float>(MapRow(ref j, h, t) + first, seen);
        if (j.Scores != null)
        {
            new Span<float>(j.Scores + offset, first).Fill(float.NegativeInfinity);
            new Span<float>(j.Scores + offset + position + 1, total - position - 1).Fill(float.NegativeInfinity);
        }
        if (j.Pattern != null)
        {
            var weights = new Span<float>(j.Pattern + offset + first, seen);
            TensorPrimitives.Subtract(raw, max, weights);
            TensorPrimitives.Exp(weights, weights);
            TensorPrimitives.Multiply(weights, 1f / sum, weights);
            new Span<float>(j.Pattern + offset, first).Clear();
            new Span<float>(j.Pattern + offset + position + 1, total - position - 1).Clear();
        }
    }

    /// <summary>o = o * rescale + sum_k p[k] v_k, the value rows hd apart. Four vectors of components at a time with even and odd keys in
    /// separate registers: eight independent FMA chains, where one chain per vector would wait on FMA latency.</summary>
    private static void WeightValues<TVec>(float* o, float rescale, float* p, int n, float* values, int hd) where TVec : unmanaged, IVec<TVec>
    {
        var r = TVec.Create(rescale);
        int w = TVec.Count, c = 0;
        for (; c + 4 * w <= hd; c += 4 * w)
        {
            TVec a0 = TVec.Load(o + c) * r, a1 = TVec.Load(o + c + w) * r, a2 = TVec.Load(o + c + 2 * w) * r, a3 = TVec.Load(o + c + 3 * w) * r;
            TVec b0 = default, b1 = default, b2 = default, b3 = default;
            int k = 0;
            for (; k + 2 <= n; k += 2)
            {
                float* v = values + (long)k * hd + c;
                var x = TVec.Create(p[k]);
                a0 = TVec.Fma(x, TVec.Load(v), a0); a1 = TVec.Fma(x, TVec.Load(v + w), a1);
                a2 = TVec.Fma(x, TVec.Load(v + 2 * w), a2); a3 = TVec.Fma(x, TVec.Load(v + 3 * w), a3);
                v += hd;
                x = TVec.Create(p[k + 1]);
                b0 = TVec.Fma(x, TVec.Load(v), b0); b1 = TVec.Fma(x, TVec.Load(v + w), b1);
                b2 = TVec.Fma(x, TVec.Load(v + 2 * w), b2); b3 = TVec.Fma(x, TVec.Load(v + 3 * w), b3);
            }
            if (k < n)
            {
                float* v = values + (long)k * hd + c;
                var x = TVec.Create(p[k]);
                a0 = TVec.Fma(x, TVec.Load(v), a0); a1 = TVec.Fma(x, TVec.Load(v + w), a1);
                a2 = TVec.Fma(x, TVec.Load(v + 2 * w), a2); a3 = TVec.Fma(x, TVec.Load(v + 3 * w), a3);
            }
            TVec.Store(a0 + b0, o + c); TVec.Store(a1 + b1, o + c + w); TVec.Store(a2 + b2, o + c + 2 * w); TVec.Store(a3 + b3, o + c + 3 * w);
        }
        for (; c < hd; c += w)
        {
            var acc = TVec.Load(o + c) * r;
            for (int k = 0; k < n; k++) acc = TVec.Fma(TVec.Create(p[k]), TVec.Load(values + (long)k * hd + c), acc);
            TVec.Store(acc, o + c);
        }
    }

    // Head sizes are small (64, 128): inline vector loops, where a library call per key costs as much as the math.
    private static float Dot(float* a, float* b, int n)
    {
        if (!Vector512.IsHardwareAccelerated || n % 16 != 0) return TensorPrimitives.Dot(new ReadOnlySpan<float>(a, n), new ReadOnlySpan<float>(b, n));
        var acc = Vector512.FusedMultiplyAdd(Vector512.Load(a), Vector512.Load(b), Vector512<float>.Zero);
        for (int i = 16; i < n; i += 16) acc = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), acc);
        return Vector512.Sum(acc);
    }

    /// <summary>y += a * x over n values.</summary>
    private static void AddScaled(float* y, float* x, float a, int n)
    {
        if (!Vector512.IsHardwareAccelerated || n % 16 != 0)
        {
            var target = new Span<float>(y, n);
            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(x, n), a, target, target);
            return;
        }
        var scale = Vector512.Create(a);
        for (int i = 0; i < n; i += 16) Vector512.FusedMultiplyAdd(Vector512.Load(x + i), scale, Vector512.Load(y + i)).Store(y + i);
    }
}
