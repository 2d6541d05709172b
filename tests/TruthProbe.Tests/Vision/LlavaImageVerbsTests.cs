using System.Text.Json;
using System.Text.Json.Nodes;
using TruthProbe.Formats;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Probing;
using TruthProbe.Tests.Common;
using TruthProbe.Tests.Evaluation;
using TruthProbe.Tests.Imaging;
using TruthProbe.Vision;
using static TruthProbe.Tests.Vision.LlavaScoreTests;

namespace TruthProbe.Tests.Vision;

/// <summary>
/// The image verbs beyond LLaVA-1.5 in the llava-hf layout: <c>score --images</c> and <c>attention</c> on LLaVA-NeXT
/// (anyres, a token count per image) against <see cref="LlavaReference.RunNext"/>, and every image verb on the original
/// liuhaotian layout (<c>--vision-tower DIR</c>) against the converted llava-hf folder holding the same weights.
/// </summary>
public sealed class LlavaImageVerbsTests
{
    /// <summary>
    /// The NeXT rows' images (tiles of 28): size, best resolution and fitted size (h, w) and image tokens, as
    /// <see cref="LlavaNextTests"/> derives them by hand from transformers' formulas for these sizes.
    /// </summary>
    private static readonly Dictionary<string, (int Width, int Height, (int Height, int Width) Best, (int Height, int Width) Fitted, int Tokens)> NextImages = new()
    {
        ["a.png"] = (60, 36, (56, 56), (34, 56), 52),
        ["b.png"] = (15, 50, (56, 28), (56, 17), 40),
        ["c.png"] = (50, 20, (28, 56), (23, 56), 52),
    };

    private static ulong Seed(string image) => (ulong)(image[0] - 'a' + 31);

    private static void WritePng(string path, RgbImage image) =>
        File.WriteAllBytes(path, PngBuilder.Png(PngBuilder.Ihdr(image.Width, image.Height, 8, 2), PngBuilder.Filter(image.Pixels, 3 * image.Width, 3, 0)));

