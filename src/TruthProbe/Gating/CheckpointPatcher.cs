using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using System.Text.Json;
using System.Text.RegularExpressions;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Model;

namespace TruthProbe.Gating;

/// <summary>Gates to fold, [layer][query head], the site they act at, and where they came from (recorded in the output).</summary>
public sealed record GateFold(float[,] Gates, GateSite Site, IReadOnlyDictionary<string, string> Provenance)
{
    public int Layers => Gates.GetLength(0);
    public int Heads => Gates.GetLength(1);

    public float[] Layer(int layer) => Enumerable.Range(0, Heads).Select(h => Gates[layer, h]).ToArray();

    /// <summary>
    /// Only o_proj tensors named under this prefix carry the gates (null: any): a vision-language checkpoint's language
    /// model (Qwen2.5-VL's <c>model.layers.</c>, the Omni thinker's <c>thinker.model.layers.</c>), so that another
    /// decoder in the file (Omni's talker) is copied untouched.
    /// </summary>
    public string? LayersPrefix { get; init; }
}

/// <summary>
/// Writes a copy of a model whose <c>o_proj</c> weights carry the gates (<see cref="GateFolding"/>). The output
/// folder mirrors the model's: checkpoint files (safetensors, single or sharded, or a llama2.c <c>.bin</c>)
/// are rewritten tensor by tensor in their own dtype, never holding more than one tensor in memory; every
/// other file (config, tokenizer, index, licence) is copied. The gates, site and provenance go into the
/// safetensors metadata and into <see cref="ManifestName"/>. The folder appears only once complete.
/// </summary>
public static partial class CheckpointPatcher
{
    public const string ManifestName = "truthprobe_patch.json";
    public const string MetadataPrefix = "truthprobe.";

    [GeneratedRegex(@"(^|\.)layers\.(\d+)\.self_attn\.o_proj\.(weight|bias)$")]
    private static partial Regex OProjName();

    /// <param name="model">a model folder, or a checkpoint file whose folder holds its config and tokenizer.</param>
    public static void Patch(string model, string outDir, GateFold fold) =>
        Publish(model, outDir, staging => WritePatchedFolder(model, staging, WithSource(fold, model)));

