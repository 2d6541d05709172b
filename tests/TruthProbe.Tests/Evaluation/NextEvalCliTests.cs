using System.Text.Json;
using TruthProbe.Evaluation;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Tests.Vision;
using TruthProbe.Vision;

namespace TruthProbe.Tests.Evaluation;

/// <summary>
/// <c>eval pope &lt;model&gt;</c> and <c>eval chair &lt;model&gt;</c> on a tiny random LLaVA-NeXT checkpoint (tiles of
/// 28, <see cref="LlavaNextTests.TinyNext"/>): images of different sizes take different anyres grids and token counts
/// (512x512: grid 2x2, 16 + 8 * 9 = 88 image tokens; 451x300 and 600x400: 70, see <see cref="LlavaNextTests"/>), so each
/// image's shared prefix has its own length.
/// </summary>
public sealed class NextEvalCliTests
{
    private static string Checkpoint(TempDir tmp) =>
        // A seed whose replies are words, not an immediate EOS, and differ by question.
        ImageEvalCliTests.Checkpoint(tmp, "next", LlavaNextTests.TinyNext(), LlavaNextTests.Preprocessor28, 3);

    private static string[] Lines(string path) => File.ReadAllLines(path);

    /// <summary>The vanilla sample log's replies (its <paramref name="field"/>) equal the library's greedy continuation of each prompt encoded from scratch (no prefix reuse).</summary>
    private static void AssertVanillaFromScratch(string model, IReadOnlyList<(string Image, string Prompt)> prompts, string samples, string field, int maxNewTokens)
    {
        using var llava = LlavaModel.Load(model);
        var replies = Lines(samples).Select(l => JsonDocument.Parse(l).RootElement.GetProperty(field).GetString()!).ToList();
        Assert.Equal(prompts.Count, replies.Count);
        for (int i = 0; i < prompts.Count; i++)
        {
            var image = llava.PrepareImage(ImageFile.Load(prompts[i].Image));
            var expected = llava.Generate(llava.NewState(), llava.Language.Encode(prompts[i].Prompt), image.Pixels,
                new GenerationOptions { MaxNewTokens = maxNewTokens }, imageSize: image.Size);
            Assert.Equal(llava.Language.Tokenizer!.Decode(expected.NewIds).Trim(), replies[i]);
        }
        Assert.True(replies.Distinct().Count() > 1 && replies.All(r => r.Length > 0), string.Join(" | ", replies));
    }

