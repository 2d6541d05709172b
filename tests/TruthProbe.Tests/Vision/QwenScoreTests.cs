using System.Text;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Formats;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Probing;
using TruthProbe.Tests.Common;
using TruthProbe.Tests.Imaging;
using TruthProbe.Vision;

namespace TruthProbe.Tests.Vision;

/// <summary>
/// The Qwen2.5-VL / Omni chat templates, and <c>score</c> / <c>attention</c> on a tiny Qwen2.5-VL with PNGs written here:
/// every row rendered by the chat template, its activations at the last token against <see cref="QwenReference"/>.
/// </summary>
public sealed class QwenScoreTests
{
    internal const int Pad = 70, VisionStart = 71, VisionEnd = 72, ImStart = 74, ImEnd = 75;

    /// <summary>The template's words in the word-level tokenizer: "system You are a helpful assistant." then user, assistant.</summary>
    private static readonly (string Word, int Id)[] Words =
        [("system", 60), ("You", 61), ("are", 62), ("a", 63), ("helpful", 64), ("assistant.", 65), ("user", 66), ("assistant", 67)];

    /// <summary>
    /// A tiny Qwen2.5-VL (hub layout) with a budget of at most 12,544 pixels, three 112 x 84 PNGs (kept at their size: 6 x 8
    /// patches, 12 image tokens) and a word-level tokenizer holding the template's special tokens as added tokens.
    /// </summary>
    internal sealed class Fixture : IDisposable
    {
        public readonly TempDir Tmp = new();
        public readonly string Folder, Images;
        public readonly QwenVLConfig Config;

        /// <param name="omni">the Omni thinker (thinker layout) with its template's image tokens, instead of Qwen2.5-VL.</param>
        public Fixture(bool omni = false)
        {
            Config = QwenVisionTests.Tiny(omni);
            Folder = Tmp.File(omni ? "omni" : "qwen-vl");
            QwenCheckpoint.WriteRandom(Folder, Config, omni ? QwenLayout.Thinker : QwenLayout.Hub, 23, WeightDType.F32);
            File.WriteAllText(Path.Combine(Folder, QwenVLModel.PreprocessorFile), """
                {"min_pixels": 3136, "max_pixels": 12544, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
                 "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
                 "image_processor_type": "Qwen2VLImageProcessor", "resample": 3, "rescale_factor": 0.00392156862745098}
                """);
            var special = new[] { (omni ? "<|IMAGE|>" : "<|image_pad|>", Pad), (omni ? "<|vision_bos|>" : "<|vision_start|>", VisionStart),
                (omni ? "<|vision_eos|>" : "<|vision_end|>", VisionEnd), ("<|im_start|>", ImStart), ("<|im_end|>", ImEnd) };
            string added = string.Join(",", special.Select(s => $$"""{"id":{{s.Item2}},"content":"{{s.Item1}}","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}"""));
            var taken = Words.Select(w => w.Id).Concat(special.Select(s => s.Item2)).ToHashSet();
            string vocab = string.Join(",", Words.Select(w => $"\"{w.Word}\":{w.Id}").Concat(Enumerable.Range(1, 79).Where(id => !taken.Contains(id)).Select(id => $"\"w{id}\":{id}")));
            File.WriteAllText(Path.Combine(Folder, "tokenizer.json"), $$$"""
                {"version":"1.0","added_tokens":[{"id":0,"content":"[UNK]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},{{{added}}}],
                 "normalizer":null,"pre_tokenizer":{"type":"WhitespaceSplit"},"post_processor":null,"decoder":null,
                 "model":{"type":"WordLevel","vocab":{"[UNK]":0,{{{vocab}}}},"unk_token":"[UNK]"}}
                """);
            Images = Tmp.File("images");
            Directory.CreateDirectory(Images);
            foreach (var (name, seed) in new[] { ("a.png", 1UL), ("b.png", 2UL), ("c.png", 3UL) })
            {
                var rng = new XorShiftRandom(seed);
                byte[] rgb = [.. Enumerable.Range(0, 3 * 112 * 84).Select(_ => (byte)(rng.NextUInt64() >> 56))];
                File.WriteAllBytes(Path.Combine(Images, name), PngBuilder.Png(PngBuilder.Ihdr(112, 84, 8, 2), PngBuilder.Filter(rgb, 3 * 112, 3, 0)));
            }
        }

        public void Dispose() => Tmp.Dispose();
    }

