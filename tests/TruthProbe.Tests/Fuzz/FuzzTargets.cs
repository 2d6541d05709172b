using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using TruthProbe.Cli;
using TruthProbe.Formats;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Tests.Imaging;
using static TruthProbe.Tests.Fuzz.Mutations;

namespace TruthProbe.Tests.Fuzz;

/// <summary>
/// Every format truthprobe reads, each with a valid seed file written here (or taken from the shared models for
/// llama2.c and SentencePiece, whose writers are not ours), its malformed variants and the verbs that read it.
/// </summary>
public static class FuzzTargets
{
    /// <summary>A Llama with a 16-token vocabulary, so that a tokenizer.json of 16 pieces covers it.</summary>
    private static readonly ModelConfig Tiny = new()
    {
        Architecture = "llama", Layers = 2, DModel = 16, Heads = 2, KvHeads = 1, HeadDim = 8, Ffn = 24, Vocab = 16,
        MaxContext = 2048, BosId = 1, EosIds = [2],
    };

    private static readonly string[] Pieces =
        ["<unk>", "<s>", "</s>", "\u2581", "a", "b", "c", "\u2581a", "\u2581b", "ab", "ba", "\u2581ab", "\u2581c", "ca", "bc", "\u2581ba"];

    public static IReadOnlyList<FuzzTarget> All(string? shared) =>
    [
        Config(), Safetensors(), TokenizerJson(), Gguf(), NpyMap(), CsvMap(), ScoreRows(), HaluEvalRows(),
        PopeQuestions(), PopeAnswers(), ChairCaptions(shared), ChairGroundTruth(shared),
        Llama2cModel(shared), Llama2cTokenizer(shared), SentencePieceModel(shared), Png(), Jpeg(),
    ];

    private static readonly FuzzCommand Inspect = FuzzCommand.Cli("inspect", "{dir}/m") with { ReadsValues = false };
    // The first and last token ids, so that the embedding rows the NaN variants damage are read.
    private static readonly FuzzCommand Trace = FuzzCommand.Cli("trace", "{dir}/m", "--token-ids", "0,4,15", "--hooks", "logits", "--out", "{out}.safetensors");

    private static void WriteModel(string dir, bool tokenizer)
    {
        RandomModel.WriteHf(Path.Combine(dir, "m"), Tiny, seed: 7, WeightDType.F32);
        if (tokenizer) File.WriteAllText(Path.Combine(dir, "m", "tokenizer.json"), TokenizerJsonText());
    }

