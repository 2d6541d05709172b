using System.Runtime.InteropServices;
using System.Text.Json;
using TruthProbe.Common;
using TruthProbe.Formats;

namespace TruthProbe.Model;

/// <summary>
/// Hugging Face model folders: <c>config.json</c> plus <c>model.safetensors</c> or shards listed in
/// <c>model.safetensors.index.json</c>. Matrices are used straight from the memory-mapped files in their
/// stored dtype (F32, F16, BF16); every tensor's shape is checked against config.json.
/// </summary>
public static unsafe class HfCheckpoint
{
    public const string SingleFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";

    public static (ModelConfig Config, ModelWeights Weights, IReadOnlyList<SafetensorsFile> Files) Load(string folder)
    {
        var config = ModelConfig.FromHfConfig(Path.Combine(folder, "config.json"));
        var files = OpenTensorFiles(folder);
        try
        {
            return (config, ReadWeights(config, Index(files), folder), files);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    /// <summary>Every tensor of the opened files by name.</summary>
    internal static Dictionary<string, (SafetensorsFile File, SafetensorInfo Info)> Index(IEnumerable<SafetensorsFile> files)
    {
        var tensors = new Dictionary<string, (SafetensorsFile File, SafetensorInfo Info)>(StringComparer.Ordinal);
        foreach (var f in files)
            foreach (var (name, info) in f.Tensors)
                if (!tensors.TryAdd(name, (f, info)))
                    throw new UserError($"tensor '{name}' is in both {tensors[name].File.Path} and {f.Path}; a tensor must be in exactly one shard");
        return tensors;
    }

    internal static List<SafetensorsFile> OpenTensorFiles(string folder)
    {
        string single = Path.Combine(folder, SingleFile), index = Path.Combine(folder, IndexFile);
        if (File.Exists(single)) return [SafetensorsFile.Open(single)];
        if (!File.Exists(index))
            throw new UserError($"{folder}: no {SingleFile} or {IndexFile} (a Hugging Face model folder needs its weights in safetensors)");
        string[] shards;
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(index)); }
        catch (JsonException e) { throw new UserError($"{index}: not valid JSON ({e.Message}); expected an object with a 'weight_map' of tensor name -> shard file"); }
        using (doc)
        {
            string where = $"{index}: field 'weight_map'";
            if (!JsonFields.TryGet(JsonFields.Object(doc.RootElement, index), "weight_map", out var map))
                throw new UserError($"{where} is missing; it maps each tensor name to its shard file");
            shards = JsonFields.Object(map, where).EnumerateObject().Select(p => JsonFields.String(p.Value, $"{where} entry '{p.Name}'")).Distinct().ToArray();
        }
        var files = new List<SafetensorsFile>();
        try
        {
            foreach (string shard in shards) files.Add(SafetensorsFile.Open(Path.Combine(folder, shard)));
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
        return files;
    }

    /// <summary>A decoder's weights from an index of opened tensors; <paramref name="prefix"/> places them inside a larger checkpoint.</summary>
    internal static ModelWeights ReadWeights(ModelConfig c, Dictionary<string, (SafetensorsFile File, SafetensorInfo Info)> tensors, string folder, HfPrefix? prefix = null)
    {
        // The embedding's own errors (missing, wrong dtype or shape) say more than a layer count, and Read asks for it first too.
        var embedding = new CheckpointTensor(DecoderTensor.Embedding);
        Matrix(tensors, embedding.Name(TensorNaming.HuggingFace, prefix), embedding.Shape(c), folder);
        CheckLayerCount(c, tensors, folder, prefix);
        return CheckpointTensor.Read(c,
            tensor => Matrix(tensors, tensor.Name(TensorNaming.HuggingFace, prefix), tensor.Shape(c), folder),
            tensor => Vector(tensors, tensor.Name(TensorNaming.HuggingFace, prefix), tensor.Shape(c), folder));
    }

    /// <summary>
    /// num_hidden_layers against the weights, before anything is allocated per layer: a huge count must not
    /// reach an allocation, and a count smaller than the weights hold would silently run a truncated model.
    /// </summary>
    private static void CheckLayerCount(ModelConfig c, Dictionary<string, (SafetensorsFile File, SafetensorInfo Info)> tensors, string folder, HfPrefix? prefix)
    {
        bool Has(int layer) => tensors.ContainsKey(new CheckpointTensor(DecoderTensor.Q, layer).Name(TensorNaming.HuggingFace, prefix));
        int present = 0;
        while (Has(present)) present++;
        if (c.Layers > present && c.Layers > tensors.Count)
            throw new UserError($"{folder}: config.json says num_hidden_layers = {c.Layers}, but the weights hold {present} layers ({tensors.Count} tensors in all); fix num_hidden_layers");
        if (c.Layers < present)
            throw new UserError($"{folder}: config.json says num_hidden_layers = {c.Layers}, but the weights hold {present} layers; fix num_hidden_layers so no layer is silently skipped");
    }

    private static (SafetensorsFile File, SafetensorInfo Info) Find(Dictionary<string, (SafetensorsFile File, SafetensorInfo Info)> tensors, string name, long[] shape, string folder)
    {
        if (!tensors.TryGetValue(name, out var t))
            throw new UserError($"{folder}: tensor '{name}' is missing (config.json implies shape [{string.Join(", ", shape)}])");
        if (!t.Info.Shape.SequenceEqual(shape))
            throw new UserError($"{t.File.Path}: tensor '{name}' has shape [{string.Join(", ", t.Info.Shape)}] but config.json implies [{string.Join(", ", shape)}]");
        return t;
    }

    /// <summary>
    /// A tensor used in place from its mapped file as a [shape[0], product of the rest] matrix (a convolution
    /// kernel [out, in, h, w] is the matrix of its im2col GEMM).
    /// </summary>
    internal static WeightMatrix Matrix(Dictionary<string, (SafetensorsFile File, SafetensorInfo Info)> tensors, string name, long[] shape, string folder)
    {
        var (file, info) = Find(tensors, name, shape, folder);
        var dtype = info.DType switch
        {
            TensorDType.F32 => WeightDType.F32,
            TensorDType.F16 => WeightDType.F16,
            TensorDType.BF16 => WeightDType.BF16,
            _ => throw new UserError($"{file.Path}: tensor '{name}' is {info.DType}; weight matrices must be F32, F16 or BF16"),
        };
        long cols = 1;
        foreach (long n in info.Shape.Skip(1)) cols *= n;
        return new WeightMatrix((int)info.Shape[0], (int)cols, dtype, file.Pointer(info), file);
    }

    /// <summary>A small tensor (norm, bias, embedding row) copied to float32.</summary>
    internal static float[] Vector(Dictionary<string, (SafetensorsFile File, SafetensorInfo Info)> tensors, string name, long[] shape, string folder)
    {
        var (file, info) = Find(tensors, name, shape, folder);
        return file.ReadSingles(info);
    }

    /// <summary>
    /// Writes a model as a Hugging Face folder (config.json + model.safetensors), every tensor converted
    /// to <paramref name="dtype"/> (bf16 rounds to nearest even). Rows are streamed: nothing is held twice.
    /// </summary>
    public static void Write(string folder, ModelConfig c, ModelWeights w, WeightDType dtype)
    {
        Directory.CreateDirectory(folder);
        var list = new List<SafetensorToWrite>();
        void AddMatrix(string name, WeightMatrix m) => list.Add(new SafetensorToWrite(name, ToTensorDType(dtype), [m.Rows, m.Cols], s =>
        {
            var row = new float[m.Cols];
            for (int r = 0; r < m.Rows; r++)
            {
                m.ReadRow(r, row);
                WriteNarrowed(s, row, dtype);
            }
        }));
        void AddVector(string name, float[] v) => list.Add(new SafetensorToWrite(name, ToTensorDType(dtype), [v.Length], s => WriteNarrowed(s, v, dtype)));

        foreach (var tensor in CheckpointTensor.All(c))
        {
            string name = tensor.Name(TensorNaming.HuggingFace);
            var (matrix, vector) = tensor.In(w);
            if (matrix != null) AddMatrix(name, matrix);
            else AddVector(name, vector!);
        }
        SafetensorsWriter.Write(Path.Combine(folder, SingleFile), list, new Dictionary<string, string> { ["format"] = "pt" });
        AtomicFile.WriteAllText(Path.Combine(folder, "config.json"), c.ToHfConfigJson());
    }

    internal static TensorDType ToTensorDType(WeightDType t) => t switch
    {
        WeightDType.F32 => TensorDType.F32,
        WeightDType.F16 => TensorDType.F16,
        WeightDType.BF16 => TensorDType.BF16,
        _ => throw new UserError($"safetensors cannot hold {t} weights; write F32, F16 or BF16"),
    };

    /// <summary>Writes float32 values as <paramref name="dtype"/>, little-endian.</summary>
    internal static void WriteNarrowed(Stream s, ReadOnlySpan<float> values, WeightDType dtype)
    {
        switch (dtype)
        {
            case WeightDType.F32: s.Write(MemoryMarshal.AsBytes(values)); break;
            case WeightDType.F16:
                var half = new Half[values.Length];
                System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(values, half);
                s.Write(MemoryMarshal.AsBytes(half.AsSpan()));
                break;
            case WeightDType.BF16:
                var bf = new ushort[values.Length];
                for (int i = 0; i < values.Length; i++) bf[i] = TensorDTypes.SingleToBFloat16(values[i]);
                s.Write(MemoryMarshal.AsBytes(bf.AsSpan()));
                break;
        }
    }
}
