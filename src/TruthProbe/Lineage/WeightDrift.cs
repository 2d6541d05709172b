using TruthProbe.Common;
using TruthProbe.Model;

namespace TruthProbe.Lineage;

/// <summary>
/// One row of drift.csv: a whole matrix of one layer (<see cref="Head"/> null), one head's block of it,
/// or a model-level tensor (<see cref="Layer"/> null: embed, lm_head, final_norm).
/// </summary>
public sealed record DriftEntry(int? Layer, int? Head, string Matrix, DriftSums Sums)
{
    public double RelFrobenius => Sums.RelFrobenius;
    public double Cosine => Sums.Cosine;
}

/// <summary>A model as the drift report describes it.</summary>
public sealed record DriftModel(string Path, string Format, ModelConfig Config)
{
    public static DriftModel Of(Transformer m) => new(m.Source, m.Format, m.Config);
    public string Shape => WeightDrift.DescribeShape(Config);
    public string Name => DisplayName(Path);

    /// <summary>A folder's name, or a file's name with its folder ("babyllama-128d-tok105/model5000.bin"): checkpoints are often all called model.bin.</summary>
    public static string DisplayName(string path)
    {
        string full = System.IO.Path.GetFullPath(path).TrimEnd(System.IO.Path.DirectorySeparatorChar);
        if (Directory.Exists(full)) return System.IO.Path.GetFileName(full);
        string folder = System.IO.Path.GetFileName(System.IO.Path.GetDirectoryName(full)) ?? "";
        return folder.Length > 0 ? $"{folder}/{System.IO.Path.GetFileName(full)}" : System.IO.Path.GetFileName(full);
    }
}

/// <summary>The drift of every compared tensor of a child model from its parent, with what was left out and why.</summary>
public sealed class DriftResult(DriftModel parent, DriftModel child, int layers, IReadOnlyList<DriftEntry> entries, IReadOnlyList<string> notes)
{
    public DriftModel Parent { get; } = parent;
    public DriftModel Child { get; } = child;
    /// <summary>Layers compared: 0..Layers-1 (fewer than a model has only under --align).</summary>
    public int Layers { get; } = layers;
    public IReadOnlyList<DriftEntry> Entries { get; } = entries;
    public IReadOnlyList<string> Notes { get; } = notes;

    /// <summary>The whole-matrix entry of one layer's matrix, or a model-level one with layer null; null when not compared.</summary>
    public DriftEntry? Whole(int? layer, string matrix) =>
        Entries.FirstOrDefault(e => e.Layer == layer && e.Head == null && e.Matrix == matrix);

    public IEnumerable<DriftEntry> Heads(int layer, string matrix) =>
        Entries.Where(e => e.Layer == layer && e.Head != null && e.Matrix == matrix);

    /// <summary>Mean of the whole-matrix rel. Frobenius distances of <paramref name="matrices"/> in one layer (NaN when none was compared).</summary>
    public double LayerMean(int layer, IReadOnlyList<string> matrices) =>
        Mean(matrices.Select(m => Whole(layer, m)?.RelFrobenius ?? double.NaN));

    /// <summary>Mean over layers of <see cref="LayerMean"/>: the figure <c>lineage</c> ranks by for the attention matrices.</summary>
    public double ModelMean(IReadOnlyList<string> matrices) =>
        Mean(Enumerable.Range(0, Layers).Select(l => LayerMean(l, matrices)));

    /// <summary>Mean of the whole-matrix cosines of <paramref name="matrices"/> over all layers.</summary>
    public double ModelMeanCosine(IReadOnlyList<string> matrices) =>
        Mean(Enumerable.Range(0, Layers).SelectMany(l => matrices.Select(m => Whole(l, m)?.Cosine ?? double.NaN)));

    private static double Mean(IEnumerable<double> values)
    {
        var present = values.Where(v => !double.IsNaN(v)).ToArray();
        return present.Length == 0 ? double.NaN : present.Average();
    }
}

/// <summary>
/// Weight drift between a parent model A and a child B (paper §2.3, Fig. 2): per layer and per head,
/// ||A - B||_F / ||A||_F and the cosine of the flattened blocks. Matrices are streamed row by row from the
/// memory-mapped checkpoints (widened to float32 one row at a time, summed in float64), so two 7B bf16
/// models compare within a few MB of working memory beyond the mapped files.
/// </summary>
public static class WeightDrift
{
    public static readonly string[] Attention = ["q", "k", "v", "o"];
    public static readonly string[] Mlp = ["gate", "up", "down"];

