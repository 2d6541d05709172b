using System.Text.Json;
using TruthProbe.Evaluation;
using TruthProbe.Formats;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Tests.Model;
using TruthProbe.Tests.Vision;
using TruthProbe.Vision;

namespace TruthProbe.Tests.Evaluation;

/// <summary>
/// <c>eval pope &lt;model&gt;</c> and <c>eval chair &lt;model&gt;</c> on a tiny random llava-hf checkpoint (image 56, 16
/// image tokens) with a word-level tokenizer that knows every word of the prompts, on the photos of ../shared/data/images.
/// </summary>
public sealed class ImageEvalCliTests
{
    private const int ImageToken = 60;

    /// <summary>Every word of LLaVA's POPE and CHAIR prompts and of pope_images.jsonl's questions, split on whitespace.</summary>
    private static readonly string[] Words = (LlavaPrompts.Pope("Is there a person in the image?") + " " + LlavaPrompts.Chair)
        .Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Where(w => w != "<image>")
        .Concat(["bottle", "car", "cat", "cup", "dog", "horse", "spoon", "yes", "no", "Yes", "No", "table"]).Distinct().ToArray();

    private const string Preprocessor56 = """
        {"crop_size": {"height": 56, "width": 56}, "do_center_crop": true, "do_convert_rgb": true, "do_normalize": true,
         "do_rescale": true, "do_resize": true, "image_mean": [0.48145466, 0.4578275, 0.40821073],
         "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "rescale_factor": 0.00392156862745098,
         "size": {"shortest_edge": 56}}
        """;

    /// <summary>The tiny checkpoint with its preprocessor config and a tokenizer.json: ids 3.. are the words, <c>&lt;image&gt;</c> an added token.</summary>
    internal static string Checkpoint(TempDir tmp) =>
        Checkpoint(tmp, "llava", LlavaModelTests.Tiny(56), Preprocessor56, 2);   // a seed whose replies are words, not an immediate EOS, and differ by question

