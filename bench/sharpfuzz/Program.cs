using System.Buffers.Binary;
using System.Text;
using SharpFuzz;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Tests.Fuzz;
using TruthProbe.Tokenizers;

namespace TruthProbe.SharpFuzz;

/// <summary>
/// Coverage-guided harnesses for the readers of binary formats, one per target: AFL++ mutates a file, the harness
/// reads it the way the verbs do, and any exception other than <see cref="UserError"/> escapes as a crash (a hang is
/// AFL's time limit, a memory blow-up the GC heap limit the script sets). <c>bench/sharpfuzz/run</c> drives it.
/// </summary>
public static class Program
{
    /// <summary>Each target: the file name its reader is given (the extension chooses the reader) and how it reads it.</summary>
    private static readonly Dictionary<string, (string FileName, Action<string> Read)> Targets = new(StringComparer.Ordinal)
    {
        ["safetensors"] = ("model.safetensors", ReadSafetensors),
        ["gguf"] = ("model.gguf", ReadGguf),
        ["npy"] = ("map.npy", path => Npy.Read(path)),
        ["sentencepiece"] = ("tokenizer.model", ReadTokenizer),
        ["llama2c-tokenizer"] = ("tokenizer.bin", ReadTokenizer),
        ["png"] = ("image.png", ReadPng),
        ["jpeg"] = ("image.jpg", path => ImageFile.Load(path)),
    };

    public static int Main(string[] args)
    {
        switch (args)
        {
            case ["targets"]:
                Console.WriteLine(string.Join(' ', Targets.Keys));
                return 0;
            case ["seeds", var dir]:
                WriteSeeds(dir);
                return 0;
            case ["run", var target]:
                Run(Target(target));
                return 0;
            case ["repro", var target, .. var files]:
                return Repro(Target(target), files);
            default:
                Console.Error.WriteLine("usage: TruthProbe.SharpFuzz targets | seeds DIR | run TARGET | repro TARGET FILE...");
                return 2;
        }
    }

    private static (string FileName, Action<string> Read) Target(string name) =>
        Targets.TryGetValue(name, out var t) ? t : throw new ArgumentException($"unknown target '{name}'; one of {string.Join(", ", Targets.Keys)}");

    /// <summary>AFL's persistent loop: each input is written to one file (the readers map or read files) and read.</summary>
    private static void Run((string FileName, Action<string> Read) target)
    {
        string dir = Directory.CreateTempSubdirectory("truthprobe-sharpfuzz-").FullName, path = Path.Combine(dir, target.FileName);
        Fuzzer.Run(stream =>
        {
            using (var file = File.Create(path)) stream.CopyTo(file);
            try
            {
                target.Read(path);
            }
            catch (UserError)
            {
                // A clear error is the outcome wanted for malformed input.
            }
        });
    }

    /// <summary>Each file through the reader outside AFL: one line per file, the outcome and for a crash its exception.</summary>
    private static int Repro((string FileName, Action<string> Read) target, string[] files)
    {
        string dir = Directory.CreateTempSubdirectory("truthprobe-sharpfuzz-").FullName, path = Path.Combine(dir, target.FileName);
        int crashes = 0;
        foreach (string input in files)
        {
            File.Copy(input, path, overwrite: true);
            try
            {
                target.Read(path);
                Console.WriteLine($"{Path.GetFileName(input)}: read");
            }
            catch (UserError e)
            {
                Console.WriteLine($"{Path.GetFileName(input)}: clean error: {e.Message[..Math.Min(200, e.Message.Length)]}");
            }
            catch (Exception e)
            {
                crashes++;
                Console.WriteLine($"{Path.GetFileName(input)}: CRASH {e.GetType().Name}: {e.Message}");
                Console.WriteLine(e.StackTrace?.Split('\n').FirstOrDefault(l => l.Contains("TruthProbe.", StringComparison.Ordinal) && !l.Contains("SharpFuzz", StringComparison.Ordinal))?.Trim());
            }
        }
        Directory.Delete(dir, recursive: true);
        return crashes == 0 ? 0 : 1;
    }