    public const string Normalisation =
        "rel_frobenius = ||A - B||_F / ||A||_F with A = parent, B = child (0 = identical; independent matrices of equal norm give sqrt(2)); " +
        "cosine = <A, B> / (||A||_F ||B||_F) of the flattened entries; sums in float64 over the stored weights. " +
        "Per head: q rows h*d_head..(h+1)*d_head-1 (query heads), k and v rows of each kv head, o input columns h*d_head..(h+1)*d_head-1. " +
        "Layer means are plain means of the whole-matrix values over the matrices named. " +
        "Norm weights start at 1 in every model and stay near it, so they are close even across unrelated models: not evidence of lineage.";

    /// <summary>Rows per parallel work item are chosen so that an item covers about this many entries.</summary>
    private const long EntriesPerChunk = 1 << 20;

    /// <summary>Progress is shown only for comparisons of more entries than this (about a 0.1B-parameter model).</summary>
    private const long ProgressAbove = 100_000_000;

    /// <summary>
    /// A model for weight comparison only: Hugging Face folders and llama2.c files are opened without their
    /// tokenizer (drift never tokenizes, and a tokenizer the engine cannot read must not stop it); other
    /// paths go through <see cref="Transformer.Load"/>, which also names a missing path.
    /// </summary>
    public static Transformer LoadWeights(string path)
    {
        // A Qwen2.5-VL / Omni folder's LM, whatever its tensor layout, so it compares with Qwen2.5 name for name.
        if (Directory.Exists(path) && Vision.QwenCheckpoint.IsQwenVLFolder(path)) return Vision.QwenVLModel.Load(path).Language;
        // A llava-hf folder's LM (a lab LLaVA against its base, LLaVA-1.5 against Vicuna).
        if (Directory.Exists(path) && Vision.LlavaCheckpoint.IsLlavaFolder(path)) return Vision.LlavaModel.Load(path).Language;
        if (Directory.Exists(path))
        {
            var (config, weights, files) = HfCheckpoint.Load(path);
            return new Transformer(config, weights, path, "hf-safetensors", files);
        }
        if (File.Exists(path) && path.EndsWith(".bin", StringComparison.OrdinalIgnoreCase))
        {
            var (config, weights, file) = Llama2cCheckpoint.Load(path);
            return new Transformer(config, weights, path, "llama2c", [file]);
        }
        return Transformer.Load(path);
    }

    public static string DescribeShape(ModelConfig c) =>
        $"{c.Layers} layers, d_model {c.DModel}, {c.Heads} heads ({c.KvHeads} kv, d_head {c.HeadDim})";

    /// <summary>
    /// Why the two models cannot be compared entry by entry, or null when they can. Layer counts may differ
    /// only when <paramref name="align"/> truncates to the common prefix; widths and head layout never.
    /// </summary>
    public static string? ShapeMismatch(ModelConfig parent, ModelConfig child, bool align)
    {
        var differences = new List<string>();
        if (parent.DModel != child.DModel) differences.Add($"d_model {parent.DModel} vs {child.DModel}");
        if (parent.HeadDim != child.HeadDim) differences.Add($"head size {parent.HeadDim} vs {child.HeadDim}");
        if (parent.Heads != child.Heads) differences.Add($"{parent.Heads} vs {child.Heads} query heads");
        if (parent.KvHeads != child.KvHeads) differences.Add($"{parent.KvHeads} vs {child.KvHeads} kv heads");
        if (differences.Count > 0)
            return $"{string.Join(", ", differences)}; drift compares weights entry by entry, so d_model, head size and head counts must match";
        if (parent.Layers != child.Layers && !align)
            return $"layer counts differ ({parent.Layers} vs {child.Layers}); align them to compare the first {Math.Min(parent.Layers, child.Layers)} layers only";
        return null;
    }

