using System.Runtime.InteropServices;
using System.Text.Json;
using TruthProbe.Common;
using TruthProbe.Formats;

namespace TruthProbe.Probing;

/// <summary>
/// The activations file of a scoring run, filled row by row as rows are collected so an interrupted run
/// resumes where it stopped. While collecting, <c>NAME.partial</c> is a complete safetensors file (header,
/// labels, row ids and metadata final; activation rows not yet collected are zero) and
/// <c>NAME.progress.json</c> says how many rows are done and for which inputs (a fingerprint). Once every row
/// is in, the partial file is renamed to NAME and the progress file removed; a finished file is recognised
/// by the fingerprint in its metadata and reused without running the model.
/// </summary>
public sealed class ActivationStore : IDisposable
{
    private readonly FileStream _file;
    private readonly long _dataOffset;
    private readonly int _rowValues;
    private readonly string _finalPath, _partialPath, _progressPath, _fingerprint;

    public int Rows { get; }
    public int RowsDone { get; private set; }
    /// <summary>True when the file existed (partial or finished) and rows were taken over from it.</summary>
    public bool Resumed { get; }

    private ActivationStore(string finalPath, string fingerprint, int rows, int rowValues, int rowsDone, bool resumed)
    {
        _finalPath = finalPath;
        _partialPath = finalPath + ".partial";
        _progressPath = finalPath + ".progress.json";
        _fingerprint = fingerprint;
        Rows = rows;
        _rowValues = rowValues;
        RowsDone = rowsDone;
        Resumed = resumed;
        using (var probe = SafetensorsFile.Open(_partialPath)) _dataOffset = probe.Get("activations").Offset;
        _file = new FileStream(_partialPath, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
    }

    /// <summary>True when <paramref name="finalPath"/> holds a finished collection for exactly these inputs.</summary>
    public static bool IsFinished(string finalPath, string fingerprint)
    {
        if (!File.Exists(finalPath)) return false;
        try
        {
            using var f = SafetensorsFile.Open(finalPath);
            return f.Metadata.TryGetValue("fingerprint", out var fp) && fp == fingerprint;
        }
        catch (UserError) { return false; }
    }

    /// <summary>Removes what a run killed between finishing the file and cleaning up left beside a finished file.</summary>
    public static void RemoveLeftovers(string finalPath)
    {
        File.Delete(finalPath + ".partial");
        File.Delete(finalPath + ".progress.json");
    }

    /// <summary>
    /// Continues a partial collection of the same inputs, or starts a new one (a partial file of other inputs
    /// is replaced; <paramref name="log"/> says so).
    /// </summary>
    public static ActivationStore OpenOrCreate(string finalPath, string fingerprint, ActivationSet shape, TextWriter log)
    {
        string partial = finalPath + ".partial", progress = finalPath + ".progress.json";
        int rowValues = shape.Layers * shape.Heads * shape.HeadDim;
        int done = ReadProgress(progress, fingerprint);
        if (done > 0 && File.Exists(partial))
        {
            log.WriteLine($"resuming {partial}: {done} of {shape.Rows} rows already collected");
            return new ActivationStore(finalPath, fingerprint, shape.Rows, rowValues, done, resumed: true);
        }
        if (File.Exists(partial)) log.WriteLine($"{partial} belongs to other inputs (model, data, template or rows); starting over");
        var meta = new Dictionary<string, string>(shape.Metadata) { ["fingerprint"] = fingerprint };
        new ActivationSet(shape.Rows, shape.Layers, shape.Heads, shape.HeadDim, shape.Values, shape.Labels, shape.RowIds, meta, shape.Answers)
            .Save(partial);
        WriteProgress(progress, fingerprint, 0);
        return new ActivationStore(finalPath, fingerprint, shape.Rows, rowValues, 0, resumed: false);
    }

    /// <summary>Stores row <see cref="RowsDone"/> ([L, H, D] values) and records it as done.</summary>
    public void Append(ReadOnlySpan<float> values)
    {
        if (values.Length != _rowValues) throw new ArgumentException($"a row has {_rowValues} values, got {values.Length}");
        if (RowsDone >= Rows) throw new InvalidOperationException("every row is already stored");
        _file.Position = _dataOffset + (long)RowsDone * _rowValues * sizeof(float);
        try
        {
            _file.Write(MemoryMarshal.AsBytes(values));
            _file.Flush();
        }
        catch (IOException e) when (AtomicFile.IsDiskFull(e)) { throw AtomicFile.DiskFull(_partialPath, e); }
        RowsDone++;
        WriteProgress(_progressPath, _fingerprint, RowsDone);
    }

    /// <summary>After the last row: the partial file becomes the finished one.</summary>
    public void Complete()
    {
        if (RowsDone != Rows) throw new InvalidOperationException($"{RowsDone} of {Rows} rows stored");
        _file.Flush(flushToDisk: true);
        _file.Dispose();
        File.Move(_partialPath, _finalPath, overwrite: true);
        File.Delete(_progressPath);
    }

    public void Dispose() => _file.Dispose();

    private static int ReadProgress(string path, string fingerprint)
    {
        if (!File.Exists(path)) return 0;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            return root.GetProperty("fingerprint").GetString() == fingerprint ? root.GetProperty("rows_done").GetInt32() : 0;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException) { return 0; }
    }

    private static void WriteProgress(string path, string fingerprint, int rowsDone) =>
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(new Dictionary<string, object> { ["fingerprint"] = fingerprint, ["rows_done"] = rowsDone }) + "\n");
}
