using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using TruthProbe.Common;
using TruthProbe.Formats;

namespace TruthProbe.Probing;

/// <summary>
/// Per-head activations of N probing rows at the scored token, [N, L, H, D] float32, with each row's label
/// (1 = gold/truthful, 0 = hallucinated) and id.
/// <para>On disk (<see cref="Save"/>, written by <c>score</c>): a safetensors file with tensors
/// <c>activations</c> F32 [N, L, H, D], <c>labels</c> I64 [N], <c>row_ids</c> I64 [N] (position of the row
/// in the data file's row list) and <c>__metadata__</c> (<see cref="FormatName"/>, hook, model, data file and
/// its sha256, prompt template, and <c>answers</c>: a JSON list of the answer texts for the surface
/// baseline). <see cref="Load"/> also takes numpy <c>.npy</c> [N, L, H, D] plus a labels <c>.npy</c> [N]
/// (float, int or bool holding 0/1), as PyTorch or numpy write them.</para>
/// </summary>
public sealed class ActivationSet
{
    public const string FormatName = "truthprobe.activations.v1";

    public int Rows { get; }
    public int Layers { get; }
    public int Heads { get; }
    public int HeadDim { get; }
    /// <summary>[N, L, H, D] row-major.</summary>
    public float[] Values { get; }
    public byte[] Labels { get; }
    public long[] RowIds { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>The answer text of each row, when the file carries them (surface baseline).</summary>
    public string[]? Answers { get; }

    public ActivationSet(int rows, int layers, int heads, int headDim, float[] values, byte[] labels, long[] rowIds,
        IReadOnlyDictionary<string, string>? metadata = null, string[]? answers = null)
    {
        if ((long)rows * layers * heads * headDim != values.LongLength) throw new ArgumentException("values do not match [N, L, H, D]");
        if (labels.Length != rows || rowIds.Length != rows) throw new ArgumentException("labels and row ids need one entry per row");
        if (answers != null && answers.Length != rows) throw new ArgumentException("answers need one entry per row");
        (Rows, Layers, Heads, HeadDim, Values, Labels, RowIds) = (rows, layers, heads, headDim, values, labels, rowIds);
        Metadata = metadata ?? new Dictionary<string, string>();
        Answers = answers;
    }

    public int HeadCount => Layers * Heads;

    /// <summary>One row's activation of one head.</summary>
    public ReadOnlySpan<float> Row(int row, int layer, int head) =>
        Values.AsSpan((int)((((long)row * Layers + layer) * Heads + head) * HeadDim), HeadDim);

    /// <summary>Copies every row of head (layer, head) into <paramref name="destination"/> as [N, D].</summary>
    public void GatherHead(int layer, int head, Span<float> destination)
    {
        for (int i = 0; i < Rows; i++) Row(i, layer, head).CopyTo(destination.Slice(i * HeadDim, HeadDim));
    }

    public static ActivationSet Load(string path, string? labelsPath)
    {
        if (!File.Exists(path)) throw new UserError($"{path}: activations file not found");
        bool npy = path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase);
        var set = npy ? LoadNpy(path, labelsPath) : LoadSafetensors(path, labelsPath);
        if (set.Rows == 0) throw new UserError($"{path}: no rows (N = 0); nothing to probe");
        return set;
    }

    private static ActivationSet LoadNpy(string path, string? labelsPath)
    {
        if (labelsPath == null)
            throw new UserError($"{path}: a .npy activations file carries no labels; give a labels .npy (1 = gold, 0 = hallucinated)") { Field = "labels" };
        var a = Npy.Read(path);
        if (a.Shape.Length != 4)
            throw new UserError($"{path}: activations must have rank 4 [N, L, H, D] (rows, layers, heads, head dim), got shape ({string.Join(", ", a.Shape)})");
        var (n, l, h, d) = (a.Shape[0], a.Shape[1], a.Shape[2], a.Shape[3]);
        if (a.Count > Array.MaxLength)
            throw new UserError($"{path}: {a.Count} values exceed what one array holds; probe fewer rows or layers at a time");
        var values = new float[a.Count];
        for (long i = 0; i < values.LongLength; i++) values[i] = (float)a.Data[i];
        RequireFinite(values, path);
        byte[] labels = ReadLabelsNpy(labelsPath, n, path);
        var ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = i;
        return new ActivationSet(n, l, h, d, values, labels, ids, new Dictionary<string, string> { ["source"] = "npy" });
    }