    /// <summary>
    /// Compares every tensor the two models share. <paramref name="attentionOnly"/> skips MLP, embeddings
    /// and norms (what <c>lineage</c> needs). Throws <see cref="UserError"/> naming both models when
    /// <see cref="ShapeMismatch"/> finds them incomparable.
    /// </summary>
    public static DriftResult Compute(Transformer parent, Transformer child, bool align = false, bool attentionOnly = false)
    {
        ModelConfig pc = parent.Config, cc = child.Config;
        string? mismatch = ShapeMismatch(pc, cc, align);
        if (mismatch != null)
            throw new UserError($"cannot compare {parent.Source} ({DescribeShape(pc)}) with {child.Source} ({DescribeShape(cc)}): {mismatch}") { Field = "align" };

        var notes = new List<string>();
        int layers = Math.Min(pc.Layers, cc.Layers);
        if (pc.Layers != cc.Layers)
            notes.Add($"layer counts differ ({pc.Layers} vs {cc.Layers}); only layers 0..{layers - 1} are compared");
        bool mlp = !attentionOnly && pc.Ffn == cc.Ffn;
        if (!attentionOnly && !mlp) notes.Add($"MLP widths differ (ffn {pc.Ffn} vs {cc.Ffn}); gate, up and down are not compared");

        var blocks = new List<Block>();
        ModelWeights pw = parent.Weights, cw = child.Weights;
        int d = pc.HeadDim;
        for (int l = 0; l < layers; l++)
        {
            LayerWeights a = pw.Layers[l], b = cw.Layers[l];
            blocks.Add(new Block("q", l, a.Q, b.Q, a.Q.Rows, Split.Rows, d));
            blocks.Add(new Block("k", l, a.K, b.K, a.K.Rows, Split.Rows, d));
            blocks.Add(new Block("v", l, a.V, b.V, a.V.Rows, Split.Rows, d));
            blocks.Add(new Block("o", l, a.O, b.O, a.O.Rows, Split.Columns, d));
            if (attentionOnly) continue;
            if (mlp)
            {
                blocks.Add(new Block("gate", l, a.Gate, b.Gate, a.Gate.Rows, Split.None, d));
                blocks.Add(new Block("up", l, a.Up, b.Up, a.Up.Rows, Split.None, d));
                blocks.Add(new Block("down", l, a.Down, b.Down, a.Down.Rows, Split.None, d));
            }
            blocks.Add(Vector("attn_norm", l, a.InputNorm, b.InputNorm));
            blocks.Add(Vector("mlp_norm", l, a.PostAttentionNorm, b.PostAttentionNorm));
            foreach (var (name, biasA, biasB) in new[] { ("q_bias", a.QBias, b.QBias), ("k_bias", a.KBias, b.KBias), ("v_bias", a.VBias, b.VBias), ("o_bias", a.OBias, b.OBias) })
            {
                if (biasA != null && biasB != null) blocks.Add(Vector(name, l, biasA, biasB));
                else if ((biasA != null) != (biasB != null) && l == 0)
                    notes.Add($"{name} exists only in the {(biasA != null ? "parent" : "child")}; not compared");
            }
        }
        if (!attentionOnly) AddModelLevel(blocks, notes, parent, child);

        var sums = Run(blocks, $"drift {DriftModel.DisplayName(child.Source)}");
        var entries = new List<DriftEntry>();
        for (int i = 0; i < blocks.Count; i++)
        {
            var whole = new DriftSums();
            foreach (var s in sums[i]) whole.Add(s);
            entries.Add(new DriftEntry(blocks[i].Layer, null, blocks[i].Matrix, whole));
            if (blocks[i].Split != Split.None)
                for (int h = 0; h < sums[i].Length; h++) entries.Add(new DriftEntry(blocks[i].Layer, h, blocks[i].Matrix, sums[i][h]));
        }
        return new DriftResult(DriftModel.Of(parent), DriftModel.Of(child), layers, entries, notes);
    }

    private static void AddModelLevel(List<Block> blocks, List<string> notes, Transformer parent, Transformer child)
    {
        ModelConfig pc = parent.Config, cc = child.Config;
        ModelWeights pw = parent.Weights, cw = child.Weights;
        int shared = Math.Min(pc.Vocab, cc.Vocab);
        if (pc.Vocab != cc.Vocab)
            notes.Add($"vocabularies differ ({pc.Vocab} vs {cc.Vocab} tokens): embed{(pc.TiedEmbeddings && cc.TiedEmbeddings ? "" : " and lm_head")} " +
                      $"compared over the {shared} shared ids 0..{shared - 1}, by id (the two tokenizers may give an id different text)");
        blocks.Add(new Block("embed", null, pw.TokenEmbedding, cw.TokenEmbedding, shared, Split.None, 0));
        if (pc.TiedEmbeddings && cc.TiedEmbeddings)
            notes.Add("lm_head is tied to embed in both models; not compared separately");
        else
        {
            if (pc.TiedEmbeddings != cc.TiedEmbeddings)
                notes.Add($"lm_head is tied to embed in the {(pc.TiedEmbeddings ? "parent" : "child")} only; that model's embedding stands in as its lm_head");
            blocks.Add(new Block("lm_head", null, pw.Classifier, cw.Classifier, shared, Split.None, 0));
        }
        blocks.Add(Vector("final_norm", null, pw.FinalNorm, cw.FinalNorm));
    }

