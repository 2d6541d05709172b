using System.Text.Json;
using TruthProbe.Evaluation;
using TruthProbe.Formats;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Vision;
using static TruthProbe.Tests.Vision.QwenScoreTests;

namespace TruthProbe.Tests.Vision;

/// <summary>
/// Model-driven POPE / CHAIR on a tiny Qwen2.5-VL: the prefix reuse with M-RoPE against encoding every prompt from
/// position 0, and <c>eval pope</c> / <c>eval chair</c> through the chat template.
/// </summary>
public sealed class QwenEvalTests
{
    /// <summary>Chat-shaped prompts: system turn, the user turn's image item, then questions of different lengths and the generation prompt.</summary>
    private static int[] Prompt(params int[] question) =>
        [ImStart, 60, 61, 62, 63, 64, 65, ImEnd, ImStart, 66, VisionStart, Pad, VisionEnd, .. question, ImEnd, ImStart, 67];

    private static readonly int[][] Prompts = [Prompt(10, 11, 12), Prompt(13), Prompt(10, 14, 15, 16, 17)];

    private static Interventions[] Gated(QwenVLConfig config)
    {
        var gates = new float[config.Text.Layers, config.Text.Heads];
        for (int l = 0; l < config.Text.Layers; l++)
            for (int h = 0; h < config.Text.Heads; h++) gates[l, h] = 0.2f + 0.5f * ((l * 3 + h) % 4);
        return [new Interventions(config.Text).Gate(gates, GateSite.Head)];
    }

    [Fact]
    public void ReusedPrefix_GivesTheIdsOfEncodingEachPromptFromScratch_VanillaAndGated()
    {
        using var f = new Fixture();
        using var model = QwenVLModel.Load(f.Folder);
        Interventions?[] arms = [null, .. Gated(f.Config)];
        var options = new GenerationOptions { MaxNewTokens = 6, StopAtEos = false };
        var cache = new ImagePrefixCache(model, arms);
        // Two images of other token counts (112 x 84: 12, 56 x 112: 8), so the prefix and every later M-RoPE id move.
        foreach (var (width, height, seed) in new[] { (112, 84, 3UL), (56, 112, 4UL) })
        {
            var image = new QwenImage(QwenVisionTests.StillPixels(width, height, seed), 1, height / 14, width / 14, 2);
            var expanded = Prompts.Select(p => model.ExpandImageTokens(p, image)).ToList();
            cache.SetImage(image, expanded);
            Assert.Equal(13 + image.Tokens - 1, cache.PrefixLength);   // through the vision end token; the first question ids differ
            for (int i = 0; i < Prompts.Length; i++)
                for (int a = 0; a < arms.Length; a++)
                {
                    var reference = model.Generate(model.NewState(), Prompts[i], image, options with { Interventions = arms[a] });
                    var reused = cache.Generate(a, expanded[i], options);
                    Assert.Equal(reference.NewIds, reused.NewIds);
                }
            // The gates change the replies (else the gated arm would prove nothing).
            Assert.NotEqual(cache.Generate(0, expanded[0], options).NewIds, cache.Generate(1, expanded[0], options).NewIds);
        }
    }

    private static string Questions(TempDir tmp)
    {
        string path = tmp.File("pope.jsonl");
        var lines = new[] { ("a.png", "w10 w11", "yes"), ("a.png", "w13", "no"), ("b.png", "w10 w14 w15", "no"), ("b.png", "w16", "yes") }
            .Select((q, i) => JsonSerializer.Serialize(new { question_id = i + 1, image = q.Item1, text = q.Item2, label = q.Item3 }));
        File.WriteAllLines(path, lines);
        return path;
    }

    private static string Reply(string sampleLine) => JsonDocument.Parse(sampleLine).RootElement.GetProperty("reply").GetString()!;