    /// <summary>
    /// The same patch as one GGUF file for llama.cpp (<c>DIR/NAME.gguf</c> + <see cref="ManifestName"/>): the
    /// folder patch is made first (streamed, exact), then loaded memory-mapped and written by
    /// <see cref="GgufCheckpoint.Write"/> in the matrices' own dtype, with the model's tokenizer. The GGUF
    /// writer takes no extra keys, so gates and provenance are in the manifest only.
    /// </summary>
    public static void PatchToGguf(string model, string outDir, GateFold fold, string? tokenizerPath = null)
    {
        fold = WithSource(fold, model);
        Publish(model, outDir, staging =>
        {
            string work = Path.Combine(staging, ".patched");
            WritePatchedFolder(model, work, fold);
            string name = Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(Path.GetFullPath(model)));
            using (var patched = Transformer.Load(File.Exists(model) ? Path.Combine(work, Path.GetFileName(model)) : work, tokenizerPath))
            {
                var type = patched.Weights.Layers[0].O.DType switch
                {
                    WeightDType.F16 => GgufTensorType.F16,
                    WeightDType.BF16 => GgufTensorType.BF16,
                    _ => GgufTensorType.F32,
                };
                GgufCheckpoint.Write(Path.Combine(staging, name + ".gguf"), patched.Config, patched.Weights, patched.Tokenizer?.Vocabulary, type, name);
            }
            File.Move(Path.Combine(work, ManifestName), Path.Combine(staging, ManifestName));
            Directory.Delete(work, recursive: true);
        });
    }

    private static GateFold WithSource(GateFold fold, string model) =>
        fold with { Provenance = new Dictionary<string, string>(fold.Provenance) { ["source_model"] = Path.GetFullPath(model) } };

    /// <summary>
    /// Checks --out, lets <paramref name="write"/> fill a staging folder beside it, then renames it into place. A folder
    /// holding a finished patch (its <see cref="ManifestName"/>) is replaced, so that a command run again gives its
    /// output again whether or not an earlier run finished (a kill can land after the rename); any other non-empty
    /// folder is refused. Staging folders left by killed runs are removed first.
    /// </summary>
    private static void Publish(string model, string outDir, Action<string> write)
    {
        string modelDir = ModelFolder(model);
        string fullOut = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outDir));
        if (Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDir)) == fullOut)
            throw new UserError($"{outDir}: is the model's own folder; write the patched checkpoint to a new folder") { Field = "out" };
        if (Directory.Exists(fullOut) && Directory.EnumerateFileSystemEntries(fullOut).Any() && !File.Exists(Path.Combine(fullOut, ManifestName)))
            throw new UserError($"{outDir}: exists and is not empty; choose a new folder for the patched checkpoint or remove it") { Field = "out" };
        if (File.Exists(fullOut)) throw new UserError($"{outDir}: is a file; the patched checkpoint needs a folder") { Field = "out" };

        RemoveKilledStaging(fullOut);
        string run = $"{Environment.ProcessId}-{Guid.NewGuid():N}", staging = $"{fullOut}.partial-{run}";
        Directory.CreateDirectory(staging);
        try
        {
            write(staging);
            string? previous = Directory.Exists(fullOut) ? $"{fullOut}.old-{run}" : null;
            if (previous != null) Directory.Move(fullOut, previous);
            Directory.Move(staging, fullOut);
            if (previous != null) Directory.Delete(previous, recursive: true);
        }
        catch
        {
            try { Directory.Delete(staging, recursive: true); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>
    /// <c>OUT.partial-PID-*</c> (a patch being written) and <c>OUT.old-PID-*</c> (a finished one being replaced) of a
    /// process that no longer runs: a killed run's, which would otherwise stay beside the output, as large as a model.
    /// </summary>
    private static void RemoveKilledStaging(string fullOut)
    {
        string name = Path.GetFileName(fullOut);
        foreach (string dir in Directory.EnumerateDirectories(Path.GetDirectoryName(fullOut)!, name + ".*-*"))
        {
            string rest = Path.GetFileName(dir)[(name.Length + 1)..];
            int dash = rest.IndexOf('-', StringComparison.Ordinal), next = rest.IndexOf('-', dash + 1);
            if (rest[..dash] is not ("partial" or "old") || next < 0 || !int.TryParse(rest[(dash + 1)..next], NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
            if (pid == Environment.ProcessId || Running(pid)) continue;
            Directory.Delete(dir, recursive: true);
        }
    }

    private static bool Running(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    private static string ModelFolder(string model) =>
        Directory.Exists(model) ? model
        : File.Exists(model) ? Path.GetDirectoryName(Path.GetFullPath(model))!
        : throw new UserError($"{model}: no such model file or folder");

    private static void WritePatchedFolder(string model, string folder, GateFold fold)
    {
        string modelDir = ModelFolder(model);
        var files = Directory.GetFiles(modelDir).OrderBy(f => f, StringComparer.Ordinal).ToList();
        var checkpoints = files.Where(f => IsCheckpoint(f, model)).ToList();
        if (checkpoints.Count == 0)
            throw new UserError($"{model}: no checkpoint to patch (expected *.safetensors files or a llama2.c .bin; a .gguf input is not patched)");
        Directory.CreateDirectory(folder);
        int patchedLayers = checkpoints[0].EndsWith(".safetensors", StringComparison.Ordinal)
            ? PatchSafetensors(checkpoints, folder, fold)
            : PatchLlama2c(checkpoints[0], folder, fold);
        if (patchedLayers != fold.Layers)
            throw new UserError($"{model}: has {patchedLayers} layers with an o_proj but the gates have {fold.Layers} rows");
        foreach (string f in files.Where(f => !checkpoints.Contains(f)))
            File.Copy(f, Path.Combine(folder, Path.GetFileName(f)));
        AtomicFile.WriteAllText(Path.Combine(folder, ManifestName), Manifest(fold));
    }

    /// <summary>safetensors files; or, for llama2.c, the .bin given (or the one .bin whose size its header explains).</summary>
    private static bool IsCheckpoint(string file, string model)
    {
        if (file.EndsWith(".safetensors", StringComparison.Ordinal)) return true;
        if (!file.EndsWith(".bin", StringComparison.Ordinal)) return false;
        if (File.Exists(model)) return Path.GetFullPath(file) == Path.GetFullPath(model);
        return Llama2cLayout.TryRead(file, out _);
    }

    /// <summary>The metadata entries recorded with the patched checkpoint: gates as JSON [[layer 0 heads], ...].</summary>
    public static Dictionary<string, string> Metadata(GateFold fold)
    {
        var m = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [MetadataPrefix + "gates"] = JsonSerializer.Serialize(Enumerable.Range(0, fold.Layers).Select(fold.Layer)),
            [MetadataPrefix + "gate_site"] = fold.Site.CliName(),
        };
        foreach (var (k, v) in fold.Provenance) m[MetadataPrefix + k] = v;
        return m;
    }

    /// <summary>The metadata entries, then the <c>provenance</c> object every JSON summary carries (gate seed, scores and gates hashes).</summary>
    private static string Manifest(GateFold fold)
    {
        var entries = Metadata(fold).ToDictionary(kv => kv.Key[MetadataPrefix.Length..], kv => kv.Value);
        var manifest = new JsonObject(entries.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        manifest["provenance"] = Numerics.Provenance.Of(
            entries.TryGetValue("gate_seed", out string? seed) ? [("gate", ulong.Parse(seed, CultureInfo.InvariantCulture))] : [],
            Numerics.Provenance.HashesIn(entries));
        return manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    // ---- safetensors -------------------------------------------------------------------------------

    private static int PatchSafetensors(IReadOnlyList<string> shards, string outDir, GateFold fold)
    {
        var opened = shards.Select(SafetensorsFile.Open).ToList();
        try
        {
            var layersSeen = new HashSet<int>();
            foreach (var file in opened)
            {
                var tensors = file.Tensors.Values.OrderBy(t => t.Offset).ToList();
                var toWrite = tensors.Select(t => ToWrite(file, t, tensors, fold, layersSeen)).ToList();
                var metadata = new Dictionary<string, string>(file.Metadata, StringComparer.Ordinal);
                foreach (var (k, v) in Metadata(fold)) metadata[k] = v;
                SafetensorsWriter.Write(Path.Combine(outDir, Path.GetFileName(file.Path)), toWrite, metadata);
            }
            if (layersSeen.Count > 0 && (layersSeen.Min() != 0 || layersSeen.Max() != layersSeen.Count - 1))
                throw new UserError($"{shards[0]}: o_proj layers are not numbered 0..{layersSeen.Count - 1}");
            return layersSeen.Count;
        }
        finally { foreach (var f in opened) f.Dispose(); }
    }

    private static SafetensorToWrite ToWrite(SafetensorsFile file, SafetensorInfo t, List<SafetensorInfo> all, GateFold fold, HashSet<int> layersSeen)
    {
        var match = OProjName().Match(t.Name);
        if (!match.Success || (fold.LayersPrefix != null && !t.Name.StartsWith(fold.LayersPrefix, StringComparison.Ordinal))) return new SafetensorToWrite(t.Name, t.DType, t.Shape, s => CopyBytes(file, t, s));
        int layer = int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
        bool isBias = match.Groups[3].Value == "bias";
        if (layer >= fold.Layers)
            throw new UserError($"{file.Path}: has '{t.Name}' but the gates cover only {fold.Layers} layers (gates shape [{fold.Layers}, {fold.Heads}])");
        if (t.DType is not (TensorDType.F32 or TensorDType.F16 or TensorDType.BF16))
            throw new UserError($"{file.Path}: '{t.Name}' is {t.DType}; only F32, F16 and BF16 weights can carry gates");
        if (!isBias) layersSeen.Add(layer);
        if (isBias && fold.Site == GateSite.Head)
            return new SafetensorToWrite(t.Name, t.DType, t.Shape, s => CopyBytes(file, t, s)); // W (g ⊙ z) + b: bias unchanged
        return new SafetensorToWrite(t.Name, t.DType, t.Shape, s =>
        {
            float[] values = file.ReadSingles(t);
            float[] gates = fold.Layer(layer);
            if (isBias) GateFolding.FoldOProjOutSite(new float[values.Length], values, values.Length, gates);
            else
            {
                if (t.Shape.Length != 2) throw new UserError($"{file.Path}: '{t.Name}' has shape [{string.Join(", ", t.Shape)}], expected [d_model, heads * head_dim]");
                int outFeatures = (int)t.Shape[0], inFeatures = (int)t.Shape[1];
                CheckDivisible(file.Path, t.Name, fold, outFeatures, inFeatures);
                if (fold.Site == GateSite.Head) GateFolding.FoldHeadSite(values, outFeatures, gates);
                else GateFolding.FoldOProjOutSite(values, Span<float>.Empty, outFeatures, gates);
            }
            HfCheckpoint.WriteNarrowed(s, values, t.DType switch { TensorDType.F16 => WeightDType.F16, TensorDType.BF16 => WeightDType.BF16, _ => WeightDType.F32 });
        });
    }

    private static void CheckDivisible(string path, string name, GateFold fold, int outFeatures, int inFeatures)
    {
        int features = fold.Site == GateSite.Head ? inFeatures : outFeatures;
        if (features % fold.Heads != 0)
            throw new UserError($"{path}: '{name}' is [{outFeatures}, {inFeatures}]; its {(fold.Site == GateSite.Head ? "inputs" : "outputs")} ({features}) do not split into {fold.Heads} heads (gates shape [{fold.Layers}, {fold.Heads}] does not match this model)");
    }

    private static unsafe void CopyBytes(SafetensorsFile file, SafetensorInfo t, Stream s)
    {
        byte* p = file.Pointer(t);
        const int chunk = 1 << 24;
        for (long done = 0; done < t.ByteLength; done += chunk)
            s.Write(new ReadOnlySpan<byte>(p + done, (int)Math.Min(chunk, t.ByteLength - done)));
    }

    // ---- llama2.c ----------------------------------------------------------------------------------

    private static int PatchLlama2c(string bin, string outDir, GateFold fold)
    {
        if (!Llama2cLayout.TryRead(bin, out var layout))
            throw new UserError($"{bin}: not a llama2.c checkpoint (its size does not match the 7-int header)");
        if (layout.Layers != fold.Layers || layout.Heads != fold.Heads)
            throw new UserError($"{bin}: model has {layout.Layers} layers x {layout.Heads} query heads but the gates have shape [{fold.Layers}, {fold.Heads}]");
        int dim = layout.Dim;
        if (fold.Site == GateSite.OProjOut && dim % fold.Heads != 0)
            throw new UserError($"{bin}: d_model {dim} does not split into {fold.Heads} chunks for the o-proj-out site");
        AtomicFile.Write(Path.Combine(outDir, Path.GetFileName(bin)), output =>
        {
            using var input = File.OpenRead(bin);
            CopyExactly(input, output, layout.WoOffset);
            var wo = new float[dim * dim];
            for (int l = 0; l < layout.Layers; l++)
            {
                input.ReadExactly(MemoryMarshal.AsBytes(wo.AsSpan()));
                if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("llama2.c files are little-endian");
                if (fold.Site == GateSite.Head) GateFolding.FoldHeadSite(wo, dim, fold.Layer(l));
                else GateFolding.FoldOProjOutSite(wo, Span<float>.Empty, dim, fold.Layer(l));
                output.Write(MemoryMarshal.AsBytes(wo.AsSpan()));
            }
            input.CopyTo(output);
        });
        return layout.Layers;
    }

    private static void CopyExactly(Stream input, Stream output, long count)
    {
        var buffer = new byte[1 << 20];
        while (count > 0)
        {
            int n = input.Read(buffer, 0, (int)Math.Min(buffer.Length, count));
            if (n == 0) throw new EndOfStreamException();
            output.Write(buffer, 0, n);
            count -= n;
        }
    }
}

/// <summary>Where <c>wo</c> sits in a llama2.c v0 checkpoint (7 int32 header, then fp32 arrays in a fixed order).</summary>
internal readonly record struct Llama2cLayout(int Dim, int Hidden, int Layers, int Heads, int KvHeads, int Vocab, int SeqLen, long WoOffset)
{
    public static bool TryRead(string path, out Llama2cLayout layout)
    {
        layout = default;
        long length = new FileInfo(path).Length;
        if (length < 28) return false;
        var header = new int[7];
        using (var fs = File.OpenRead(path)) fs.ReadExactly(MemoryMarshal.AsBytes(header.AsSpan()));
        int dim = header[0], hidden = header[1], layers = header[2], heads = header[3], kvHeads = header[4], vocab = header[5], seqLen = header[6];
        if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || seqLen <= 0 || vocab == 0 || dim % heads != 0) return false;
        long v = Math.Abs((long)vocab), d = dim, kvDim = d * kvHeads / heads, L = layers;
        long beforeWo = v * d + L * d + L * d * d + 2 * L * d * kvDim;
        long total = beforeWo + L * d * d + L * d + 3 * L * d * hidden + d + (long)seqLen * (d / heads);
        if (vocab < 0) total += v * d;
        if (28 + 4 * total != length) return false;
        layout = new Llama2cLayout(dim, hidden, layers, heads, kvHeads, (int)v, seqLen, 28 + 4 * beforeWo);
        return true;
    }
}