    private static ActivationSet LoadSafetensors(string path, string? labelsPath)
    {
        using var file = SafetensorsFile.Open(path);
        if (!file.Tensors.TryGetValue("activations", out var act))
            throw new UserError($"{path}: no tensor named 'activations' (expected F32 [N, L, H, D]; tensors present: {string.Join(", ", file.Tensors.Keys)})");
        if (act.Shape.Length != 4)
            throw new UserError($"{path}: tensor 'activations' must have rank 4 [N, L, H, D], got [{string.Join(", ", act.Shape)}]");
        if (act.ElementCount > Array.MaxLength)
            throw new UserError($"{path}: {act.ElementCount} values exceed what one array holds; probe fewer rows or layers at a time");
        int n = (int)act.Shape[0], l = (int)act.Shape[1], h = (int)act.Shape[2], d = (int)act.Shape[3];
        float[] values = file.ReadSingles(act);
        RequireFinite(values, path);

        byte[] labels;
        if (labelsPath != null) labels = ReadLabelsNpy(labelsPath, n, path);
        else if (file.Tensors.TryGetValue("labels", out var lt))
        {
            if (lt.ElementCount != n || lt.Shape.Length != 1)
                throw new UserError($"{path}: tensor 'labels' has shape [{string.Join(", ", lt.Shape)}] but 'activations' has {n} rows; expected [{n}]");
            labels = ToLabels(ReadNumbers(file, lt), $"{path} (tensor 'labels')");
        }
        else throw new UserError($"{path}: no tensor named 'labels'; store one or give a labels .npy") { Field = "labels" };

        long[] ids = new long[n];
        if (file.Tensors.TryGetValue("row_ids", out var rt))
        {
            if (rt.ElementCount != n) throw new UserError($"{path}: tensor 'row_ids' has {rt.ElementCount} entries for {n} rows");
            double[] r = ReadNumbers(file, rt);
            for (int i = 0; i < n; i++) ids[i] = (long)r[i];
        }
        else for (int i = 0; i < n; i++) ids[i] = i;

        string[]? answers = null;
        if (file.Metadata.TryGetValue("answers", out var answersJson))
        {
            try { answers = JsonSerializer.Deserialize<string[]>(answersJson); }
            catch (JsonException e) { throw new UserError($"{path}: metadata 'answers' is not a JSON list of strings ({e.Message})"); }
            if (answers == null || answers.Length != n)
                throw new UserError($"{path}: metadata 'answers' has {answers?.Length ?? 0} entries for {n} rows");
        }
        var metadata = file.Metadata.Where(kv => kv.Key != "answers").ToDictionary(kv => kv.Key, kv => kv.Value);
        return new ActivationSet(n, l, h, d, values, labels, ids, metadata, answers);
    }

    private static void RequireFinite(float[] values, string path)
    {
        int bad = Array.FindIndex(values, v => !float.IsFinite(v));
        if (bad >= 0) throw new UserError($"{path}: activation value #{bad} is {values[bad]}; activations must be finite");
    }

    private static byte[] ReadLabelsNpy(string labelsPath, int rows, string activationsPath)
    {
        var a = Npy.Read(labelsPath);
        if (a.Shape.Length != 1 && !(a.Shape.Length == 2 && a.Shape[1] == 1))
            throw new UserError($"{labelsPath}: labels must have shape (N,), got ({string.Join(", ", a.Shape)})");
        if (a.Shape[0] != rows)
            throw new UserError($"{labelsPath}: {a.Shape[0]} labels but {activationsPath} has {rows} rows; they must match one to one");
        return ToLabels(a.Data, labelsPath);
    }

    private static byte[] ToLabels(double[] values, string what)
    {
        var labels = new byte[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            labels[i] = values[i] switch
            {
                1 => 1,
                0 => 0,
                _ => throw new UserError($"{what}: label #{i} is {values[i]}; labels must be 1 (gold) or 0 (hallucinated)"),
            };
        }
        return labels;
    }

    private static double[] ReadNumbers(SafetensorsFile file, SafetensorInfo t)
    {
        var bytes = file.Bytes(t);
        int n = (int)t.ElementCount;
        var result = new double[n];
        for (int i = 0; i < n; i++)
        {
            result[i] = t.DType switch
            {
                TensorDType.I64 => BinaryPrimitives.ReadInt64LittleEndian(bytes[(i * 8)..]),
                TensorDType.I32 => BinaryPrimitives.ReadInt32LittleEndian(bytes[(i * 4)..]),
                TensorDType.I16 => BinaryPrimitives.ReadInt16LittleEndian(bytes[(i * 2)..]),
                TensorDType.I8 => (sbyte)bytes[i],
                TensorDType.U8 or TensorDType.Bool => bytes[i],
                _ => double.NaN,
            };
        }
        if (t.DType is TensorDType.F64 or TensorDType.F32 or TensorDType.F16 or TensorDType.BF16)
        {
            float[] f = file.ReadSingles(t);
            for (int i = 0; i < n; i++) result[i] = f[i];
        }
        return result;
    }

    /// <summary>
    /// The same activations with the answer texts of <paramref name="data"/>'s rows (for the surface baseline),
    /// matched by row id (rows skipped while collecting are simply absent); labels must agree.
    /// </summary>
    public ActivationSet WithAnswers(ProbingData data, string activationsPath)
    {
        var byIndex = data.Rows.ToDictionary(r => (long)r.Index);
        var answers = new string[Rows];
        for (int i = 0; i < Rows; i++)
        {
            if (!byIndex.TryGetValue(RowIds[i], out var row))
                throw new UserError($"{data.Path}: has no row {RowIds[i]} but {activationsPath} does; give the data (and sample count) the activations were collected on") { Field = "data" };
            if (row.Label != Labels[i])
                throw new UserError($"{data.Path} line {row.Line}: label {row.Label} but row {i} of {activationsPath} has label {Labels[i]}; the rows do not match");
            answers[i] = row.Answer;
        }
        return new ActivationSet(Rows, Layers, Heads, HeadDim, Values, Labels, RowIds, Metadata, answers);
    }

    /// <summary>Writes the set in the format <see cref="Load"/> reads, answers and metadata included.</summary>
    public void Save(string path)
    {
        var meta = new Dictionary<string, string>(Metadata) { ["format"] = FormatName };
        if (Answers != null) meta["answers"] = JsonSerializer.Serialize(Answers);
        var labels = Labels.Select(b => (long)b).ToArray();
        SafetensorsWriter.Write(path,
        [
            SafetensorToWrite.FromSingles("activations", [Rows, Layers, Heads, HeadDim], Values),
            SafetensorToWrite.FromBytes("labels", TensorDType.I64, [Rows], MemoryMarshal.AsBytes(labels.AsSpan()).ToArray()),
            SafetensorToWrite.FromBytes("row_ids", TensorDType.I64, [Rows], MemoryMarshal.AsBytes(RowIds.AsSpan()).ToArray()),
        ], meta);
    }
}
