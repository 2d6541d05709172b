using System.Text;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Probing;
using TruthProbe.Tests.Common;
using TruthProbe.Tests.Imaging;
using TruthProbe.Vision;

namespace TruthProbe.Tests.Vision;

/// <summary>
/// <c>score</c> (and <c>attention</c>) on a tiny llava-hf checkpoint with PNGs written here: the activations at the
/// answer's last token against the float64 reference of <see cref="LlavaReference"/>, and the shared image encoding
/// against encoding every row alone.
/// </summary>
public sealed class LlavaScoreTests
{
    internal const int ImageToken = 60, Assistant = 22, Size = 56;
    private static readonly double[] Mean = [0.48145466, 0.4578275, 0.40821073], Std = [0.26862954, 0.26130258, 0.27577711];

    /// <summary>A tiny LLaVA at image size 56 (16 image tokens) with a CLIP preprocessor at 56 and a word-level tokenizer.</summary>
    internal sealed class Fixture : IDisposable
    {
        public readonly TempDir Tmp = new();
        public readonly string Folder, Images;
        public readonly LlavaConfig Config = LlavaModelTests.Tiny(Size);

        public Fixture()
        {
            Folder = Tmp.File("llava");
            LlavaCheckpoint.WriteRandom(Folder, Config, LlavaLayout.Hub, 23, WeightDType.F32);
            File.WriteAllText(Path.Combine(Folder, LlavaModel.PreprocessorFile), $$$"""
                {"crop_size": {"height": {{{Size}}}, "width": {{{Size}}}}, "do_center_crop": true, "do_convert_rgb": true,
                 "do_normalize": true, "do_rescale": true, "do_resize": true, "image_mean": [{{{string.Join(", ", Mean)}}}],
                 "image_processor_type": "CLIPImageProcessor", "image_std": [{{{string.Join(", ", Std)}}}],
                 "resample": 3, "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": {{{Size}}}}}
                """);
            WriteTokenizer(Folder);
            Images = Tmp.File("images");
            Directory.CreateDirectory(Images);
            foreach (var (name, seed) in new[] { ("a.png", 1UL), ("b.png", 2UL), ("c.png", 3UL) })
                File.WriteAllBytes(Path.Combine(Images, name), Png(Rgb(seed)));
        }

        public void Dispose() => Tmp.Dispose();
    }

