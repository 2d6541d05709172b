using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Vision;

namespace TruthProbe.Tests.Vision;

/// <summary>
/// The image prefix's cache, reused for every prompt about the image, must give exactly what encoding each prompt
/// from position 0 gives (<see cref="LlavaModel.Generate"/>, no reuse), for the vanilla model and under gates.
/// </summary>
public sealed class ImagePrefixCacheTests
{
    private const int ImageToken = 60;

    /// <summary>Prompts as a chat template makes them: a shared head (system text, the image, the text before the question), then questions of different lengths.</summary>
    private static readonly int[][] Prompts =
    [
        [1, 7, 9, 11, ImageToken, 13, 5, 22, 41, 17, 3],
        [1, 7, 9, 11, ImageToken, 13, 5, 30, 3],
        [1, 7, 9, 11, ImageToken, 13, 5, 22, 19, 33, 8, 3],
    ];

    private static LlavaModel Load(TempDir tmp, LlavaConfig config)
    {
        string folder = tmp.File("llava");
        LlavaCheckpoint.WriteRandom(folder, config, LlavaLayout.Hub, 23, WeightDType.F32);
        return LlavaModel.Load(folder);
    }

    [Fact]
    public void ReusedPrefix_GivesTheIdsOfEncodingEachPromptFromScratch_VanillaAndGated()
    {
        using var tmp = new TempDir();
        var config = LlavaModelTests.Tiny(56);
        using var model = Load(tmp, config);
        var size = new ImageSize(56, 56);
        // BOS, 3 text ids, 16 image positions, 13, 5: the longest prefix all three share.
        AssertReuseEqualsScratch(model, [(LlavaModelTests.Pixels(56, 3), size, 4 + 16 + 2), (LlavaModelTests.Pixels(56, 4), size, 4 + 16 + 2)]);
    }

    /// <summary>
    /// LLaVA-NeXT: two images whose anyres grids differ (60x36: 5 tiles, 52 image tokens; 15x50: 3 tiles, 40, derived in
    /// <see cref="LlavaNextTests"/>), so the prefix and the positions after it move with the image. The vanilla replies
    /// also equal the float64 reference's greedy ids (<see cref="LlavaReference.RunNext"/>).
    /// </summary>
    [Fact]
    public void LlavaNext_ReusedPrefix_GivesTheIdsOfEncodingEachPromptFromScratch_ImagesOfTwoTokenCounts()
    {
        using var tmp = new TempDir();
        var config = LlavaNextTests.TinyNext();
        string folder = LlavaNextTests.Write(tmp, config, LlavaLayout.Hub, 5);
        using var model = LlavaModel.Load(folder);
        (int Width, int Height, int Tokens, int Rows, int Columns)[] images = [(60, 36, 52, 2, 2), (15, 50, 40, 2, 1)];
        var prepared = images.Select(i => model.PrepareImage(LlavaNextTests.RandomImage(i.Width, i.Height, (ulong)i.Width))).ToList();
        var replies = AssertReuseEqualsScratch(model, prepared.Select((p, k) => (p.Pixels, (ImageSize?)p.Size, 4 + images[k].Tokens + 2)).ToList());

        for (int k = 0; k < images.Length; k++)
        {
            var ids = model.ExpandImageTokens(Prompts[1], prepared[k].Size).ToList();
            for (int step = 0; step < 2; step++)
            {
                var last = LlavaReference.RunNext(folder, config, prepared[k].Pixels, images[k].Rows, images[k].Columns, images[k].Height, images[k].Width, [.. ids]).Logits[^1];
                ids.Add(Array.IndexOf(last, last.Max()));
            }
            // Reply 2 of an image is prompt 1's vanilla one (prompts outside, arms inside).
            Assert.Equal(ids[^2..], replies[k][2][..2]);
        }
    }

    /// <summary>
    /// Every prompt under a vanilla and a gated arm, for each image: the replies with the prefix reused, and with every
    /// prompt prefilled from position 0 (no reuse), equal <see cref="LlavaModel.Generate"/>'s from scratch. Returns each
    /// image's replies, prompt by prompt, arms inside.
    /// </summary>
    private static List<List<int[]>> AssertReuseEqualsScratch(LlavaModel model, IReadOnlyList<(float[] Pixels, ImageSize? Size, int Prefix)> images)
    {
        var config = model.Config;
        var gates = new float[config.Text.Layers, config.Text.Heads];
        for (int l = 0; l < config.Text.Layers; l++)
            for (int h = 0; h < config.Text.Heads; h++) gates[l, h] = 0.2f + 0.5f * ((l * 3 + h) % 4);
        Interventions?[] arms = [null, new Interventions(config.Text).Gate(gates, GateSite.Head)];
        var options = new GenerationOptions { MaxNewTokens = 8, StopAtEos = false };

        var cache = new ImagePrefixCache(model, arms);
        var noReuse = new ImagePrefixCache(model, arms, reusePrefix: false);
        var all = new List<List<int[]>>();
        foreach (var (pixels, size, prefix) in images)
        {
            var expanded = Prompts.Select(p => model.ExpandImageTokens(p, size)).ToList();
            cache.SetImage(pixels, expanded, size);
            noReuse.SetImage(pixels, expanded, size);
            Assert.Equal(prefix, cache.PrefixLength);
            Assert.Equal(0, noReuse.PrefixLength);
            var replies = new List<int[]>();
            // Arms interleaved, as the eval verbs run them: each arm's cache must survive the other's turns.
            for (int i = 0; i < Prompts.Length; i++)
                for (int a = 0; a < arms.Length; a++)
                {
                    var reference = model.Generate(model.NewState(), Prompts[i], pixels, options with { Interventions = arms[a] }, imageSize: size);
                    var reused = cache.Generate(a, expanded[i], options);
                    Assert.Equal(reference.NewIds, reused.NewIds);
                    Assert.Equal(reference.NewIds, noReuse.Generate(a, expanded[i], options).NewIds);
                    replies.Add(reused.NewIds);
                }
            // The gates change the replies, so the arms' caches are really separate; and the prompts get different
            // replies, so a prompt continued from another's suffix would show.
            Assert.Contains(Enumerable.Range(0, Prompts.Length), i => !replies[2 * i].SequenceEqual(replies[2 * i + 1]));
            Assert.Contains(Enumerable.Range(1, Prompts.Length - 1), i => !replies[2 * i].SequenceEqual(replies[0]));
            all.Add(replies);
        }
        return all;
    }

    [Fact]
    public void PromptOutsideTheImagesPrompts_IsRefused()
    {
        using var tmp = new TempDir();
        var config = LlavaModelTests.Tiny(56);
        using var model = Load(tmp, config);
        var cache = new ImagePrefixCache(model, [null]);
        cache.SetImage(LlavaModelTests.Pixels(56, 3), Prompts.Select(p => model.ExpandImageTokens(p)).ToList());
        Assert.Throws<ArgumentException>(() => cache.Generate(0, model.ExpandImageTokens([1, 8, ImageToken, 13]), new GenerationOptions()));
    }
}