    /// <summary>Six rows over three images (a twice in a row, then again later), labels alternating.</summary>
    private static readonly (string Image, int[] Question, int[] Answer)[] Rows =
    [
        ("a.png", [10, 11], [30]), ("a.png", [10, 11], [31, 32]), ("b.png", [13, 14, 15], [33]), ("c.png", [10], [34, 35]),
        ("a.png", [16, 17], [36]), ("b.png", [18], [37, 38, 39]),
    ];

    private static string WriteRows(TempDir tmp)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < Rows.Length; i++)
        {
            var (image, q, a) = Rows[i];
            sb.Append(new JsonObject { ["question_id"] = i, ["question"] = LlavaScoreTests.Words(q), ["answer"] = LlavaScoreTests.Words(a), ["image_path"] = image, ["label"] = i % 2 == 0 ? "gold" : "hallucinated" }.ToJsonString()).Append('\n');
        }
        string path = tmp.File("rows.jsonl");
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    /// <summary>
    /// The ids the chat template gives through the word-level tokenizer (its newlines are whitespace there): system turn,
    /// user turn with the image item (pads expanded to <paramref name="imageTokens"/>; none without an image), the closed assistant turn.
    /// </summary>
    private static int[] ChatIds(int row, int? imageTokens) =>
    [
        ImStart, 60, 61, 62, 63, 64, 65, ImEnd, ImStart, 66,
        .. imageTokens is { } n ? [VisionStart, .. Enumerable.Repeat(Pad, n), VisionEnd] : Array.Empty<int>(),
        .. Rows[row].Question, ImEnd, ImStart, 67, .. Rows[row].Answer, ImEnd,
    ];

    private static float[] LastZ(ActivationSet set, int row) => LlavaScoreTests.LastZ(set, row);

    private static double RelativeToReference(float[] actual, QwenReference.Result reference) => LlavaScoreTests.RelativeToReference(actual, reference.Z);

    private static CliRunner.Result Score(Fixture f, string rows, string outDir, params string[] extra) =>
        CliRunner.Run(["score", f.Folder, "--data", rows, "--out", outDir, "--folds", "2", "--no-control", .. extra]);

    [Fact]
    public void ChatTemplates_RenderAsThePublishedTemplates()
    {
        // Qwen2.5-VL-7B-Instruct's chat_template with messages [user: [image, text], assistant: answer] and
        // add_generation_prompt=False: the template inserts its default system turn first.
        Assert.Equal("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n" +
                     "<|vision_start|><|image_pad|><|vision_end|>Is the cat black?<|im_end|>\n<|im_start|>assistant\nYes, it is.<|im_end|>\n",
            QwenPrompts.Chat(omni: false, image: true, "Is the cat black?", "Yes, it is."));
        // Qwen2.5-Omni-7B's template with its model card's system message (given as a system turn, so the default is not inserted).
        Assert.Equal("<|im_start|>system\nYou are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving " +
                     "auditory and visual inputs, as well as generating text and speech.<|im_end|>\n<|im_start|>user\n" +
                     "<|vision_bos|><|IMAGE|><|vision_eos|>Is the cat black?<|im_end|>\n<|im_start|>assistant\nYes, it is.<|im_end|>\n",
            QwenPrompts.Chat(omni: true, image: true, "Is the cat black?", "Yes, it is."));
        // Text only: the user turn holds the text item alone.
        Assert.Equal("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nIs it?<|im_end|>\n<|im_start|>assistant\nNo.<|im_end|>\n",
            QwenPrompts.Chat(omni: false, image: false, "Is it?", "No."));
        // lmms-eval's qwen2_5_vl on POPE: system prompt, image then "{question}\nAnswer the question using a single word or phrase.", generation prompt.
        string pope = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>" +
                      "Is there a dog in the image?\nAnswer the question using a single word or phrase.<|im_end|>\n<|im_start|>assistant\n";
        Assert.Equal(pope, QwenPrompts.Pope(false, "Is there a dog in the image?"));
        Assert.Equal(pope, QwenPrompts.Pope(false, "Is there a dog in the image?\nAnswer the question using a single word or phrase."));
        Assert.EndsWith("<|vision_bos|><|IMAGE|><|vision_eos|>Please describe this image in detail.<|im_end|>\n<|im_start|>assistant\n", QwenPrompts.Chair(true));
    }

    [Fact]
    public void Score_ImageRows_MatchFloat64Reference_AndTheKeptEncodingIsBitIdenticalToEncodingEachRowAlone()
    {
        using var f = new Fixture();
        string rows = WriteRows(f.Tmp), outDir = f.Tmp.File("out");
        var r = Score(f, rows, outDir, "--images", f.Images);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var set = ActivationSet.Load(Path.Combine(outDir, ActivationCollector.FileName), null);
        Assert.Equal((Rows.Length, 2, 4, 16), (set.Rows, set.Layers, set.Heads, set.HeadDim));

        using var model = QwenVLModel.Load(f.Folder);
        Assert.Equal(ChatIds(0, 1), model.Language.Encode(QwenPrompts.Chat(false, true, "w10 w11", "w30")));
        var processor = model.ImageProcessor();
        for (int i = 0; i < Rows.Length; i++)
        {
            var image = processor.Preprocess(ImageFile.Load(Path.Combine(f.Images, Rows[i].Image)));
            Assert.Equal(12, image.Tokens);
            var capture = new ActivationCapture(f.Config.Text, ["blocks.*.attn.hook_z"], [-1]);
            model.Forward(model.NewState(), ChatIds(i, 1), image, capture);
            Assert.Equal(Enumerable.Range(0, 2).SelectMany(l => capture[HookNames.Name(HookKind.Z, l)].Data).ToArray(), LastZ(set, i));
            if (i is 0 or 3)
            {
                double error = RelativeToReference(LastZ(set, i), QwenReference.Run(f.Folder, f.Config, image.PixelValues, image.GridH, image.GridW, ChatIds(i, 12)));
                Assert.True(error < 1e-4, $"row {i}: hook_z relative error {error:E2}");
            }
        }
        var meta = set.Metadata;
        Assert.Equal("image", meta["image_mode"]);
        Assert.Equal("qwen2.5-vl", meta["chat_template"]);
        Assert.Equal("12544", meta["max_pixels"]);
        Assert.Equal("3", meta["images_count"]);
        Assert.Equal(QwenPrompts.Chat(false, true, "{question}", "{answer}"), meta["template"]);

        // Another budget is another run: 112 x 84 under at most 6,000 pixels is 84 x 56, 6 tokens.
        var small = Score(f, rows, outDir, "--images", f.Images, "--max-pixels", "6000");
        Assert.True(small.ExitCode == 0, small.Stderr);
        Assert.Contains($"collected {Rows.Length} row(s)", small.Stdout);
    }

    [Fact]
    public void Score_BlackAndTextOnlyModes_MatchFloat64Reference()
    {
        using var f = new Fixture();
        string rows = WriteRows(f.Tmp);
        var sets = new Dictionary<string, ActivationSet>();
        foreach (string mode in new[] { "black", "text-only" })
        {
            var r = Score(f, rows, f.Tmp.File(mode), "--image-mode", mode);
            Assert.True(r.ExitCode == 0, r.Stderr);
            sets[mode] = ActivationSet.Load(Path.Combine(f.Tmp.File(mode), ActivationCollector.FileName), null);
        }
        var (blackSet, textSet) = (sets["black"], sets["text-only"]);
        Assert.Equal("all-zero RGB 336x336", blackSet.Metadata["image"]);
        Assert.Equal(QwenPrompts.Chat(false, false, "{question}", "{answer}"), textSet.Metadata["template"]);

        // Black: 336 x 336 zeros under at most 12,544 pixels -> 112 x 112 (beta = 3), 8 x 8 patches, 16 tokens; every pixel
        // normalises to -mean/std of its channel, so the rows are those constants in (channel, frame, y, x) order.
        double[] mean = [0.48145466, 0.4578275, 0.40821073], std = [0.26862954, 0.26130258, 0.27577711];
        float[] pixels = [.. Enumerable.Range(0, 64).SelectMany(_ => Enumerable.Range(0, 1176).Select(k => (float)(-mean[k / 392] / std[k / 392])))];
        foreach (int i in new[] { 1, 4 })
        {
            double error = RelativeToReference(LastZ(blackSet, i), QwenReference.Run(f.Folder, f.Config, pixels, 8, 8, ChatIds(i, 16)));
            Assert.True(error < 1e-4, $"black row {i}: hook_z relative error {error:E2}");
            error = RelativeToReference(LastZ(textSet, i), QwenReference.Run(f.Folder, f.Config, null, 0, 0, ChatIds(i, null)));
            Assert.True(error < 1e-4, $"text-only row {i}: hook_z relative error {error:E2}");
        }
    }

    [Fact]
    public void Attention_ImageRows_ShareOnTheImagePads_MatchesFloat64Patterns()
    {
        using var f = new Fixture();
        var r = CliRunner.Run("attention", f.Folder, "--data", WriteRows(f.Tmp), "--images", f.Images, "--out", f.Tmp.File("att"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("attention to evidence over 6 row(s)", r.Stdout);

        // Per (layer, head): the mean over rows of the last query's attention summed over the 12 image-pad positions.
        using var model = QwenVLModel.Load(f.Folder);
        int layers = f.Config.Text.Layers, heads = f.Config.Text.Heads;
        var expected = new double[layers * heads];
        for (int i = 0; i < Rows.Length; i++)
        {
            var image = model.ImageProcessor().Preprocess(ImageFile.Load(Path.Combine(f.Images, Rows[i].Image)));
            int[] ids = ChatIds(i, 12);
            var hooks = new Dictionary<string, double[]>();
            QwenReference.Run(f.Folder, f.Config, image.PixelValues, image.GridH, image.GridW, ids, hooks);
            int T = ids.Length, start = Array.IndexOf(ids, Pad);
            for (int l = 0; l < layers; l++)
                for (int h = 0; h < heads; h++)
                {
                    var pattern = hooks[$"blocks.{l}.attn.hook_pattern"];   // [H, T, T]
                    for (int j = start; j < start + 12; j++) expected[l * heads + h] += pattern[(h * T + T - 1) * T + j] / Rows.Length;
                }
        }
        var share = Npy.Read(Path.Combine(f.Tmp.File("att"), "attention.npy")).Data;
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(share[i] - expected[i]) < 1e-6, $"head {i}: share {share[i]} vs float64 {expected[i]}");
        Assert.True(expected.Max() - expected.Min() > 0.05, "the heads' shares should differ, or the comparison cannot tell them apart");
    }

    [Fact]
    public void Score_OmniThinker_RunsItsOwnTemplate()
    {
        using var f = new Fixture(omni: true);
        string rows = WriteRows(f.Tmp), outDir = f.Tmp.File("out");
        var r = Score(f, rows, outDir, "--images", f.Images);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var set = ActivationSet.Load(Path.Combine(outDir, ActivationCollector.FileName), null);
        Assert.Equal("qwen2.5-omni", set.Metadata["chat_template"]);
        Assert.Equal(QwenPrompts.Chat(true, true, "{question}", "{answer}"), set.Metadata["template"]);

        // Row 2 through the library: the Omni template's text (its long system prompt is out of the test vocabulary:
        // [UNK] words), its image tokens expanded to b.png's 12.
        using var model = QwenVLModel.Load(f.Folder);
        int[] ids = model.Language.Encode(QwenPrompts.Chat(true, true, "w13 w14 w15", "w33"));
        Assert.Equal([ImStart, 60], ids[..2]);
        Assert.Equal([ImEnd, ImStart, 66, VisionStart, Pad, VisionEnd, 13, 14, 15, ImEnd, ImStart, 67, 33, ImEnd], ids[^14..]);
        var image = model.ImageProcessor().Preprocess(ImageFile.Load(Path.Combine(f.Images, "b.png")));
        var capture = new ActivationCapture(f.Config.Text, ["blocks.*.attn.hook_z"], [-1]);
        model.Forward(model.NewState(), ids, image, capture);
        Assert.Equal(Enumerable.Range(0, 2).SelectMany(l => capture[HookNames.Name(HookKind.Z, l)].Data).ToArray(), LastZ(set, 2));
    }

    [Fact]
    public void Score_BadQwenOptions_AreOneErrorEach()
    {
        using var f = new Fixture();
        string rows = WriteRows(f.Tmp);
        void Fails(string expected, params string[] extra)
        {
            var r = Score(f, rows, f.Tmp.File("out-" + Guid.NewGuid().ToString("N")), extra);
            Assert.Equal(2, r.ExitCode);
            Assert.Contains(expected, r.Stderr);
        }
        Fails("go through the model's own chat template", "--images", f.Images, "--template", "{question} {answer}");
        Fails("--image-aspect is LLaVA's", "--images", f.Images, "--image-aspect", "pad");
        Fails("--image-mode text-only shows no image", "--image-mode", "text-only", "--max-pixels", "5000");
        string text = f.Tmp.File("text-model");
        RandomModel.WriteHf(text, f.Config.Text, 3, WeightDType.F32);
        var plain = CliRunner.Run("score", text, "--data", rows, "--out", f.Tmp.File("x"), "--image-mode", "text-only", "--max-pixels", "5000");
        Assert.Contains("needs a vision-language model", plain.Stderr);
    }
}