    /// <summary>A tiny checkpoint of <paramref name="config"/> in folder <paramref name="name"/>, with <paramref name="preprocessor"/> as its preprocessor config and the word tokenizer.</summary>
    internal static string Checkpoint(TempDir tmp, string name, LlavaConfig config, string preprocessor, ulong seed)
    {
        string folder = tmp.File(name);
        LlavaCheckpoint.WriteRandom(folder, config, LlavaLayout.Hub, seed, WeightDType.F32);
        File.WriteAllText(Path.Combine(folder, LlavaModel.PreprocessorFile), preprocessor);
        var ids = Enumerable.Range(3, 61).Where(id => id != ImageToken).ToList();
        Assert.True(Words.Length <= ids.Count, $"{Words.Length} words for {ids.Count} ids");
        var vocab = ids.Select((id, i) => $"{JsonSerializer.Serialize(i < Words.Length ? Words[i] : $"w{id}")}:{id}");
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), $$$"""
            {"version":"1.0","added_tokens":[{"id":0,"content":"[UNK]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
              {"id":{{{ImageToken}}},"content":"<image>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
             "normalizer":null,"pre_tokenizer":{"type":"WhitespaceSplit"},"post_processor":null,"decoder":null,
             "model":{"type":"WordLevel","vocab":{"[UNK]":0,"<s>":1,"</s>":2,{{{string.Join(",", vocab)}}}},"unk_token":"[UNK]"}}
            """);
        return folder;
    }

    /// <summary>A Truth-Score map [2 layers, 4 heads] for the gates.</summary>
    internal static string Scores(TempDir tmp)
    {
        string path = tmp.File("scores.npy");
        Npy.WriteFloat64(path, Enumerable.Range(0, 8).Select(i => 0.5 + 0.45 * Math.Sin(3 * i)).ToArray(), 2, 4);
        return path;
    }

    /// <summary>The first <paramref name="count"/> questions of pope_images.jsonl, as a split of their own.</summary>
    internal static string Questions(TempDir tmp, int count)
    {
        string path = tmp.File($"pope_{count}.jsonl");
        File.WriteAllLines(path, File.ReadLines(SharedData.Path("data", "images", "pope_images.jsonl")).Take(count));
        return path;
    }

    internal static string Images => SharedData.Path("data", "images");

    private static string[] Lines(string path) => File.ReadAllLines(path);

    internal static string Reply(string sampleLine) => JsonDocument.Parse(sampleLine).RootElement.GetProperty("reply").GetString()!;

    [Fact]
    public void LlavaPrompts_AreTheVicunaV1ConversationStrings()
    {
        // conv_vicuna_v1: system, sep " ", "USER: " + message, sep " ", "ASSISTANT:"; model_vqa_loader puts "<image>\n" before the question.
        const string system = "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.";
        Assert.Equal(system + " USER: <image>\nIs there a dog in the image?\nAnswer the question using a single word or phrase. ASSISTANT:",
            LlavaPrompts.Pope("Is there a dog in the image?"));
        Assert.Equal(LlavaPrompts.Pope("Is there a dog in the image?"), LlavaPrompts.Pope("Is there a dog in the image?\nAnswer the question using a single word or phrase."));
        Assert.Equal(system + " USER: <image>\nPlease describe this image in detail. ASSISTANT:", LlavaPrompts.Chair);
    }

    [SkippableFact]
    public void Pope_OnePerQuestionAndArm_TheLibrarysReplies_RescoredAlike()
    {
        string questions = SharedData.Path("data", "images", "pope_images.jsonl");
        using var tmp = new TempDir();
        string model = Checkpoint(tmp);
        string[] run = ["eval", "pope", model, "--questions", questions, "--images", Images, "--max-new-tokens", "3",
            "--scores", Scores(tmp), "--mode", "contrast", "--lambda", "6"];
        var first = CliRunner.Run([.. run, "--out", tmp.File("a")]);
        Assert.True(first.ExitCode == 0, first.Stderr);

        var ids = Lines(questions).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("question_id").GetInt64()).ToList();
        foreach (string arm in new[] { "vanilla", "gated" })
        {
            var samples = Lines(tmp.File($"a/samples_pope_{arm}.jsonl"));
            Assert.Equal(ids, samples.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("doc").GetProperty("question_id").GetInt64()));
        }
        Assert.Equal(2 * ids.Count + 1, Lines(tmp.File("a/replies.jsonl")).Length);   // fingerprint + one reply per question and arm
        Assert.False(File.Exists(tmp.File("a/replies.partial.jsonl")));

        // The first image's four vanilla replies (its prefix reused) are the library's greedy continuations of each
        // prompt encoded from scratch; they are not all alike, so a mix-up of questions would show.
        using (var llava = LlavaModel.Load(model))
        {
            var vanilla = Lines(tmp.File("a/samples_pope_vanilla.jsonl"));
            var pixels = llava.ImagePreprocessor(AspectMode.Crop).Preprocess(ImageFile.Load(Path.Combine(Images, "astronaut.png")));
            for (int i = 0; i < 4; i++)
            {
                var q = JsonDocument.Parse(Lines(questions)[i]).RootElement;
                Assert.Equal("astronaut.png", q.GetProperty("image").GetString());
                var expected = llava.Generate(llava.NewState(), llava.Language.Encode(LlavaPrompts.Pope(q.GetProperty("text").GetString()!)), pixels, new GenerationOptions { MaxNewTokens = 3 });
                Assert.Equal(llava.Language.Tokenizer!.Decode(expected.NewIds).Trim(), Reply(vanilla[i]));
            }
            Assert.True(vanilla.Take(4).Select(Reply).Distinct().Count() > 1 && vanilla.Take(4).All(l => Reply(l).Length > 0),
                string.Join(" | ", vanilla.Take(4).Select(Reply)));
        }

        // The sample logs are lmms-eval-shaped: the answer-file mode rescores them to the summary's numbers.
        var rescored = CliRunner.Run("eval", "pope", "--questions", questions, "--answers", tmp.File("a/samples_pope_gated.jsonl"), "--out", tmp.File("r"));
        Assert.True(rescored.ExitCode == 0, rescored.Stderr);
        var summary = JsonDocument.Parse(File.ReadAllText(tmp.File("a/summary.json"))).RootElement;
        var metrics = JsonDocument.Parse(File.ReadAllText(tmp.File("r/metrics.json"))).RootElement.GetProperty("pooled");
        foreach (string field in new[] { "accuracy", "unknown", "tp", "fp", "tn", "fn" })
            Assert.Equal(metrics.GetProperty(field).GetDouble(), summary.GetProperty("arms").GetProperty("gated").GetProperty(field).GetDouble());
        Assert.True(summary.GetProperty("mcnemar_exact").GetProperty("p_value").GetDouble() is >= 0 and <= 1);
        Assert.Contains("McNemar exact p (vanilla vs gated)", first.Stdout);
    }

    [SkippableTheory]
    [InlineData(0)]   // the fingerprint line cut: a whole rerun, byte-identical
    [InlineData(5)]
    [InlineData(11)]  // the last reply cut
    public void Pope_InterruptedRun_ResumesToTheUninterruptedOutputs(int completeLines)
    {
        using var tmp = new TempDir();
        string model = Checkpoint(tmp);
        string[] run = ["eval", "pope", model, "--questions", Questions(tmp, 6), "--images", Images, "--max-new-tokens", "3",
            "--scores", Scores(tmp), "--mode", "contrast", "--lambda", "6"];
        var whole = CliRunner.Run([.. run, "--out", tmp.File("whole")]);
        Assert.True(whole.ExitCode == 0, whole.Stderr);

        // What a run killed while writing line completeLines + 1 leaves: the lines before it, and half of it.
        string[] log = Lines(tmp.File("whole/replies.jsonl"));
        Assert.Equal(13, log.Length);
        Directory.CreateDirectory(tmp.File("resumed"));
        string cut = log[completeLines];
        File.WriteAllText(tmp.File("resumed/replies.partial.jsonl"), string.Concat(log.Take(completeLines).Select(l => l + "\n")) + cut[..(cut.Length / 2)]);
        var resumed = CliRunner.Run([.. run, "--out", tmp.File("resumed")]);
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);

        if (completeLines > 1) Assert.Contains($"resuming: {completeLines - 1} of 12 replies", resumed.Stderr);
        foreach (string file in Directory.GetFiles(tmp.File("whole")).Select(f => Path.GetFileName(f)))
            Assert.Equal(File.ReadAllBytes(tmp.File($"whole/{file}")), File.ReadAllBytes(tmp.File($"resumed/{file}")));
        Assert.Equal(Directory.GetFiles(tmp.File("whole")).Length, Directory.GetFiles(tmp.File("resumed")).Length);
    }

    [SkippableFact]
    public void Pope_PartialLogOfAnotherRun_IsRefused()
    {
        using var tmp = new TempDir();
        string model = Checkpoint(tmp);
        string questions = Questions(tmp, 4);
        var first = CliRunner.Run("eval", "pope", model, "--questions", questions, "--images", Images, "--max-new-tokens", "2", "--out", tmp.File("a"));
        Assert.True(first.ExitCode == 0, first.Stderr);
        Assert.Equal("f32", JsonDocument.Parse(File.ReadAllText(tmp.File("a/summary.json"))).RootElement.GetProperty("run").GetProperty("kv_cache").GetString());
        File.Copy(tmp.File("a/replies.jsonl"), tmp.File("a/replies.partial.jsonl"));
        var other = CliRunner.Run("eval", "pope", model, "--questions", questions, "--images", Images, "--max-new-tokens", "3", "--out", tmp.File("a"));
        Assert.Equal(2, other.ExitCode);
        Assert.Contains("replies of a run with another model, data or options", other.Stderr);
        // A 16-bit KV cache changes replies too: resuming the float32 run's log with it would mix two runs.
        var halfCache = CliRunner.Run("eval", "pope", model, "--questions", questions, "--images", Images, "--max-new-tokens", "2", "--kv-cache", "f16", "--out", tmp.File("a"));
        Assert.Equal(2, halfCache.ExitCode);
        Assert.Contains("replies of a run with another model, data or options", halfCache.Stderr);
    }

    [SkippableFact]
    public void Pope_GatedEqualsVanilla_OnlyAtLambdaZero()
    {
        using var tmp = new TempDir();
        string model = Checkpoint(tmp);
        string questions = Questions(tmp, 8);
        string[] Replies(string dir, string arm) => Lines(tmp.File($"{dir}/samples_pope_{arm}.jsonl")).Select(Reply).ToArray();
        foreach (string lambda in new[] { "0", "6" })
        {
            var r = CliRunner.Run("eval", "pope", model, "--questions", questions, "--images", Images, "--max-new-tokens", "4",
                "--scores", Scores(tmp), "--mode", "contrast", "--lambda", lambda, "--out", tmp.File($"l{lambda}"));
            Assert.True(r.ExitCode == 0, r.Stderr);
        }
        Assert.Equal(Replies("l0", "vanilla"), Replies("l0", "gated"));
        Assert.Equal(Replies("l0", "vanilla"), Replies("l6", "vanilla"));
        Assert.NotEqual(Replies("l6", "vanilla"), Replies("l6", "gated"));
    }

    [SkippableFact]
    public void BadInput_OneErrorLine_NoOutput()
    {
        using var tmp = new TempDir();
        string model = Checkpoint(tmp);
        string questions = tmp.File("missing.jsonl");
        File.WriteAllLines(questions, [
            """{"question_id": 1, "image": "astronaut.png", "text": "Is there a person in the image?", "label": "yes"}""",
            """{"question_id": 2, "image": "no_such_photo.png", "text": "Is there a dog in the image?", "label": "no"}""",
        ]);
        var missing = CliRunner.Run("eval", "pope", model, "--questions", questions, "--images", Images, "--out", tmp.File("m"));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("no_such_photo.png: image not found", missing.Stderr);
        Assert.Single(missing.Stderr.Trim().Split('\n'));
        Assert.False(Directory.Exists(tmp.File("m")));

        string text = TinyModels.Write(tmp, TinyModels.LlamaGqa);
        var textOnly = CliRunner.Run("eval", "pope", text, "--questions", Questions(tmp, 2), "--images", Images, "--out", tmp.File("t"));
        Assert.Equal(2, textOnly.ExitCode);
        Assert.Contains("--images needs a vision-language model", textOnly.Stderr);
        Assert.False(Directory.Exists(tmp.File("t")));

        var noModel = CliRunner.Run("eval", "pope", "--questions", questions, "--answers", questions, "--images", Images, "--out", tmp.File("n"));
        Assert.Equal(2, noModel.ExitCode);
        Assert.Contains("--images applies when the verb runs a model", noModel.Stderr);
        Assert.False(Directory.Exists(tmp.File("n")));
    }

    [SkippableFact]
    public void Chair_CaptionsEveryImageOnce_ScoredWithBootstrap_RescoredAlike()
    {
        SharedData.Path("data", "chair", ChairScorer.WordMapsFile);
        using var tmp = new TempDir();
        string model = Checkpoint(tmp);
        CocoPhotos(tmp);
        var r = CliRunner.Run("eval", "chair", model, "--images", tmp.File("coco"), "--image-ids", tmp.File("ids.txt"), "--gt", tmp.File("gt.json"),
            "--max-new-tokens", "12", "--scores", Scores(tmp), "--mode", "contrast", "--lambda", "6", "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);

        var summary = JsonDocument.Parse(File.ReadAllText(tmp.File("out/summary.json"))).RootElement;
        Assert.Equal(1000, summary.GetProperty("paired_bootstrap").GetProperty("resamples").GetInt32());
        foreach (string arm in new[] { "vanilla", "gated" })
        {
            var samples = Lines(tmp.File($"out/samples_chair_{arm}.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.Equal([1L, 2L, 3L], samples.Select(s => s.GetProperty("image_id").GetInt64()));
            Assert.All(samples, s => Assert.Equal(LlavaPrompts.Chair, s.GetProperty("prompt").GetString()));
            var rescored = CliRunner.Run("eval", "chair", "--captions", tmp.File($"out/samples_chair_{arm}.jsonl"), "--gt", tmp.File("gt.json"), "--out", tmp.File($"r-{arm}"));
            Assert.True(rescored.ExitCode == 0, rescored.Stderr);
            var metrics = JsonDocument.Parse(File.ReadAllText(tmp.File($"r-{arm}/metrics.json"))).RootElement;
            Assert.Equal(metrics.GetProperty("chair_s").GetDouble(), summary.GetProperty("arms").GetProperty(arm).GetProperty("chair_s").GetDouble());
            Assert.Equal(metrics.GetProperty("len").GetDouble(), summary.GetProperty("arms").GetProperty(arm).GetProperty("len").GetDouble());
        }
        Assert.Contains("95% paired bootstrap over images", r.Stdout);
    }

    /// <summary>COCO-style names for three photos in tmp/coco, their list in ids.txt and their objects as the ground truth in gt.json.</summary>
    internal static void CocoPhotos(TempDir tmp)
    {
        Directory.CreateDirectory(tmp.File("coco"));
        string[] photos = ["astronaut.png", "chelsea.png", "coffee.png"];
        for (int i = 0; i < photos.Length; i++) File.Copy(Path.Combine(Images, photos[i]), tmp.File($"coco/COCO_val2014_{i + 1:D12}.png"));
        File.WriteAllLines(tmp.File("ids.txt"), photos.Select((_, i) => $"COCO_val2014_{i + 1:D12}.png"));
        File.WriteAllText(tmp.File("gt.json"), """{"1": ["person"], "2": ["cat"], "3": ["cup", "spoon"]}""");
    }

    /// <summary>Every file of <paramref name="a"/> and <paramref name="b"/> byte for byte, and the same file names.</summary>
    internal static void SameFiles(string a, string b)
    {
        var names = Directory.GetFiles(a).Select(f => Path.GetFileName(f)).Order().ToList();
        Assert.Equal(names, Directory.GetFiles(b).Select(f => Path.GetFileName(f)).Order());
        foreach (string name in names) Assert.True(File.ReadAllBytes(Path.Combine(a, name)).SequenceEqual(File.ReadAllBytes(Path.Combine(b, name))), name + " differs");
    }

    [SkippableFact]
    public void Pope_ThreeShardsByImageMerged_EqualOneProcess_ByteForByte()
    {
        using var tmp = new TempDir();
        string model = Checkpoint(tmp);
        // 16 questions about the first 4 photos: shards of whole images, 1-2 photos each.
        string[] run = ["eval", "pope", model, "--questions", Questions(tmp, 16), "--images", Images, "--max-new-tokens", "3",
            "--scores", Scores(tmp), "--mode", "contrast", "--lambda", "6"];
        var whole = CliRunner.Run([.. run, "--out", tmp.File("whole")]);
        Assert.True(whole.ExitCode == 0, whole.Stderr);
        for (int k = 1; k <= 3; k++)
        {
            var part = CliRunner.Run([.. run, "--shard", $"{k}/3", "--out", tmp.File($"part-{k}")]);
            Assert.True(part.ExitCode == 0, part.Stderr);
            Assert.False(File.Exists(tmp.File($"part-{k}/summary.json")), "a part is not a result");
        }
        // Every question answered in exactly one part, and no image in two.
        var imageOf = Lines(tmp.File("pope_16.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .ToDictionary(q => q.GetProperty("question_id").GetInt64(), q => q.GetProperty("image").GetString()!);
        var idsOfPart = Enumerable.Range(1, 3).Select(k => Lines(tmp.File($"part-{k}/replies.partial.jsonl")).Skip(1)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetInt64()).ToHashSet()).ToList();
        Assert.Equal(imageOf.Keys.Order(), idsOfPart.SelectMany(ids => ids).Order());
        var imagesOfPart = idsOfPart.Select(ids => ids.Select(id => imageOf[id]).ToHashSet()).ToList();
        Assert.Equal(imagesOfPart.Sum(i => i.Count), imagesOfPart.SelectMany(i => i).Distinct().Count());
        Assert.All(imagesOfPart, i => Assert.NotEmpty(i));
        var merged = CliRunner.Run("merge", tmp.File("part-1"), tmp.File("part-2"), tmp.File("part-3"), "--out", tmp.File("merged"));
        Assert.True(merged.ExitCode == 0, merged.Stderr);
        SameFiles(tmp.File("whole"), tmp.File("merged"));

        // A merge without one part is refused before it scores anything.
        var missing = CliRunner.Run("merge", tmp.File("part-1"), tmp.File("part-3"), "--out", tmp.File("m2"));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("shard(s) 2/3 missing", missing.Stderr);
    }

    [SkippableFact]
    public void Chair_TwoShardsMerged_EqualOneProcess()
    {
        SharedData.Path("data", "chair", ChairScorer.WordMapsFile);
        using var tmp = new TempDir();
        string model = Checkpoint(tmp);
        CocoPhotos(tmp);
        string[] run = ["eval", "chair", model, "--images", tmp.File("coco"), "--image-ids", tmp.File("ids.txt"), "--gt", tmp.File("gt.json"),
            "--max-new-tokens", "6", "--scores", Scores(tmp), "--mode", "contrast", "--lambda", "6"];
        Assert.Equal(0, CliRunner.Run([.. run, "--out", tmp.File("whole")]).ExitCode);
        for (int k = 1; k <= 2; k++) Assert.Equal(0, CliRunner.Run([.. run, "--shard", $"{k}/2", "--out", tmp.File($"part-{k}")]).ExitCode);
        var merged = CliRunner.Run("merge", tmp.File("part-2"), tmp.File("part-1"), "--out", tmp.File("merged"));
        Assert.True(merged.ExitCode == 0, merged.Stderr);
        SameFiles(tmp.File("whole"), tmp.File("merged"));
    }
}
