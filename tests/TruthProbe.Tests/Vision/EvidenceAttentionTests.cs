using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using TruthProbe.Formats;
using TruthProbe.Tests.Common;
using static TruthProbe.Tests.Vision.LlavaScoreTests;

namespace TruthProbe.Tests.Vision;

/// <summary>
/// <c>attention</c> against the float64 softmax patterns of <see cref="LlavaReference"/> (per query head, GQA 4:2):
/// the share of the last token's attention on the image positions, or on the context's tokens for text rows.
/// </summary>
public sealed class EvidenceAttentionTests
{
    /// <summary>The first rows only (the reference is slow): two gold, two hallucinated, images a, b, a, c.</summary>
    private const int N = 4;

    /// <summary>Per (layer, head) the mean over <paramref name="rows"/> of the reference pattern's last query row summed over the span, and the mean over gold rows.</summary>
    private static (double[] All, double[] Gold) Expected(Fixture f, int rows, Func<int, (float[] Pixels, int[] Ids, int Start, int Length)> row)
    {
        int layers = f.Config.Text.Layers, heads = f.Config.Text.Heads;
        var all = new double[layers * heads];
        var gold = new double[layers * heads];
        for (int i = 0; i < rows; i++)
        {
            var (pixels, ids, start, length) = row(i);
            var hooks = new Dictionary<string, double[]>();
            LlavaReference.Run(f.Folder, f.Config, pixels, ids, hooks);
            int T = ids.Length;
            for (int l = 0; l < layers; l++)
                for (int h = 0; h < heads; h++)
                {
                    var pattern = hooks[$"blocks.{l}.attn.hook_pattern"];   // [H, T, T]
                    double share = 0;
                    for (int j = start; j < start + length; j++) share += pattern[(h * T + T - 1) * T + j];
                    all[l * heads + h] += share / rows;
                    if (i % 2 == 0) gold[l * heads + h] += share / ((rows + 1) / 2);
                }
        }
        return (all, gold);
    }

    private static void AssertOutputs(string outDir, (double[] All, double[] Gold) expected)
    {
        var npy = Npy.Read(Path.Combine(outDir, "attention.npy"));
        Assert.Equal([2, 4], npy.Shape);
        Assert.Equal("<f8", npy.DType);
        var csv = File.ReadAllLines(Path.Combine(outDir, "attention.csv"));
        Assert.Equal("layer,head,share,share_gold,share_hallucinated", csv[0]);
        for (int i = 0; i < expected.All.Length; i++)
        {
            Assert.True(Math.Abs(npy.Data[i] - expected.All[i]) < 1e-6, $"head {i}: share {npy.Data[i]} vs float64 {expected.All[i]}");
            var cells = csv[1 + i].Split(',');
            Assert.Equal($"{i / 4},{i % 4}", $"{cells[0]},{cells[1]}");
            Assert.Equal(npy.Data[i], double.Parse(cells[2], CultureInfo.InvariantCulture));
            Assert.True(Math.Abs(double.Parse(cells[3], CultureInfo.InvariantCulture) - expected.Gold[i]) < 1e-6, $"head {i}: gold share");
        }
        // The shares are not all alike, so the comparison above sees the heads apart.
        Assert.True(expected.All.Max() - expected.All.Min() > 0.05);
        Assert.True(File.Exists(Path.Combine(outDir, "heatmap.png")));
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")))!;
        Assert.Equal(N, (int)manifest["rows"]!);
    }

    [Fact]
    public void ImageRows_ShareOnTheImagePositions_MatchesFloat64Patterns()
    {
        using var f = new Fixture();
        string rows = WriteRows(f.Tmp), outDir = f.Tmp.File("att");
        var r = CliRunner.Run("attention", f.Folder, "--data", rows, "--images", f.Images, "--samples", $"{N}", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.Stderr);
        int tokens = f.Config.ImageTokens;
        AssertOutputs(outDir, Expected(f, N, i => (Normalised(Rgb((ulong)(Rows[i].Image[0] - 'a' + 1))), ImageIds(i, tokens), 0, tokens)));
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")))!;
        Assert.Equal("image", (string?)manifest["inputs"]!["image_mode"]);
        Assert.Equal(tokens, (double)manifest["mean_span_tokens"]!);
    }

    [Fact]
    public void TextRows_ShareOnTheContextTokens_MatchesFloat64Patterns()
    {
        using var f = new Fixture();
        // The default template on a word-level vocabulary: "Context:", "Question:" and "Answer:" are unknown (id 0).
        var sb = new StringBuilder();
        int[] Context(int i) => Enumerable.Range(45 + i % 4, 2 + i % 3).ToArray();
        for (int i = 0; i < Rows.Length; i++)
            sb.Append(new JsonObject { ["context"] = Words(Context(i)), ["question"] = Words(Rows[i].Question), ["answer"] = Words(Rows[i].Answer), ["label"] = i % 2 == 0 ? "gold" : "hallucinated" }.ToJsonString()).Append('\n');
        string rows = f.Tmp.File("text.jsonl"), outDir = f.Tmp.File("att");
        File.WriteAllText(rows, sb.ToString());
        var r = CliRunner.Run("attention", f.Folder, "--data", rows, "--samples", $"{N}", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.Stderr);
        AssertOutputs(outDir, Expected(f, N, i => (Normalised(Rgb(1)), [0, .. Context(i), 0, .. Rows[i].Question, 0, .. Rows[i].Answer], 1, Context(i).Length)));
    }

    [Fact]
    public void ImageRows_TwoShardsByImageMerged_WriteWhatOneProcessWrites()
    {
        using var f = new Fixture();
        string rows = WriteRows(f.Tmp);
        string[] run = ["attention", f.Folder, "--data", rows, "--images", f.Images];
        Assert.Equal(0, CliRunner.Run([.. run, "--out", f.Tmp.File("single")]).ExitCode);
        for (int k = 1; k <= 2; k++)
        {
            var part = CliRunner.Run([.. run, "--shard", $"{k}/2", "--out", f.Tmp.File($"part-{k}")]);
            Assert.True(part.ExitCode == 0, part.Stderr);
        }
        var merged = CliRunner.Run("merge", f.Tmp.File("part-2"), f.Tmp.File("part-1"), "--out", f.Tmp.File("merged"));
        Assert.True(merged.ExitCode == 0, merged.Stderr);
        foreach (string file in new[] { "attention.npy", "attention.csv", "heatmap.png", "manifest.json" })
            Assert.True(File.ReadAllBytes(f.Tmp.File($"single/{file}")).SequenceEqual(File.ReadAllBytes(f.Tmp.File($"merged/{file}"))), file + " differs");
    }

    [Fact]
    public void TextOnlyMode_HasNoImageSpan_IsOneError()
    {
        using var f = new Fixture();
        var r = CliRunner.Run("attention", f.Folder, "--data", WriteRows(f.Tmp), "--image-mode", "text-only", "--out", f.Tmp.File("att"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("text-only shows no image, so there is no image span", r.Stderr);
        Assert.False(File.Exists(Path.Combine(f.Tmp.File("att"), "attention.npy")));
    }
}
