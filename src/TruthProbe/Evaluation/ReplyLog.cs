using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TruthProbe.Common;

namespace TruthProbe.Evaluation;

/// <summary>
/// The replies of a model-driven run so far, kept in an append-only JSON Lines file so that an interrupted run
/// resumes where it stopped. The first line is the run's fingerprint (model, data and every option that changes a
/// reply); each further line is one reply, written whole and flushed to disk before the next is generated. A crash can
/// only leave the last line without its newline: that fragment is cut off on reopening, so no reply is lost, half
/// kept or repeated.
/// </summary>
public sealed class ReplyLog : IDisposable
{
    private readonly FileStream _file;
    private readonly Dictionary<(string Arm, long Id), string> _replies;

    public string Path { get; }

    /// <summary>The run the log belongs to (its first line).</summary>
    public string Fingerprint { get; }

    /// <summary>Replies recorded so far (by this run and the runs it resumes), by arm and item id.</summary>
    public IReadOnlyDictionary<(string Arm, long Id), string> Replies => _replies;

    /// <summary>Replies found in the file when it was opened: what this run resumed from.</summary>
    public int Resumed { get; }

    private ReplyLog(string path, string fingerprint, FileStream file, Dictionary<(string, long), string> replies)
    {
        Path = path;
        Fingerprint = fingerprint;
        _file = file;
        _replies = replies;
        Resumed = replies.Count;
    }

    /// <summary>
    /// Opens <paramref name="path"/> for a run with <paramref name="fingerprint"/>: a new file, or one a run with the
    /// same fingerprint left. One with another fingerprint belongs to a run with other inputs or options: an error,
    /// since mixing their replies would corrupt both.
    /// </summary>
    public static ReplyLog Open(string path, string fingerprint)
    {
        var replies = new Dictionary<(string, long), string>();
        long keep = 0;
        bool fresh = !File.Exists(path) || new FileInfo(path).Length == 0;
        if (!fresh)
        {
            byte[] bytes = File.ReadAllBytes(path);
            int line = 0;
            for (int start = 0; start < bytes.Length;)
            {
                int end = Array.IndexOf(bytes, (byte)'\n', start);
                if (end < 0) break;   // the last line never finished: dropped below
                line++;
                Read(path, line, bytes.AsSpan(start, end - start), fingerprint, replies);
                start = end + 1;
                keep = start;
            }
            fresh = keep == 0;   // not even the header was finished
        }
        var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read);
        try
        {
            file.SetLength(keep);
            file.Seek(keep, SeekOrigin.Begin);
            var log = new ReplyLog(path, fingerprint, file, replies);
            if (fresh)
            {
                log.WriteLine(new JsonObject { ["fingerprint"] = fingerprint });
                // The replies are fsynced as they come; the new file's name must be on disk for them to be found.
                DirectorySync.Flush(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
            }
            return log;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static void Read(string path, int line, ReadOnlySpan<byte> text, string fingerprint, Dictionary<(string, long), string> replies)
    {
        string where = $"{path}:{line}";
        JsonDocument document;
        try { document = JsonDocument.Parse(text.ToArray()); }
        catch (JsonException) { throw new UserError($"{where}: not a JSON line of a reply log; the file is damaged: delete it to start the run over"); }
        using var _ = document;
        var record = JsonFields.Object(document.RootElement, where);
        if (line == 1)
        {
            string found = JsonFields.TryGet(record, "fingerprint", out var f) ? JsonFields.String(f, $"{where}: fingerprint") : "";
            if (found != fingerprint)
                throw new UserError($"{path}: replies of a run with another model, data or options (fingerprint {Short(found)}, this run {Short(fingerprint)}); " +
                    "delete the file to start over with these settings, or choose another output folder");
            return;
        }
        string arm = JsonFields.String(Field(record, "arm", where), $"{where}: arm");
        long id = JsonFields.Int64(Field(record, "id", where), $"{where}: id");
        string reply = JsonFields.String(Field(record, "reply", where), $"{where}: reply");
        if (!replies.TryAdd((arm, id), reply))
            throw new UserError($"{where}: a second {arm} reply for id {id}; the file is damaged: delete it to start the run over");
    }

    private static JsonElement Field(JsonElement record, string name, string where) =>
        JsonFields.Required(record, name, where, "the file is damaged: delete it to start the run over");

    private static string Short(string fingerprint) => fingerprint.Length > 12 ? fingerprint[..12] : fingerprint;

    /// <summary>
    /// The logs of a sharded run's parts joined into one at <paramref name="path"/>: their common first line, then
    /// every complete reply line of each part in the order given (shard order, which is the order one process makes
    /// them). Parts of different runs are an error; <see cref="Open"/> then checks the fingerprint and repeats.
    /// </summary>
    public static void Join(IReadOnlyList<string> partLogs, string path)
    {
        string? header = null;
        var text = new StringBuilder();
        foreach (string part in partLogs)
        {
            if (!File.Exists(part)) throw new UserError($"{part}: not found; rerun that shard");
            string all = File.ReadAllText(part, new UTF8Encoding(false, true));
            int end = all.LastIndexOf('\n');
            var lines = end < 0 ? [] : all[..end].Split('\n');
            if (lines.Length == 0) throw new UserError($"{part}: an empty reply log; rerun that shard");
            if (header == null) { header = lines[0]; text.Append(header).Append('\n'); }
            else if (lines[0] != header) throw new UserError($"{part}: replies of another run than {partLogs[0]} (its first line differs); give the parts of one run");
            foreach (string line in lines.Skip(1)) text.Append(line).Append('\n');
        }
        AtomicFile.WriteAllText(path, text.ToString());
    }

    /// <summary>Records one reply and makes it durable before returning.</summary>
    public void Add(string arm, long id, string reply)
    {
        if (!_replies.TryAdd((arm, id), reply)) throw new InvalidOperationException($"{arm} reply for id {id} recorded twice");
        WriteLine(new JsonObject { ["arm"] = arm, ["id"] = id, ["reply"] = reply });
    }

    private void WriteLine(JsonObject record)
    {
        _file.Write(Encoding.UTF8.GetBytes(record.ToJsonString(ImageEvalOutputs.Readable) + "\n"));
        _file.Flush(flushToDisk: true);
    }

    /// <summary>
    /// Closes the log once every reply is in the run's final outputs and renames it to <paramref name="finalPath"/>
    /// (kept: every reply in the order it was made, under the run's fingerprint). A later run starts a new log.
    /// </summary>
    public void Complete(string finalPath)
    {
        _file.Dispose();
        File.Move(Path, finalPath, overwrite: true);
        // The rename is the folder's change: without this a power cut could leave the partial log's name, or neither.
        DirectorySync.Flush(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(finalPath))!);
    }

    public void Dispose() => _file.Dispose();
}