    private static string TokenizerJsonText()
    {
        var vocab = new JsonObject();
        for (int i = 0; i < Pieces.Length; i++) vocab[Pieces[i]] = i;
        JsonObject Added(int id) => new() { ["id"] = id, ["content"] = Pieces[id], ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true };
        JsonObject Metaspace() => new() { ["type"] = "Metaspace", ["replacement"] = "\u2581", ["prepend_scheme"] = "first", ["split"] = false };
        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(Added(0), Added(1), Added(2)),
            ["normalizer"] = null,
            ["pre_tokenizer"] = Metaspace(),
            ["post_processor"] = null,
            ["decoder"] = Metaspace(),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["unk_token"] = "<unk>", ["fuse_unk"] = true, ["byte_fallback"] = false, ["vocab"] = vocab,
                ["merges"] = new JsonArray(new JsonArray("\u2581", "a"), new JsonArray("\u2581", "b"), new JsonArray("a", "b"), new JsonArray("b", "a")),
            },
        }.ToJsonString();
    }

    private static FuzzTarget Config() => new("config.json", "m/config.json",
        dir => { WriteModel(dir, tokenizer: false); return File.ReadAllBytes(Path.Combine(dir, "m", "config.json")); },
        // An empty eos list is how a config says the model has no end token; rope_theta is a float that happens to be whole.
        seed => Json(JsonNode.Parse(seed)!, new HashSet<string> { "torch_dtype", "transformers_version" },
            valid: new HashSet<string> { "eos_token_id = []", "rope_theta = 1.5" }),
        [Inspect, Trace]);

    private static FuzzTarget Safetensors() => new("safetensors", "m/model.safetensors",
        dir => { WriteModel(dir, tokenizer: false); return File.ReadAllBytes(Path.Combine(dir, "m", "model.safetensors")); },
        SafetensorsVariants, [Inspect, Trace]);

    /// <summary>safetensors: u64 header length, the JSON header, the data; offsets are relative to the data start.</summary>
    private static IEnumerable<FuzzVariant> SafetensorsVariants(byte[] seed)
    {
        long headerLength = (long)Read(seed, 0, 8);
        int dataStart = 8 + (int)headerLength;
        var header = JsonNode.Parse(seed.AsSpan(8, (int)headerLength))!.AsObject();
        byte[] data = seed[dataStart..];
        byte[] Pack(string json)
        {
            byte[] text = Encoding.UTF8.GetBytes(json);
            return [.. BitConverter.GetBytes((ulong)text.Length), .. text, .. data];
        }
        byte[] PackNode(JsonNode node) => Pack(node.ToJsonString());
        foreach (var v in Json(header, new HashSet<string> { "__metadata__" }, text => Pack(text)[..]))
            yield return v;
        foreach (var v in IntegerExtremes(seed, 0, 8, "header length")) yield return v;
        yield return new FuzzVariant("header length - 1", WithInteger(seed, 0, 8, (ulong)headerLength - 1));
        yield return new FuzzVariant("header length + 1", WithInteger(seed, 0, 8, (ulong)headerLength + 1));
        var tensors = header.Where(e => e.Key != "__metadata__").ToList();
        var ranges = tensors.Select(t => t.Value!["data_offsets"]!.AsArray().Select(n => n!.GetValue<long>()).ToArray()).ToList();
        foreach (var v in Truncations(seed, [4, 8, dataStart - 1, dataStart, .. ranges.SelectMany(r => new[] { dataStart + r[0] + 1, dataStart + r[1] - 1 })]))
            yield return v;
        yield return new FuzzVariant("trailing byte", [.. seed, 0]);
        foreach (var (name, _) in tensors.Take(2))
            foreach (string dtype in new[] { "F16", "BF16", "F64", "I32", "U8", "BOOL", "F8_E4M3", "Q4" })
            {
                var copy = header.DeepClone().AsObject();
                copy[name]!["dtype"] = dtype;
                yield return new FuzzVariant($"{name} relabelled {dtype}", PackNode(copy));
            }
        var overlap = header.DeepClone().AsObject();
        overlap[tensors[1].Key]!["data_offsets"] = tensors[0].Value!["data_offsets"]!.DeepClone();
        yield return new FuzzVariant("two tensors on one range", PackNode(overlap));
        var (oblong, oblongTensor) = tensors.First(t => t.Value!["shape"]!.AsArray() is [var rows, var columns] && rows!.GetValue<long>() != columns!.GetValue<long>());
        var swapped = header.DeepClone().AsObject();
        swapped[oblong]!["shape"] = new JsonArray(oblongTensor!["shape"]!.AsArray().Reverse().Select(n => (JsonNode?)n!.DeepClone()).ToArray());
        yield return new FuzzVariant($"{oblong} shape transposed", PackNode(swapped));
        foreach (var (range, (name, _)) in ranges.Zip(tensors).Take(3).Append((ranges[^1], tensors[^1])))
        {
            yield return new FuzzVariant($"{name}[0] = NaN", WithFloat(seed, dataStart + range[0], float.NaN), ValuesOnly: true);
            yield return new FuzzVariant($"{name}[last] = +Inf", WithFloat(seed, dataStart + range[1] - 4, float.PositiveInfinity), ValuesOnly: true);
        }
        foreach (var v in ByteFlips(seed, 24, 11)) yield return v;
    }

    private static FuzzTarget TokenizerJson() => new("tokenizer.json", "m/tokenizer.json",
        dir => { WriteModel(dir, tokenizer: true); return File.ReadAllBytes(Path.Combine(dir, "m", "tokenizer.json")); },
        // Hugging Face's own reader ignores "version"; ours also leaves a BPE's "decoder" unread (decoding follows the
        // model type and pre-tokenizer), so neither can make our output wrong.
        seed => Json(JsonNode.Parse(seed)!, new HashSet<string> { "version", "decoder" }),
        [Inspect, FuzzCommand.Cli("generate", "{dir}/m", "--prompt", "ab ba c", "--max-new-tokens", "3")]);

    private static FuzzTarget Gguf() => new("gguf", "m.gguf",
        dir =>
        {
            WriteModel(dir, tokenizer: true);
            int code = CliMain.Run(["convert", Path.Combine(dir, "m"), "--out", Path.Combine(dir, "m.gguf")], TextWriter.Null, TextWriter.Null);
            if (code != 0) throw new InvalidOperationException($"convert to GGUF failed with exit {code}");
            Directory.Delete(Path.Combine(dir, "m"), recursive: true);
            return File.ReadAllBytes(Path.Combine(dir, "m.gguf"));
        },
        GgufVariants,
        [FuzzCommand.Cli("inspect", "{dir}/m.gguf") with { ReadsValues = false },
            FuzzCommand.Cli("trace", "{dir}/m.gguf", "--token-ids", "0,4,15", "--hooks", "logits", "--out", "{out}.safetensors")]);

    /// <summary>GGUF: every structural integer (counts, lengths, types, dims, offsets) at its extremes, truncations at field boundaries, relabelled tensor types, an inserted general.alignment, NaN data.</summary>
    private static IEnumerable<FuzzVariant> GgufVariants(byte[] seed)
    {
        var layout = GgufLayout.Parse(seed);
        foreach (var field in layout.Fields)
            foreach (var v in IntegerExtremes(seed, field.Offset, field.Size, field.Name, mayPass: field.IsValue))
                yield return v;
        foreach (var v in Truncations(seed, layout.Fields.Where(f => !f.IsValue).Select(f => f.Offset).Append(layout.DataStart).Append(layout.DataStart + 1).Append(seed.Length - 1)))
            yield return v;
        foreach (var tensor in layout.Fields.Where(f => f.Name.EndsWith(".type", StringComparison.Ordinal) && f.Name.StartsWith("tensor", StringComparison.Ordinal)).Take(3))
            foreach (uint type in new uint[] { 1, 30, 8, 2, 99 })
                yield return new FuzzVariant($"{tensor.Name} = {type} (relabelled)", WithInteger(seed, tensor.Offset, 4, type));
        foreach (ulong alignment in new ulong[] { 1, 3, 0, 64, 1UL << 31 })
            yield return new FuzzVariant($"general.alignment = {alignment} inserted", layout.WithAlignment(seed, (uint)alignment));
        yield return new FuzzVariant("first tensor[0] = NaN", WithFloat(seed, layout.DataStart, float.NaN), ValuesOnly: true);
        yield return new FuzzVariant("trailing 64 bytes", [.. seed, .. new byte[64]]);
        foreach (var v in ByteFlips(seed, 24, 13)) yield return v;
    }

    private static IReadOnlyList<FuzzCommand> MapCommands(string ext) =>
    [
        FuzzCommand.Cli("compare", $"{{dir}}/map.{ext}", "{dir}/good.npy", "--bootstrap", "10", "--permutations", "10", "--out", "{out}"),
        FuzzCommand.Cli("gates", "--scores", $"{{dir}}/map.{ext}", "--mode", "contrast", "--lambda", "2", "--out", "{out}.npy"),
    ];

    private static readonly double[] MapValues = [0.61, 0.55, 0.72, 0.49, 0.66, 0.58, 0.81, 0.52];

    private static void WriteGoodMap(string dir) =>
        Npy.WriteFloat64(Path.Combine(dir, "good.npy"), MapValues.Select(v => 1 - v).ToArray(), 2, 4);

    private static FuzzTarget NpyMap() => new("npy", "map.npy",
        dir =>
        {
            WriteGoodMap(dir);
            Npy.WriteFloat64(Path.Combine(dir, "map.npy"), MapValues, 2, 4);
            return File.ReadAllBytes(Path.Combine(dir, "map.npy"));
        },
        NpyVariants, MapCommands("npy"));

    /// <summary>.npy: magic, version, u16 header length, a Python dict literal padded with spaces, the data.</summary>
    private static IEnumerable<FuzzVariant> NpyVariants(byte[] seed)
    {
        int headerLength = BinaryPrimitives.ReadUInt16LittleEndian(seed.AsSpan(8));
        string header = Encoding.ASCII.GetString(seed, 10, headerLength);
        byte[] data = seed[(10 + headerLength)..];
        byte[] With(string newHeader, byte[]? body = null)
        {
            string padded = newHeader.TrimEnd('\n', ' ');
            padded += new string(' ', (64 - (10 + padded.Length + 1) % 64) % 64) + "\n";
            return [.. seed[..8], .. BitConverter.GetBytes((ushort)padded.Length), .. Encoding.ASCII.GetBytes(padded), .. body ?? data];
        }
        (string From, string To, bool MayPass)[] edits =
        [
            ("'<f8'", "'<f4'", false), ("'<f8'", "'>f8'", true), ("'<f8'", "'<i8'", true), ("'<f8'", "'|b1'", false),
            ("'<f8'", "'<U8'", false), ("'<f8'", "'<c16'", false), ("'<f8'", "'|O'", false), ("'<f8'", "'<f16'", false), ("'<f8'", "5", false),
            ("False", "True", true), ("False", "'no'", false),
            ("(2, 4)", "()", false), ("(2, 4)", "(8,)", false), ("(2, 4)", "(2, 4, 1)", false), ("(2, 4)", "(0, 4)", false),
            ("(2, 4)", "(-1, 4)", false), ("(2, 4)", "(2, -4)", false), ("(2, 4)", "(4294967296, 4)", false),
            ("(2, 4)", "(4611686018427387904, 4611686018427387904)", false), ("(2, 4)", "('a', 4)", false), ("(2, 4)", "(1e3, 4)", false),
            ("(2, 4)", "(2, 4", false), ("(2, 4)", "(4, 2)", true), ("'shape'", "'shap'", false), ("{", "[", false),
        ];
        foreach (var (from, to, mayPass) in edits)
            yield return new FuzzVariant($"header {from} -> {to}", With(header.Replace(from, to)), mayPass);
        yield return new FuzzVariant("header with lone surrogate bytes", With(header.Replace("'descr'", "'descr\u00ff'")));
        foreach (var v in IntegerExtremes(seed, 8, 2, "header length")) yield return v;
        foreach (byte version in new byte[] { 0, 2, 3, 4, 255 })
            yield return new FuzzVariant($"version {version}", WithInteger(seed, 6, 1, version), MayPass: version == 2);
        yield return new FuzzVariant("bad magic", WithInteger(seed, 1, 1, (byte)'X'));
        foreach (var v in Truncations(seed, [6, 8, 10, 10 + headerLength - 1, 10 + headerLength, 10 + headerLength + 12])) yield return v;
        yield return new FuzzVariant("trailing 8 bytes", [.. seed, .. new byte[8]]);
        yield return new FuzzVariant("a NaN score", WithInteger(seed, 10 + headerLength + 8, 8, BitConverter.DoubleToUInt64Bits(double.NaN)), MayPass: true);
        yield return new FuzzVariant("a +Inf score", WithInteger(seed, 10 + headerLength + 8, 8, BitConverter.DoubleToUInt64Bits(double.PositiveInfinity)));
        yield return new FuzzVariant("all NaN", With(header, Enumerable.Repeat(BitConverter.GetBytes(double.NaN), 8).SelectMany(b => b).ToArray()));
    }

    private static FuzzTarget CsvMap() => new("csv map", "map.csv",
        dir =>
        {
            WriteGoodMap(dir);
            var text = new StringBuilder("layer,head,accuracy,f1\n");
            for (int i = 0; i < MapValues.Length; i++) text.Append(CultureInfo.InvariantCulture, $"{i / 4},{i % 4},{MapValues[i]},0.5\n");
            File.WriteAllText(Path.Combine(dir, "map.csv"), text.ToString());
            return File.ReadAllBytes(Path.Combine(dir, "map.csv"));
        },
        CsvVariants, MapCommands("csv"));

    private static IEnumerable<FuzzVariant> CsvVariants(byte[] seed)
    {
        string text = Encoding.UTF8.GetString(seed);
        string[] lines = text.TrimEnd('\n').Split('\n');
        FuzzVariant Line(int index, string replacement, bool mayPass = false) =>
            new($"line {index + 1} = '{(replacement.Length > 40 ? replacement[..40] + "..." : replacement)}'",
                Encoding.UTF8.GetBytes(string.Join('\n', lines.Select((l, i) => i == index ? replacement : l)) + "\n"), mayPass);
        string[] cells = ["x", "", "1.5", "-1", "2147483648", "1e9", "NaN", "inf", "-inf", "0x10", "1,2", "\"0\"", "1e400"];
        for (int column = 0; column < 3; column++)
            foreach (string cell in cells)
            {
                string[] parts = lines[2].Split(',');
                parts[column] = cell;
                // Any finite number is a score, an empty or NaN score a missing head (pandas writes NaN as an empty cell); quoted fields are CSV.
                bool mayPass = (column == 2 && cell is "NaN" or "" or "1.5" or "-1" or "1e9" or "2147483648") || cell == "\"0\"";
                yield return Line(2, string.Join(',', parts), mayPass);
            }
        yield return Line(0, "layer,head", false);
        yield return Line(0, "a,b,c", false);
        yield return Line(0, "head,layer,accuracy,f1", true);
        yield return Line(2, lines[1], false);
        yield return Line(2, "0,1", false);
        yield return Line(2, "0,1,0.5,0.5,9,9", true);
        yield return Line(2, "1000000,1000000,0.5,0.5", false);
        yield return Line(2, "0,1,0.5\u00ff", false);
        yield return new FuzzVariant("invalid UTF-8", [.. seed[..30], 0xC3, 0x28, .. seed[30..]]);
        yield return new FuzzVariant("header only", Encoding.UTF8.GetBytes(lines[0] + "\n"));
        // A head with no row is a missing score (compare leaves it out; gates needs every head and refuses).
        yield return new FuzzVariant("one row missing", Encoding.UTF8.GetBytes(string.Join('\n', lines[..^1]) + "\n"), MayPass: true);
        yield return new FuzzVariant("BOM", [0xEF, 0xBB, 0xBF, .. seed], MayPass: true);
        // CSV has no length or count: a cut that leaves whole numbers is a smaller valid map, so only crashes count.
        foreach (var v in Truncations(seed, Enumerable.Range(1, seed.Length - 1).Where(i => i % 7 == 0).Select(i => (long)i)))
            yield return v with { MayPass = v.Bytes.Length > 0 };
    }

    /// <summary>JSON Lines: the first record's values mutated (as JSON), and line-level damage.</summary>
    private static IEnumerable<FuzzVariant> JsonLinesVariants(byte[] seed, ISet<string>? ignored = null, ISet<string>? valid = null)
    {
        string[] lines = Encoding.UTF8.GetString(seed).TrimEnd('\n').Split('\n');
        string rest = string.Concat(lines.Skip(1).Select(l => l + "\n"));
        foreach (var v in Json(JsonNode.Parse(lines[0])!, ignored, first => Encoding.UTF8.GetBytes(first + "\n" + rest), valid))
            if (v.Name.Length > 0 && !v.Name.StartsWith(" =", StringComparison.Ordinal)) yield return v;
        foreach (string line in new[] { "5", "[]", "\"x\"", "null", "{", "{\"a\": 1} {}" })
            yield return new FuzzVariant($"first line '{line}'", Encoding.UTF8.GetBytes(line + "\n" + rest));
        yield return new FuzzVariant("blank lines", Encoding.UTF8.GetBytes("\n\n" + string.Join("\n\n", lines) + "\n"), MayPass: true);
        yield return new FuzzVariant("no final newline", Encoding.UTF8.GetBytes(string.Join('\n', lines)), MayPass: true);
        yield return new FuzzVariant("CRLF", Encoding.UTF8.GetBytes(string.Join("\r\n", lines) + "\r\n"), MayPass: true);
        yield return new FuzzVariant("raw 0xFF in first line", [0xFF, .. seed]);
        yield return new FuzzVariant("1 MiB line", Encoding.UTF8.GetBytes(lines[0][..^1] + $", \"pad\": \"{new string('x', 1 << 20)}\"}}\n" + rest));
        yield return new FuzzVariant("a first line repeated", Encoding.UTF8.GetBytes(lines[0] + "\n" + string.Join('\n', lines) + "\n"), MayPass: true);
        foreach (var v in Truncations(seed, [seed.Length / 2, seed.Length - 2, lines[0].Length / 2, lines[0].Length]))
            yield return v with { MayPass = v.Bytes.Length > 0 && v.Bytes[^1] is (byte)'\n' or (byte)'}' };
    }

    private static readonly string[] ProbingRows =
    [
        """{"context": "ab ba", "question": "a?", "answer": "ab", "label": "gold", "item": 0}""",
        """{"context": "ab ba", "question": "a?", "answer": "c", "label": "hallucinated", "item": 0}""",
        """{"context": "ba c", "question": "b?", "answer": "ba", "label": "gold", "item": 1}""",
        """{"context": "ba c", "question": "b?", "answer": "ab", "label": "hallucinated", "item": 1}""",
        """{"context": "c ab", "question": "c?", "answer": "c", "label": "gold", "item": 2}""",
        """{"context": "c ab", "question": "c?", "answer": "ba", "label": "hallucinated", "item": 2}""",
        """{"context": "a b", "question": "ab?", "answer": "a", "label": "gold", "item": 3}""",
        """{"context": "a b", "question": "ab?", "answer": "b", "label": "hallucinated", "item": 3}""",
    ];

    private static FuzzTarget ScoreRows() => new("score jsonl", "rows.jsonl",
        dir =>
        {
            WriteModel(dir, tokenizer: true);
            File.WriteAllText(Path.Combine(dir, "rows.jsonl"), string.Join('\n', ProbingRows) + "\n");
            return File.ReadAllBytes(Path.Combine(dir, "rows.jsonl"));
        },
        seed => JsonLinesVariants(seed, new HashSet<string> { "item" }),
        [FuzzCommand.Cli("score", "{dir}/m", "--data", "{dir}/rows.jsonl", "--folds", "2", "--no-control", "--out", "{out}")]);

    private static FuzzTarget HaluEvalRows() => new("halueval jsonl", "qa.jsonl",
        dir =>
        {
            WriteModel(dir, tokenizer: true);
            File.WriteAllText(Path.Combine(dir, "qa.jsonl"), string.Concat(Enumerable.Range(0, 3).Select(i =>
                $"{{\"knowledge\": \"ab ba {i}\", \"question\": \"a b?\", \"right_answer\": \"ab\", \"hallucinated_answer\": \"ba c\"}}\n")));
            return File.ReadAllBytes(Path.Combine(dir, "qa.jsonl"));
        },
        seed => JsonLinesVariants(seed),
        [FuzzCommand.Cli("eval", "halueval", "{dir}/m", "--data", "{dir}/qa.jsonl", "--skip-first", "0", "--seeds", "1", "--out", "{out}")]);

    private static readonly FuzzCommand Pope = FuzzCommand.Cli("eval", "pope", "--questions", "{dir}/q_adversarial.jsonl", "--answers", "{dir}/a.jsonl", "--out", "{out}");

    private static byte[] WritePope(string dir, string file)
    {
        var q = new StringBuilder();
        var a = new StringBuilder();
        for (int i = 1; i <= 4; i++)
        {
            q.Append(CultureInfo.InvariantCulture, $"{{\"question_id\": {i}, \"image\": \"COCO_val2014_00000000000{i}.jpg\", \"text\": \"Is there a dog in the image?\", \"label\": \"{(i % 2 == 0 ? "yes" : "no")}\"}}\n");
            a.Append(CultureInfo.InvariantCulture, $"{{\"question_id\": {i}, \"text\": \"{(i < 3 ? "Yes" : "No")}, there is.\"}}\n");
        }
        File.WriteAllText(Path.Combine(dir, "q_adversarial.jsonl"), q.ToString());
        File.WriteAllText(Path.Combine(dir, "a.jsonl"), a.ToString());
        return File.ReadAllBytes(Path.Combine(dir, file));
    }

    private static FuzzTarget PopeQuestions() => new("pope questions", "q_adversarial.jsonl",
        dir => WritePope(dir, "q_adversarial.jsonl"), seed => JsonLinesVariants(seed, new HashSet<string> { "image" }), [Pope]);

    private static FuzzTarget PopeAnswers() => new("pope answers", "a.jsonl",
        dir => WritePope(dir, "a.jsonl"), seed => JsonLinesVariants(seed), [Pope]);

    private static readonly FuzzCommand Chair = FuzzCommand.Cli("eval", "chair", "--captions", "{dir}/captions.jsonl", "--gt", "{dir}/gt.json", "--out", "{out}");

    private static byte[] WriteChair(string dir, string file)
    {
        File.WriteAllText(Path.Combine(dir, "captions.jsonl"),
            "{\"image_id\": 1, \"caption\": \"A dog and a cat on a couch.\"}\n{\"image_id\": 2, \"caption\": \"A man riding a horse.\"}\n");
        File.WriteAllText(Path.Combine(dir, "gt.json"), "{\"1\": [\"dog\", \"couch\"], \"2\": [\"person\", \"horse\", \"car\"]}");
        return File.ReadAllBytes(Path.Combine(dir, file));
    }

    private static Func<string?> NeedsShared(string? shared, params string[] parts) => () =>
        shared != null && File.Exists(Path.Combine([shared, .. parts])) ? null : $"../shared/{string.Join('/', parts)} is absent";

    /// <summary>An image id may be a string: COCO file names are, and so may a plain number be ("7").</summary>
    private static FuzzTarget ChairCaptions(string? shared) => new("chair captions", "captions.jsonl",
        dir => WriteChair(dir, "captions.jsonl"), seed => JsonLinesVariants(seed, valid: new HashSet<string> { "image_id = \"7\"" }), [Chair])
    { Unavailable = NeedsShared(shared, "data", "chair", "chair_word_maps.json") };

    private static FuzzTarget ChairGroundTruth(string? shared) => new("chair gt", "gt.json",
        dir => WriteChair(dir, "gt.json"), seed => Json(JsonNode.Parse(seed)!), [Chair])
    { Unavailable = NeedsShared(shared, "data", "chair", "chair_word_maps.json") };

    private static byte[] CopyShared(string? shared, string dir, string to, params string[] parts)
    {
        File.Copy(Path.Combine([shared!, .. parts]), Path.Combine(dir, to));
        return File.ReadAllBytes(Path.Combine(dir, to));
    }

    private static readonly FuzzCommand Llama2cGenerate =
        FuzzCommand.Cli("generate", "{dir}/model.bin", "--tokenizer", "{dir}/tok.bin", "--prompt", "Once upon", "--max-new-tokens", "2");

    private static FuzzTarget Llama2cModel(string? shared) => new("llama2.c bin", "model.bin",
        dir =>
        {
            CopyShared(shared, dir, "tok.bin", "models", "stories260K", "tok512.bin");
            return CopyShared(shared, dir, "model.bin", "models", "stories260K", "stories260K.bin");
        },
        seed =>
        {
            var header = Enumerable.Range(0, 7).SelectMany(i => IntegerExtremes(seed, 4 * i, 4,
                new[] { "dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len" }[i]));
            var sign = new FuzzVariant("vocab_size negated (unshared classifier)", WithInteger(seed, 20, 4, (uint)-(int)Read(seed, 20, 4)));
            var nan = new FuzzVariant("token_embedding[0] = NaN", WithFloat(seed, 28, float.NaN), ValuesOnly: true);
            // The file ends with rms_final [dim] and the RoPE tables freq_cis_real/imag [seq_len, head_dim / 2] each,
            // which no one reads (RoPE is computed): the last weight used is rms_final's last.
            int dim = (int)Read(seed, 0, 4), headDim = dim / (int)Read(seed, 12, 4), seqLen = (int)Read(seed, 24, 4);
            var inf = new FuzzVariant("rms_final[last] = -Inf", WithFloat(seed, seed.Length - 4 - 4 * seqLen * headDim, float.NegativeInfinity), ValuesOnly: true);
            return header.Append(sign).Append(nan).Append(inf)
                .Concat(Truncations(seed, [4, 27, 28, 29, seed.Length / 2, seed.Length - 4]))
                .Append(new FuzzVariant("trailing 4 bytes", [.. seed, 0, 0, 0, 0]))
                .Concat(ByteFlips(seed, 16, 17, from: 28));
        },
        [FuzzCommand.Cli("inspect", "{dir}/model.bin", "--tokenizer", "{dir}/tok.bin") with { ReadsValues = false }, Llama2cGenerate])
    { Unavailable = NeedsShared(shared, "models", "stories260K", "stories260K.bin") };

    /// <summary>llama2.c tokenizer.bin: i32 max_token_length, then per token f32 score, i32 length, the bytes.</summary>
    private static FuzzTarget Llama2cTokenizer(string? shared) => new("llama2.c tokenizer", "tok.bin",
        dir =>
        {
            CopyShared(shared, dir, "model.bin", "models", "stories260K", "stories260K.bin");
            return CopyShared(shared, dir, "tok.bin", "models", "stories260K", "tok512.bin");
        },
        seed =>
        {
            var records = new List<long>();
            for (long at = 4; at + 8 <= seed.Length; at += 8 + (long)Read(seed, at + 4, 4)) records.Add(at);
            var picked = records.Take(3).Concat(records.Skip(records.Count / 2).Take(1)).Append(records[^1]).ToList();
            return IntegerExtremes(seed, 0, 4, "max_token_length")
                .Concat(picked.SelectMany(r => IntegerExtremes(seed, r + 4, 4, $"length of token at {r}")))
                .Concat(picked.Select(r => new FuzzVariant($"score of token at {r} = NaN", WithFloat(seed, r, float.NaN), MayPass: true)))
                .Concat(Truncations(seed, picked.Concat(picked.Select(r => r + 6))))
                .Concat(ByteFlips(seed, 16, 19));
        },
        [Llama2cGenerate])
    { Unavailable = NeedsShared(shared, "models", "stories260K", "tok512.bin") };

    private static FuzzTarget SentencePieceModel(string? shared) => new("sentencepiece", "tok.model",
        dir =>
        {
            CopyShared(shared, dir, "model.bin", "models", "stories260K", "stories260K.bin");
            return CopyShared(shared, dir, "tok.model", "models", "stories260K", "tok512.model");
        },
        seed => Truncations(seed, Enumerable.Range(1, seed.Length - 1).Where(i => i % 251 == 0 || i < 16).Select(i => (long)i))
            .Concat(Enumerable.Range(0, 12).Select(i => new FuzzVariant($"varint 0xFF run at {i * 613 % seed.Length}",
                [.. seed[..(i * 613 % seed.Length)], .. Enumerable.Repeat((byte)0xFF, 10), .. seed[(i * 613 % seed.Length)..]])))
            .Concat(ByteFlips(seed, 32, 23)),
        [FuzzCommand.Cli("generate", "{dir}/model.bin", "--tokenizer", "{dir}/tok.model", "--prompt", "Once upon", "--max-new-tokens", "2")])
    { Unavailable = NeedsShared(shared, "models", "stories260K", "tok512.model") };

    private static FuzzCommand LoadImage(string file) => FuzzCommand.Library("ImageFile.Load", dir => ImageFile.Load(Path.Combine(dir, file)));

    private static FuzzTarget Png() => new("png", "image.png",
        dir =>
        {
            byte[] rgb = Enumerable.Range(0, 4 * 3 * 3).Select(i => (byte)(i * 7)).ToArray();
            byte[] png = PngBuilder.Png(PngBuilder.Ihdr(4, 3, 8, 2), PngBuilder.Filter(rgb, 12, 3, 0));
            File.WriteAllBytes(Path.Combine(dir, "image.png"), png);
            return png;
        },
        PngVariants, [LoadImage("image.png")]);

    /// <summary>PNG: the signature, then chunks of u32 big-endian length, type, body, CRC.</summary>
    private static IEnumerable<FuzzVariant> PngVariants(byte[] seed)
    {
        var chunks = new List<(int At, int Length)>();
        for (int at = 8; at + 12 <= seed.Length; at += 12 + BinaryPrimitives.ReadInt32BigEndian(seed.AsSpan(at)))
            chunks.Add((at, BinaryPrimitives.ReadInt32BigEndian(seed.AsSpan(at))));
        byte[] BigEndian(int at, uint value)
        {
            byte[] copy = (byte[])seed.Clone();
            BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(at), value);
            return copy;
        }
        foreach (var (at, length) in chunks)
            foreach (uint value in new uint[] { 0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF }.Where(v => v != length))
                yield return new FuzzVariant($"chunk at {at} length = {value}", BigEndian(at, value));
        foreach (uint value in new uint[] { 0, 0x7FFFFFFF, 65536, 1 << 20 })
        {
            yield return new FuzzVariant($"IHDR width = {value}", BigEndian(16, value));
            yield return new FuzzVariant($"IHDR height = {value}", BigEndian(20, value));
        }
        foreach (var (offset, name, values) in new[] { (24, "bit depth", new byte[] { 0, 3, 16, 255 }), (25, "colour type", new byte[] { 1, 5, 7 }), (26, "compression", new byte[] { 1 }), (27, "filter", new byte[] { 1 }), (28, "interlace", new byte[] { 2 }) })
            foreach (byte value in values)
                yield return new FuzzVariant($"IHDR {name} = {value}", WithInteger(seed, offset, 1, value), MayPass: name == "bit depth" && value == 16);
        foreach (var (at, length) in chunks)
            yield return new FuzzVariant($"CRC of chunk at {at} flipped", WithInteger(seed, at + 8 + length, 1, (byte)(seed[at + 8 + length] ^ 1)));
        foreach (var v in Truncations(seed, chunks.SelectMany(c => new long[] { c.At, c.At + 4, c.At + 8, c.At + 8 + c.Length / 2, c.At + 8 + c.Length }).Append(4)))
            yield return v;
        foreach (var v in ByteFlips(seed, 32, 29, from: 33)) yield return v;
    }

    private static FuzzTarget Jpeg() => new("jpeg", "image.jpg",
        dir =>
        {
            byte[] jpeg = JpegBuilder.TwoBlockGrey();
            File.WriteAllBytes(Path.Combine(dir, "image.jpg"), jpeg);
            return jpeg;
        },
        JpegVariants, [LoadImage("image.jpg")]);

    /// <summary>JPEG: markers, each segment with a u16 big-endian length; the scan data after SOS.</summary>
    private static IEnumerable<FuzzVariant> JpegVariants(byte[] seed)
    {
        var segments = new List<(int At, byte Marker)>();
        for (int at = 2; at + 4 <= seed.Length && seed[at] == 0xFF && seed[at + 1] != 0xD9;)
        {
            segments.Add((at, seed[at + 1]));
            int length = BinaryPrimitives.ReadUInt16BigEndian(seed.AsSpan(at + 2));
            if (seed[at + 1] == 0xDA) break;
            at += 2 + length;
        }
        byte[] BigEndian16(int at, ushort value)
        {
            byte[] copy = (byte[])seed.Clone();
            BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(at), value);
            return copy;
        }
        foreach (var (at, marker) in segments)
            foreach (ushort value in new ushort[] { 0, 1, 2, 0xFFFF })
                yield return new FuzzVariant($"segment {marker:X2} at {at} length = {value}", BigEndian16(at + 2, value));
        foreach (var (at, _) in segments.Where(s => s.Marker == 0xC0))
        {
            foreach (ushort value in new ushort[] { 0, 1, 0xFFFF })
            {
                yield return new FuzzVariant($"SOF height = {value}", BigEndian16(at + 5, value), MayPass: value == 1);
                yield return new FuzzVariant($"SOF width = {value}", BigEndian16(at + 7, value), MayPass: value == 1);
            }
            foreach (byte value in new byte[] { 0, 2, 4, 255 })
                yield return new FuzzVariant($"SOF components = {value}", WithInteger(seed, at + 9, 1, value));
            yield return new FuzzVariant("SOF precision = 12", WithInteger(seed, at + 4, 1, 12));
            yield return new FuzzVariant("SOF sampling 0x00", WithInteger(seed, at + 11, 1, 0));
            yield return new FuzzVariant("SOF quant table 3", WithInteger(seed, at + 12, 1, 3));
        }
        foreach (var (at, marker) in segments)
            yield return new FuzzVariant($"marker {marker:X2} -> C2 (progressive)", WithInteger(seed, at + 1, 1, 0xC2), MayPass: true);
        // Only the end-of-image marker cut: every pixel is there, and libjpeg (under Pillow) decodes it with a warning.
        foreach (var v in Truncations(seed, segments.SelectMany(s => new long[] { s.At, s.At + 2, s.At + 4 }).Append(seed.Length - 2).Append(seed.Length - 1)))
            yield return v with { MayPass = v.Bytes.Length >= seed.Length - 2 };
        foreach (var v in ByteFlips(seed, 32, 31, from: 2)) yield return v;
    }
}