    /// <summary>
    /// A PNG with every whole chunk's CRC recomputed first: almost every mutation would otherwise stop at the CRC check,
    /// and the fuzzer would never get past it into the chunk parser and the inflater.
    /// </summary>
    private static void ReadPng(string path)
    {
        byte[] data = File.ReadAllBytes(path);
        for (int at = 8; at + 12 <= data.Length;)
        {
            uint length = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(at));
            if (length > data.Length - at - 12) break;
            int end = at + 8 + (int)length;
            BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(end), Crc32.Compute(data.AsSpan(at + 4, (int)length + 4)));
            at = end + 4;
        }
        File.WriteAllBytes(path, data);
        ImageFile.Load(path);
    }

    private static void ReadSafetensors(string path)
    {
        using var file = SafetensorsFile.Open(path);
        foreach (var tensor in file.Tensors.Values) file.ReadSingles(tensor);
    }

    /// <summary>The whole model path: the container, the config from metadata, the weights and the tokenizer.</summary>
    private static void ReadGguf(string path)
    {
        var (_, _, vocabulary, file) = GgufCheckpoint.Load(path);
        using (file)
            if (vocabulary != null) Exercise(TokenizerLoader.FromVocabulary(vocabulary));
    }

    private static void ReadTokenizer(string path) => Exercise(TokenizerLoader.FromFile(path));

    private static void Exercise(ITokenizer tokenizer)
    {
        int[] ids = tokenizer.Encode("ab ba  c\u00e9\u4e2d");
        tokenizer.Decode(ids);
        for (int id = 0; id < tokenizer.VocabSize; id++) tokenizer.TokenText(id);
    }

    /// <summary>
    /// One small valid file per target in DIR/TARGET/: the fuzz suite's seeds where it writes them itself, and for the
    /// two tokenizer formats (whose writers are not ours) a 16-piece BPE vocabulary written here.
    /// </summary>
    private static void WriteSeeds(string root)
    {
        string scratch = Directory.CreateTempSubdirectory("truthprobe-sharpfuzz-seeds-").FullName;
        try
        {
            var suite = FuzzTargets.All(shared: null).ToDictionary(t => t.Format);
            foreach (var (name, format) in new[] { ("safetensors", "safetensors"), ("gguf", "gguf"), ("npy", "npy"), ("png", "png"), ("jpeg", "jpeg") })
            {
                string dir = Path.Combine(scratch, name);
                Directory.CreateDirectory(dir);
                Write(root, name, suite[format].Setup(dir));
            }
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
        Write(root, "sentencepiece", SentencePieceSeed());
        Write(root, "llama2c-tokenizer", Llama2cTokenizerSeed());
        foreach (var (name, target) in Targets)
        {
            // Every seed must read cleanly: a seed that already fails would make the run mean nothing.
            string path = Path.Combine(root, name, "seed");
            var copy = Path.Combine(Path.GetDirectoryName(path)!, "..", "check-" + target.FileName);
            File.Copy(path, copy, overwrite: true);
            try { target.Read(copy); }
            finally { File.Delete(copy); }
        }
    }

    private static void Write(string root, string target, byte[] bytes)
    {
        Directory.CreateDirectory(Path.Combine(root, target));
        File.WriteAllBytes(Path.Combine(root, target, "seed"), bytes);
    }

    // <unk>, <s>, </s>, then pieces a BPE over "ab ba c" uses (scores give the merge order).
    private static readonly (string Piece, float Score, int Type)[] Pieces =
    [
        ("<unk>", 0, TokenType.Unknown), ("<s>", 0, TokenType.Control), ("</s>", 0, TokenType.Control),
        ("\u2581", -1, TokenType.Normal), ("a", -2, TokenType.Normal), ("b", -3, TokenType.Normal), ("c", -4, TokenType.Normal),
        ("\u2581a", -5, TokenType.Normal), ("\u2581b", -6, TokenType.Normal), ("ab", -7, TokenType.Normal), ("ba", -8, TokenType.Normal),
    ];

    /// <summary>A SentencePiece ModelProto: the pieces (field 1), a BPE trainer spec (2) and the identity normaliser (3).</summary>
    private static byte[] SentencePieceSeed()
    {
        var model = new MemoryStream();
        foreach (var (piece, score, type) in Pieces)
        {
            var p = new MemoryStream();
            Field(p, 1, Encoding.UTF8.GetBytes(piece));
            p.WriteByte(2 << 3 | 5);
            p.Write(BitConverter.GetBytes(score));
            Varint(p, 3 << 3);
            Varint(p, (ulong)type);
            Field(model, 1, p.ToArray());
        }
        var trainer = new MemoryStream();
        Varint(trainer, 3 << 3);
        Varint(trainer, 2);   // model_type BPE
        Field(model, 2, trainer.ToArray());
        var normalizer = new MemoryStream();
        Field(normalizer, 1, "identity"u8.ToArray());
        Field(model, 3, normalizer.ToArray());
        return model.ToArray();
    }

    private static void Field(Stream s, int field, byte[] bytes)
    {
        Varint(s, (ulong)(field << 3 | 2));
        Varint(s, (ulong)bytes.Length);
        s.Write(bytes);
    }

    private static void Varint(Stream s, ulong value)
    {
        for (; value >= 0x80; value >>= 7) s.WriteByte((byte)(value | 0x80));
        s.WriteByte((byte)value);
    }

    /// <summary>llama2.c's tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length, bytes (▁ as ' ').</summary>
    private static byte[] Llama2cTokenizerSeed()
    {
        var s = new MemoryStream();
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(word, 8);
        s.Write(word);
        foreach (var (piece, score, _) in Pieces)
        {
            byte[] text = Encoding.UTF8.GetBytes(piece.Replace('\u2581', ' '));
            BinaryPrimitives.WriteSingleLittleEndian(word, score);
            s.Write(word);
            BinaryPrimitives.WriteInt32LittleEndian(word, text.Length);
            s.Write(word);
            s.Write(text);
        }
        return s.ToArray();
    }
}