    [Fact]
    public void Next_ScoreAndAttention_ImageRows_MatchFloat64Reference()
    {
        using var tmp = new TempDir();
        var config = LlavaNextTests.TinyNext();
        string folder = LlavaNextTests.Write(tmp, config, LlavaLayout.Hub);
        WriteTokenizer(folder);
        string images = tmp.File("images");
        Directory.CreateDirectory(images);
        foreach (var (name, image) in NextImages) WritePng(Path.Combine(images, name), LlavaNextTests.RandomImage(image.Width, image.Height, Seed(name)));
        string rows = WriteRows(tmp);

        var score = CliRunner.Run("score", folder, "--data", rows, "--images", images, "--out", tmp.File("score"), "--folds", "2", "--no-control");
        Assert.True(score.ExitCode == 0, score.Stderr);
        const int n = 4;   // rows 0-3: images a, b, a, c
        var attention = CliRunner.Run("attention", folder, "--data", rows, "--images", images, "--samples", $"{n}", "--out", tmp.File("att"));
        Assert.True(attention.ExitCode == 0, attention.Stderr);

        var set = ActivationSet.Load(Path.Combine(tmp.File("score"), ActivationCollector.FileName), null);
        Assert.Equal("anyres", set.Metadata["image_aspect"]);
        int layers = config.Text.Layers, heads = config.Text.Heads;
        var shares = new double[layers * heads];
        for (int i = 0; i < n; i++)
        {
            var image = NextImages[Rows[i].Image];
            var pixels = LlavaNextTests.ReferencePixels(LlavaNextTests.RandomImage(image.Width, image.Height, Seed(Rows[i].Image)), image.Best, image.Fitted);
            int[] ids = ImageIds(i, image.Tokens);
            var hooks = new Dictionary<string, double[]>();
            var reference = LlavaReference.RunNext(folder, config, pixels, image.Best.Height / 28, image.Best.Width / 28, image.Height, image.Width, ids, hooks);
            double error = RelativeToReference(LastZ(set, i), reference);
            Assert.True(error < 1e-4, $"row {i}: hook_z relative error {error:E2}");
            int T = ids.Length;
            for (int l = 0; l < layers; l++)
                for (int h = 0; h < heads; h++)
                {
                    var pattern = hooks[$"blocks.{l}.attn.hook_pattern"];   // [H, T, T]; the image span is 0..tokens-1
                    for (int j = 0; j < image.Tokens; j++) shares[l * heads + h] += pattern[(h * T + T - 1) * T + j] / n;
                }
        }
        var npy = Npy.Read(Path.Combine(tmp.File("att"), "attention.npy"));
        Assert.Equal([layers, heads], npy.Shape);
        for (int i = 0; i < shares.Length; i++)
            Assert.True(Math.Abs(npy.Data[i] - shares[i]) < 1e-6, $"head {i}: share {npy.Data[i]} vs float64 {shares[i]}");
        Assert.True(shares.Max() - shares.Min() > 0.05, "the heads' shares differ, so the comparison sees them apart");
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.File("att"), "manifest.json")))!;
        Assert.Equal((52 + 40 + 52 + 52) / 4.0, (double)manifest["mean_span_tokens"]!);

        // Anyres has no aspect choice.
        var aspect = CliRunner.Run("score", folder, "--data", rows, "--images", images, "--image-aspect", "pad", "--out", tmp.File("bad"), "--folds", "2");
        Assert.Equal(2, aspect.ExitCode);
        Assert.Contains("is LLaVA-NeXT", aspect.Stderr);
    }

    /// <summary>Non-square images (so LLaVA's pad and CLIP's crop differ) in place of the fixture's squares.</summary>
    private static void NonSquareImages(Fixture f)
    {
        foreach (var (name, w, h) in new[] { ("a.png", 70, 56), ("b.png", 56, 84), ("c.png", 64, 56) })
            WritePng(Path.Combine(f.Images, name), LlavaNextTests.RandomImage(w, h, Seed(name)));
    }

    [Fact]
    public void Original_ScoreAndAttention_GiveTheConvertedFoldersOutputs()
    {
        using var f = new Fixture();
        NonSquareImages(f);
        var (original, clip) = LlavaOriginalTests.ToOriginal(f.Tmp, f.Folder, f.Config);
        string rows = WriteRows(f.Tmp);
        CliRunner.Result Run(params string[] args)
        {
            var r = CliRunner.Run(args);
            Assert.True(r.ExitCode == 0, r.Stderr);
            return r;
        }
        string[] score = ["score", "--data", rows, "--images", f.Images, "--folds", "2", "--no-control"];
        string[] attention = ["attention", "--data", rows, "--images", f.Images, "--samples", "4"];
        // The original layout pads by default (image_aspect_ratio "pad"); the converted folder is told to.
        Run([.. score, original, "--vision-tower", clip, "--out", f.Tmp.File("orig")]);
        Run([.. score, f.Folder, "--image-aspect", "pad", "--out", f.Tmp.File("hf")]);
        Run([.. score, f.Folder, "--out", f.Tmp.File("crop")]);
        Run([.. attention, original, "--vision-tower", clip, "--out", f.Tmp.File("orig-att")]);
        Run([.. attention, f.Folder, "--image-aspect", "pad", "--out", f.Tmp.File("hf-att")]);

        ActivationSet Set(string dir) => ActivationSet.Load(Path.Combine(f.Tmp.File(dir), ActivationCollector.FileName), null);
        var orig = Set("orig");
        Assert.Equal(Set("hf").Values, orig.Values);
        Assert.NotEqual(Set("crop").Values, orig.Values);
        Assert.Equal(File.ReadAllBytes(f.Tmp.File("hf/scores.csv")), File.ReadAllBytes(f.Tmp.File("orig/scores.csv")));
        Assert.Equal("pad", orig.Metadata["image_aspect"]);
        Assert.Equal(Path.GetFullPath(clip), orig.Metadata["vision_tower"]);
        Assert.Equal(Npy.Read(f.Tmp.File("hf-att/attention.npy")).Data, Npy.Read(f.Tmp.File("orig-att/attention.npy")).Data);

        var inspect = Run("inspect", original, "--vision-tower", clip);
        Assert.Contains($"image token:  {LlavaConfig.OriginalImageToken}, {f.Config.ImageTokens} per image", inspect.Stdout);
        Assert.Contains("aspect pad by default", inspect.Stdout);
        var missing = CliRunner.Run([.. score, original, "--out", f.Tmp.File("missing")]);
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("--vision-tower DIR", missing.Stderr);
    }

    [SkippableFact]
    public void Original_EvalPopeAndChair_GiveTheConvertedFoldersReplies()
    {
        using var tmp = new TempDir();
        string hf = ImageEvalCliTests.Checkpoint(tmp), questions = ImageEvalCliTests.Questions(tmp, 6);
        var (original, clip) = LlavaOriginalTests.ToOriginal(tmp, hf, LlavaModelTests.Tiny(56));
        ImageEvalCliTests.CocoPhotos(tmp);
        SharedData.Path("data", "chair", ChairWordMaps);
        List<string> Replies(string file, string field) => File.ReadLines(file).Select(l => JsonDocument.Parse(l).RootElement.GetProperty(field).GetString()!).ToList();
        List<string> Run(string task, string model, string outDir, params string[] extra)
        {
            string[] input = task == "pope" ? ["--questions", questions, "--images", ImageEvalCliTests.Images]
                : ["--images", tmp.File("coco"), "--image-ids", tmp.File("ids.txt"), "--gt", tmp.File("gt.json")];
            var r = CliRunner.Run(["eval", task, model, .. input, "--max-new-tokens", "4", "--out", tmp.File(outDir), .. extra]);
            Assert.True(r.ExitCode == 0, r.Stderr);
            return Replies(tmp.File($"{outDir}/samples_{task}_vanilla.jsonl"), task == "pope" ? "reply" : "caption");
        }
        foreach (string task in new[] { "pope", "chair" })
        {
            var converted = Run(task, hf, task + "-hf", "--image-aspect", "pad");
            Assert.Equal(converted, Run(task, original, task + "-orig", "--vision-tower", clip));
            Assert.True(converted.Distinct().Count() > 1, $"{task}: the replies differ by image or question, so a mix-up would show");
        }
    }

    private const string ChairWordMaps = TruthProbe.Evaluation.ChairScorer.WordMapsFile;
}