    [Fact]
    public void Pope_RepliesAreTheLibrarysGreedyContinuationsOfTheChatTemplatePrompts()
    {
        using var f = new Fixture();
        string questions = Questions(f.Tmp), scores = f.Tmp.File("scores.npy");
        Npy.WriteFloat64(scores, Enumerable.Range(0, 8).Select(i => 0.5 + 0.45 * Math.Sin(3 * i)).ToArray(), 2, 4);
        var r = CliRunner.Run("eval", "pope", f.Folder, "--questions", questions, "--images", f.Images, "--max-new-tokens", "3",
            "--scores", scores, "--mode", "contrast", "--lambda", "6", "--max-pixels", "6000", "--out", f.Tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);

        using var model = QwenVLModel.Load(f.Folder);
        var vanilla = File.ReadAllLines(f.Tmp.File("out/samples_pope_vanilla.jsonl"));
        Assert.Equal(4, vanilla.Length);
        Assert.Equal(4, File.ReadAllLines(f.Tmp.File("out/samples_pope_gated.jsonl")).Length);
        var processor = model.ImageProcessor(maxPixels: 6000);
        var q = File.ReadAllLines(questions).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        for (int i = 0; i < q.Count; i++)
        {
            string prompt = QwenPrompts.Pope(false, q[i].GetProperty("text").GetString()!);
            Assert.Equal(prompt, JsonDocument.Parse(vanilla[i]).RootElement.GetProperty("prompt").GetString());
            var image = processor.Preprocess(ImageFile.Load(Path.Combine(f.Images, q[i].GetProperty("image").GetString()!)));
            Assert.Equal(6, image.Tokens);   // 112 x 84 under 6,000 pixels: 84 x 56
            var expected = model.Generate(model.NewState(), model.Language.Encode(prompt), image, new GenerationOptions { MaxNewTokens = 3 });
            Assert.Equal(model.Language.Tokenizer!.Decode(expected.NewIds).Trim(), Reply(vanilla[i]));
        }
        Assert.True(vanilla.Select(Reply).Distinct().Count() > 1, string.Join(" | ", vanilla.Select(Reply)));
        var summary = JsonDocument.Parse(File.ReadAllText(f.Tmp.File("out/summary.json"))).RootElement;
        Assert.Equal("smart_resize 3136..6000 pixels", summary.GetProperty("run").GetProperty("image_aspect").GetString());
    }

    [SkippableFact]
    public void Chair_CaptionsThroughTheChatTemplate()
    {
        SharedData.Path("data", "chair", ChairScorer.WordMapsFile);
        using var f = new Fixture();
        Directory.CreateDirectory(f.Tmp.File("coco"));
        foreach (var (name, id) in new[] { ("a.png", 1), ("b.png", 2) })
            File.Copy(Path.Combine(f.Images, name), f.Tmp.File($"coco/COCO_val2014_{id:D12}.png"));
        File.WriteAllLines(f.Tmp.File("ids.txt"), ["COCO_val2014_000000000001.png", "COCO_val2014_000000000002.png"]);
        File.WriteAllText(f.Tmp.File("gt.json"), """{"1": ["person"], "2": ["cat"]}""");
        var r = CliRunner.Run("eval", "chair", f.Folder, "--images", f.Tmp.File("coco"), "--image-ids", f.Tmp.File("ids.txt"), "--gt", f.Tmp.File("gt.json"),
            "--max-new-tokens", "4", "--out", f.Tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        var samples = File.ReadAllLines(f.Tmp.File("out/samples_chair_vanilla.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.All(samples, s => Assert.Equal(QwenPrompts.Chair(false), s.GetProperty("prompt").GetString()));
        using var model = QwenVLModel.Load(f.Folder);
        var image = model.ImageProcessor().Preprocess(ImageFile.Load(f.Tmp.File("coco/COCO_val2014_000000000002.png")));
        var expected = model.Generate(model.NewState(), model.Language.Encode(QwenPrompts.Chair(false)), image, new GenerationOptions { MaxNewTokens = 4 });
        Assert.Equal(model.Language.Tokenizer!.Decode(expected.NewIds).Trim(), samples[1].GetProperty("caption").GetString());
    }

    [Fact]
    public void BadEvalOptions_AreOneErrorEach()
    {
        using var f = new Fixture();
        string questions = Questions(f.Tmp);
        var r = CliRunner.Run("eval", "pope", f.Folder, "--questions", questions, "--images", f.Images, "--image-aspect", "pad", "--out", f.Tmp.File("x"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--image-aspect is LLaVA's", r.Stderr);
    }
}