    /// <summary>Word-level: "w{id}" is id, ASSISTANT: is 22, <c>&lt;image&gt;</c> the added token 60.</summary>
    internal static void WriteTokenizer(string folder)
    {
        string vocab = string.Join(",", Enumerable.Range(1, 63).Where(id => id != ImageToken).Select(id => $"\"{(id == Assistant ? "ASSISTANT:" : $"w{id}")}\":{id}"));
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), $$$"""
            {"version":"1.0","added_tokens":[{"id":0,"content":"[UNK]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
              {"id":{{{ImageToken}}},"content":"<image>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
             "normalizer":null,"pre_tokenizer":{"type":"WhitespaceSplit"},"post_processor":null,"decoder":null,
             "model":{"type":"WordLevel","vocab":{"[UNK]":0,{{{vocab}}}},"unk_token":"[UNK]"}}
            """);
    }

    /// <summary>Seeded 56x56 RGB bytes: the preprocessor resizes 56 to 56 as a copy, so these are the pixels the tower sees.</summary>
    internal static byte[] Rgb(ulong seed)
    {
        var rng = new XorShiftRandom(seed);
        return Enumerable.Range(0, 3 * Size * Size).Select(_ => (byte)(rng.NextUInt64() >> 56)).ToArray();
    }

    private static byte[] Png(byte[] rgb) => PngBuilder.Png(PngBuilder.Ihdr(Size, Size, 8, 2), PngBuilder.Filter(rgb, 3 * Size, 3, 0));

    /// <summary>rescale then normalise, channels first, by the published formula in float64 (the reference's input).</summary>
    internal static float[] Normalised(byte[] rgb)
    {
        int plane = Size * Size;
        var chw = new float[3 * plane];
        for (int i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++) chw[c * plane + i] = (float)((rgb[3 * i + c] / 255.0 - Mean[c]) / Std[c]);
        return chw;
    }

    /// <summary>Ten rows over three images (a used four times, out of order), labels alternating; question and answer word ids.</summary>
    internal static readonly (string Image, int[] Question, int[] Answer)[] Rows =
    [
        ("a.png", [10, 11], [30]), ("b.png", [12], [31, 32]), ("a.png", [13, 14, 15], [33]), ("c.png", [10], [34, 35]),
        ("b.png", [16, 17], [36]), ("a.png", [18], [37, 38, 39]), ("c.png", [19, 20], [40]), ("a.png", [21], [41]),
        ("b.png", [23, 24], [42, 43]), ("c.png", [25], [44]),
    ];

    internal static string Words(int[] ids) => string.Join(' ', ids.Select(id => $"w{id}"));

    /// <summary>The rows in the RLHF-V layout (image_path), every third with a plain image field instead.</summary>
    internal static string WriteRows(TempDir tmp, string name = "rows.jsonl")
    {
        var sb = new StringBuilder();
        for (int i = 0; i < Rows.Length; i++)
        {
            var (image, q, a) = Rows[i];
            var row = new JsonObject { ["question_id"] = i, ["question"] = Words(q), ["answer"] = Words(a), ["image_id"] = image[..1], ["label"] = i % 2 == 0 ? "gold" : "hallucinated" };
            row[i % 3 == 2 ? "image" : "image_path"] = image;
            sb.Append(row.ToJsonString()).Append('\n');
        }
        string path = tmp.File(name);
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    /// <summary>The ids the reference prompt gives: the image token (expanded), the question, ASSISTANT:, the answer.</summary>
    internal static int[] ImageIds(int row, int imageTokens) =>
        [.. Enumerable.Repeat(ImageToken, imageTokens), .. Rows[row].Question, Assistant, .. Rows[row].Answer];

    private static int[] TextIds(int row) => [.. Rows[row].Question, Assistant, .. Rows[row].Answer];

    internal static float[] LastZ(ActivationSet set, int row)
    {
        int width = set.Layers * set.Heads * set.HeadDim;
        return set.Values.AsSpan(row * width, width).ToArray();
    }

    /// <summary>max |actual - reference| over max |reference| of every layer's hook_z at the last position.</summary>
    internal static double RelativeToReference(float[] actual, LlavaReference.Result reference) => RelativeToReference(actual, reference.Z);

    /// <summary>The same against a reference's per-layer hook_z rows.</summary>
    internal static double RelativeToReference(float[] actual, IReadOnlyList<double[][]> referenceZ)
    {
        var expected = referenceZ.SelectMany(layer => layer[^1]).ToArray();
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.Max(Math.Abs), max = 0;
        for (int i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs(actual[i] - expected[i]));
        return max / scale;
    }

    private static CliRunner.Result Score(Fixture f, string rows, string outDir, params string[] extra) =>
        CliRunner.Run(["score", f.Folder, "--data", rows, "--out", outDir, "--folds", "2", "--no-control", .. extra]);

    [Fact]
    public void Score_ImageRows_MatchFloat64Reference_AndSharedEncodingIsBitIdenticalToEncodingEachRowAlone()
    {
        using var f = new Fixture();
        string rows = WriteRows(f.Tmp), outDir = f.Tmp.File("out");
        var r = Score(f, rows, outDir, "--images", f.Images);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var set = ActivationSet.Load(Path.Combine(outDir, ActivationCollector.FileName), null);
        Assert.Equal((Rows.Length, 2, 4, 16), (set.Rows, set.Layers, set.Heads, set.HeadDim));
        Assert.Equal(Enumerable.Range(0, Rows.Length).Select(i => (byte)(1 - i % 2)), set.Labels);

        using var model = LlavaModel.Load(f.Folder);
        int tokens = f.Config.ImageTokens;
        for (int i = 0; i < Rows.Length; i++)
        {
            // Each row alone: a fresh state, its image decoded and encoded for it.
            var pixels = model.ImagePreprocessor(AspectMode.Crop).Preprocess(ImageFile.Load(Path.Combine(f.Images, Rows[i].Image)));
            var capture = new ActivationCapture(f.Config.Text, ["blocks.*.attn.hook_z"], [-1]);
            model.Forward(model.NewState(), ImageIds(i, 1), pixels, capture);
            float[] alone = Enumerable.Range(0, 2).SelectMany(l => capture[HookNames.Name(HookKind.Z, l)].Data).ToArray();
            Assert.Equal(alone, LastZ(set, i));
        }
        foreach (int i in new[] { 0, 3 })   // a and c, the first and a later image
        {
            var reference = LlavaReference.Run(f.Folder, f.Config, Normalised(Rgb(Rows[i].Image == "a.png" ? 1UL : 3UL)), ImageIds(i, tokens));
            double error = RelativeToReference(LastZ(set, i), reference);
            Assert.True(error < 1e-4, $"row {i}: hook_z relative error {error:E2}");
        }

        var meta = set.Metadata;
        Assert.Equal("image", meta["image_mode"]);
        Assert.Equal("crop", meta["image_aspect"]);
        Assert.Equal(Path.GetFullPath(f.Images), meta["images_dir"]);
        Assert.Equal("3", meta["images_count"]);
        string lines = string.Concat(new[] { "a.png", "b.png", "c.png" }.Select(n => $"{n}\t{Hashing.Sha256File(Path.Combine(f.Images, n))}\n"));
        Assert.Equal(Hashing.Sha256(Encoding.UTF8.GetBytes(lines)), meta["images_sha256"]);
        Assert.Equal("<image>\n{question}\nASSISTANT: {answer}", meta["template"]);
        Assert.Equal("image", meta["data_layout"]);
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")))!;
        Assert.Equal("image", (string?)manifest["activations"]!["metadata"]!["image_mode"]);
        foreach (string file in new[] { "scores.csv", "scores.npy", "probe_weights.safetensors", "heatmap.png" })
            Assert.True(File.Exists(Path.Combine(outDir, file)), file);

        // The same run again reuses the activations; another aspect is another run: the fingerprint differs, so the activations are collected again.
        Assert.Contains("reused", Score(f, rows, outDir, "--images", f.Images).Stdout);
        var pad = Score(f, rows, outDir, "--images", f.Images, "--image-aspect", "pad");
        Assert.True(pad.ExitCode == 0, pad.Stderr);
        Assert.Contains($"collected {Rows.Length} row(s)", pad.Stdout);
    }

    [Fact]
    public void Score_ShardedByWholeImages_MergesToTheSingleRun_ByteForByte()
    {
        using var f = new Fixture();
        string rows = WriteRows(f.Tmp);
        Assert.Equal(0, Score(f, rows, f.Tmp.File("single"), "--images", f.Images).ExitCode);
        for (int k = 1; k <= 2; k++)
        {
            var part = Score(f, rows, f.Tmp.File($"part-{k}"), "--images", f.Images, "--shard", $"{k}/2");
            Assert.True(part.ExitCode == 0, part.Stderr);
        }
        // The rows of an image (a.png's four are rows 0, 2, 5 and 7) sit in one part: no image is encoded twice.
        var imagesOf = Enumerable.Range(1, 2).Select(k => ActivationSet.Load(f.Tmp.File($"part-{k}/{ActivationCollector.FileName}"), null).RowIds
            .Select(id => Rows[id].Image).ToHashSet()).ToList();
        Assert.Empty(imagesOf[0].Intersect(imagesOf[1]));
        Assert.Equal(3, imagesOf[0].Count + imagesOf[1].Count);
        var merged = CliRunner.Run("merge", f.Tmp.File("part-2"), f.Tmp.File("part-1"), "--out", f.Tmp.File("merged"));
        Assert.True(merged.ExitCode == 0, merged.Stderr);
        foreach (string file in new[] { ActivationCollector.FileName, "scores.csv", "scores.npy", "probe_weights.safetensors" })
            Assert.True(File.ReadAllBytes(f.Tmp.File($"single/{file}")).SequenceEqual(File.ReadAllBytes(f.Tmp.File($"merged/{file}"))), file + " differs");
    }

    [Fact]
    public void Score_BlackAndTextOnlyModes_MatchFloat64Reference()
    {
        using var f = new Fixture();
        string rows = WriteRows(f.Tmp);
        var black = Score(f, rows, f.Tmp.File("black"), "--image-mode", "black");
        Assert.True(black.ExitCode == 0, black.Stderr);
        var text = Score(f, rows, f.Tmp.File("text"), "--image-mode", "text-only");
        Assert.True(text.ExitCode == 0, text.Stderr);
        var blackSet = ActivationSet.Load(Path.Combine(f.Tmp.File("black"), ActivationCollector.FileName), null);
        var textSet = ActivationSet.Load(Path.Combine(f.Tmp.File("text"), ActivationCollector.FileName), null);
        Assert.Equal("black", blackSet.Metadata["image_mode"]);
        Assert.Equal("text-only", textSet.Metadata["image_mode"]);
        Assert.Equal("{question}\nASSISTANT: {answer}", textSet.Metadata["template"]);

        // Black: a 336x336 zero image, resized to the tower's 56 (still zero), then normalised: -mean/std per channel.
        var blackPixels = Normalised(new byte[3 * Size * Size]);
        foreach (int i in new[] { 1, 6 })
        {
            double error = RelativeToReference(LastZ(blackSet, i), LlavaReference.Run(f.Folder, f.Config, blackPixels, ImageIds(i, f.Config.ImageTokens)));
            Assert.True(error < 1e-4, $"black row {i}: hook_z relative error {error:E2}");
            // Text-only: no image token, so the reference's image never enters the sequence.
            error = RelativeToReference(LastZ(textSet, i), LlavaReference.Run(f.Folder, f.Config, blackPixels, TextIds(i)));
            Assert.True(error < 1e-4, $"text-only row {i}: hook_z relative error {error:E2}");
        }
    }

    [Fact]
    public void ImageFeatureCache_EncodesEachImageOnce_WhileItStays_AndEvictsTheLeastRecentlyUsed()
    {
        using var f = new Fixture();
        using var model = LlavaModel.Load(f.Folder);
        var cache = new ImageFeatureCache(model, model.NewState(), capacity: 2);
        float[] Pixels(ulong seed) => Normalised(Rgb(seed));
        var expected = new Dictionary<string, float[]>();
        foreach (var key in new[] { "a", "b", "c" })
            expected[key] = model.EncodeImage(model.NewState(), Pixels((ulong)(key[0] - 'a' + 1))).ToArray();
        foreach (var (key, encodings) in new[] { ("a", 1), ("b", 2), ("a", 2), ("c", 3), ("a", 3), ("b", 4) })
        {
            Assert.Equal(expected[key], cache.Get(key, () => new LlavaImage(Pixels((ulong)(key[0] - 'a' + 1)), new ImageSize(Size, Size))));
            Assert.Equal(encodings, cache.Encodings);
        }
    }

    [Fact]
    public void Score_BadImageInput_IsOneErrorBeforeAnyModelWork()
    {
        using var f = new Fixture();
        string rows = WriteRows(f.Tmp);
        File.Delete(Path.Combine(f.Images, "c.png"));
        string text = f.Tmp.File("text-model");
        RandomModel.WriteHf(text, f.Config.Text, 3, WeightDType.F32);

        void Fails(string expected, string model, params string[] extra)
        {
            string outDir = f.Tmp.File("out-" + Guid.NewGuid().ToString("N"));
            var r = CliRunner.Run(["score", model, "--data", rows, "--out", outDir, "--folds", "2", .. extra]);
            Assert.Equal(2, r.ExitCode);
            Assert.Contains(expected, r.Stderr);
            Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.False(File.Exists(Path.Combine(outDir, ActivationCollector.FileName)) || File.Exists(Path.Combine(outDir, ActivationCollector.FileName + ".partial")));
        }
        Fails($"line 4: row 3 names image 'c.png', not found at {Path.Combine(Path.GetFullPath(f.Images), "c.png")} (--images)", f.Folder, "--images", f.Images);
        Fails($"--images needs a vision-language model (a llava-hf, Qwen2.5-VL or Omni folder); {text} is a text-only model", text, "--images", f.Images);
        Fails("--image-mode image shows each row its image; give --images DIR", f.Folder, "--image-mode", "image");
        Fails("names images; give --images DIR", f.Folder);
        Fails("--image-mode black does not read the rows' images; drop --images DIR", f.Folder, "--image-mode", "black", "--images", f.Images);
        Fails("the template must hold <image> where the image goes", f.Folder, "--image-mode", "black", "--template", "{question} {answer}");
    }
}