    private enum Split { None, Rows, Columns }

    /// <summary>The first <see cref="Rows"/> rows of two same-width matrices; heads are blocks of headDim rows or columns.</summary>
    private sealed record Block(string Matrix, int? Layer, WeightMatrix A, WeightMatrix B, int Rows, Split Split, int HeadDim)
    {
        public int Slots => Split switch { Split.Rows => Rows / HeadDim, Split.Columns => A.Cols / HeadDim, _ => 1 };
    }

    /// <summary>Norm weights and biases as one-row matrices, so that they go through the same code.</summary>
    private static Block Vector(string name, int? layer, float[] a, float[] b) =>
        new(name, layer, WeightMatrix.FromSingles(a, 1, a.Length), WeightMatrix.FromSingles(b, 1, b.Length), 1, Split.None, 0);

    private sealed record Chunk(int Block, int RowStart, int RowEnd);

    /// <summary>
    /// Per block, one DriftSums per slot (head, or the whole matrix). Work is split into row chunks run in
    /// parallel; each chunk sums into its own slots and chunks are merged in order, so the result does not
    /// depend on the thread schedule.
    /// </summary>
    private static DriftSums[][] Run(List<Block> blocks, string label)
    {
        var chunks = new List<Chunk>();
        int widest = 1;
        for (int i = 0; i < blocks.Count; i++)
        {
            var b = blocks[i];
            if (b.A.Cols != b.B.Cols || b.Rows > b.A.Rows || b.Rows > b.B.Rows)
                throw new InvalidOperationException($"{b.Matrix} of layer {b.Layer}: [{b.A.Rows}, {b.A.Cols}] vs [{b.B.Rows}, {b.B.Cols}] cannot be compared over {b.Rows} rows");
            widest = Math.Max(widest, b.A.Cols);
            int step = (int)Math.Max(1, EntriesPerChunk / b.A.Cols);
            for (int r = 0; r < b.Rows; r += step) chunks.Add(new Chunk(i, r, Math.Min(b.Rows, r + step)));
        }

        var partial = new DriftSums[chunks.Count][];
        // Small models finish in well under a second: a progress line would only be noise.
        long entries = blocks.Sum(b => (long)b.Rows * b.A.Cols);
        using var progress = new Progress(label, chunks.Count, quiet: entries < ProgressAbove ? true : null);
        var gate = new object();
        Parallel.For(0, chunks.Count, () => (A: new float[widest], B: new float[widest]), (c, _, buffers) =>
        {
            var chunk = chunks[c];
            var block = blocks[chunk.Block];
            var sums = new DriftSums[block.Slots];
            Span<float> rowA = buffers.A.AsSpan(0, block.A.Cols), rowB = buffers.B.AsSpan(0, block.A.Cols);
            for (int r = chunk.RowStart; r < chunk.RowEnd; r++)
            {
                block.A.ReadRow(r, rowA);
                block.B.ReadRow(r, rowB);
                switch (block.Split)
                {
                    case Split.None: sums[0].Accumulate(rowA, rowB); break;
                    case Split.Rows: sums[r / block.HeadDim].Accumulate(rowA, rowB); break;
                    case Split.Columns:
                        for (int h = 0; h < sums.Length; h++)
                            sums[h].Accumulate(rowA.Slice(h * block.HeadDim, block.HeadDim), rowB.Slice(h * block.HeadDim, block.HeadDim));
                        break;
                }
            }
            partial[c] = sums;
            lock (gate) progress.Advance();
            return buffers;
        }, _ => { });

        var result = blocks.Select(b => new DriftSums[b.Slots]).ToArray();
        for (int c = 0; c < chunks.Count; c++)
        {
            var target = result[chunks[c].Block];
            for (int s = 0; s < target.Length; s++) target[s].Add(partial[c][s]);
        }
        return result;
    }
}