    [SkippableFact]
    public void Pope_TwoImageSizes_ReusedPrefixEqualsScratch_RerunByteIdentical_InterruptedRunResumes()
    {
        using var tmp = new TempDir();
        string model = Checkpoint(tmp);
        // pope_images.jsonl's four questions about astronaut.png (88 image tokens) and two about chelsea.png (70).
        string questions = tmp.File("pope.jsonl");
        File.WriteAllLines(questions, [.. File.ReadLines(SharedData.Path("data", "images", "pope_images.jsonl")).Take(4),
            """{"question_id": 101, "image": "chelsea.png", "text": "Is there a cat in the image?", "label": "yes"}""",
            """{"question_id": 102, "image": "chelsea.png", "text": "Is there a horse in the image?", "label": "no"}"""]);
        string[] run = ["eval", "pope", model, "--questions", questions, "--images", ImageEvalCliTests.Images, "--max-new-tokens", "3",
            "--scores", ImageEvalCliTests.Scores(tmp), "--mode", "contrast", "--lambda", "6"];
        var first = CliRunner.Run([.. run, "--out", tmp.File("a")]);
        Assert.True(first.ExitCode == 0, first.Stderr);

        var docs = Lines(questions).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        foreach (string arm in new[] { "vanilla", "gated" })
            Assert.Equal(docs.Select(q => q.GetProperty("question_id").GetInt64()),
                Lines(tmp.File($"a/samples_pope_{arm}.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("doc").GetProperty("question_id").GetInt64()));
        Assert.Equal(2 * docs.Count + 1, Lines(tmp.File("a/replies.jsonl")).Length);   // fingerprint + one reply per question and arm
        var summary = JsonDocument.Parse(File.ReadAllText(tmp.File("a/summary.json"))).RootElement;
        Assert.Equal("anyres", summary.GetProperty("run").GetProperty("image_aspect").GetString());
        AssertVanillaFromScratch(model, docs.Select(q => (Path.Combine(ImageEvalCliTests.Images, q.GetProperty("image").GetString()!),
            LlavaPrompts.Pope(q.GetProperty("text").GetString()!))).ToList(), tmp.File("a/samples_pope_vanilla.jsonl"), "reply", 3);
        Assert.NotEqual(Lines(tmp.File("a/samples_pope_vanilla.jsonl")).Select(ImageEvalCliTests.Reply), Lines(tmp.File("a/samples_pope_gated.jsonl")).Select(ImageEvalCliTests.Reply));

        var rerun = CliRunner.Run([.. run, "--out", tmp.File("b")]);
        Assert.True(rerun.ExitCode == 0, rerun.Stderr);
        ImageEvalCliTests.SameFiles(tmp.File("a"), tmp.File("b"));

        // A run killed while writing the 8th reply (the first of the second image, chelsea.png, under the second arm):
        // the lines before it, and half of it.
        string[] log = Lines(tmp.File("a/replies.jsonl"));
        Directory.CreateDirectory(tmp.File("resumed"));
        File.WriteAllText(tmp.File("resumed/replies.partial.jsonl"), string.Concat(log.Take(9).Select(l => l + "\n")) + log[9][..(log[9].Length / 2)]);
        var resumed = CliRunner.Run([.. run, "--out", tmp.File("resumed")]);
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        Assert.Contains("resuming: 8 of 12 replies", resumed.Stderr);
        ImageEvalCliTests.SameFiles(tmp.File("a"), tmp.File("resumed"));

        var aspect = CliRunner.Run([.. run, "--image-aspect", "pad", "--out", tmp.File("p")]);
        Assert.Equal(2, aspect.ExitCode);
        Assert.Contains("--image-aspect applies to LLaVA-1.5", aspect.Stderr);
        Assert.False(Directory.Exists(tmp.File("p")));
    }

    [SkippableFact]
    public void Chair_CaptionsEveryImageOnce_VanillaEqualsScratch_RerunByteIdentical()
    {
        SharedData.Path("data", "chair", ChairScorer.WordMapsFile);
        using var tmp = new TempDir();
        string model = Checkpoint(tmp);
        ImageEvalCliTests.CocoPhotos(tmp);
        string[] run = ["eval", "chair", model, "--images", tmp.File("coco"), "--image-ids", tmp.File("ids.txt"), "--gt", tmp.File("gt.json"),
            "--max-new-tokens", "6", "--scores", ImageEvalCliTests.Scores(tmp), "--mode", "contrast", "--lambda", "6", "--bootstrap", "50"];
        var r = CliRunner.Run([.. run, "--out", tmp.File("a")]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        foreach (string arm in new[] { "vanilla", "gated" })
            Assert.Equal([1L, 2L, 3L], Lines(tmp.File($"a/samples_chair_{arm}.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("image_id").GetInt64()));
        AssertVanillaFromScratch(model, Lines(tmp.File("ids.txt")).Select(f => (tmp.File($"coco/{f}"), LlavaPrompts.Chair)).ToList(),
            tmp.File("a/samples_chair_vanilla.jsonl"), "caption", 6);

        var rerun = CliRunner.Run([.. run, "--out", tmp.File("b")]);
        Assert.True(rerun.ExitCode == 0, rerun.Stderr);
        ImageEvalCliTests.SameFiles(tmp.File("a"), tmp.File("b"));
    }
}
