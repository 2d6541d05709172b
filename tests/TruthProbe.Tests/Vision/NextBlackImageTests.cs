using TruthProbe.Imaging;
using TruthProbe.Probing;
using TruthProbe.Tests.Common;
using TruthProbe.Vision;
using static TruthProbe.Tests.Vision.LlavaScoreTests;

namespace TruthProbe.Tests.Vision;

/// <summary>
/// <c>score --image-mode black</c> on LLaVA-NeXT: the paper's black image (all-zero RGB, 336x336) goes through the
/// anyres processor like a photo, so its token count is the grid's for a 336x336 image, not LLaVA-1.5's fixed count.
/// </summary>
public sealed class NextBlackImageTests
{
    [Fact]
    public void Score_BlackMode_TakesTheAnyresGridOf336x336_AndMatchesFloat64Reference()
    {
        using var tmp = new TempDir();
        var config = LlavaNextTests.TinyNext();
        string folder = LlavaNextTests.Write(tmp, config, LlavaLayout.Hub);
        WriteTokenizer(folder);
        var score = CliRunner.Run("score", folder, "--data", WriteRows(tmp), "--image-mode", "black", "--out", tmp.File("black"), "--folds", "2", "--no-control");
        Assert.True(score.ExitCode == 0, score.Stderr);
        var set = ActivationSet.Load(Path.Combine(tmp.File("black"), ActivationCollector.FileName), null);
        Assert.Equal("black", set.Metadata["image_mode"]);
        Assert.Equal("anyres", set.Metadata["image_aspect"]);
        Assert.Equal("all-zero RGB 336x336", set.Metadata["image"]);

        // Tiles of 28, pinpoints (h, w) (28,56) (56,28) (56,56) (84,28) (28,84): select_best_resolution's scale for
        // (56,56) is 56/336 -> 56x56 = 3136 effective pixels, beating the others' 28x28 = 784 at 28/336. Fit: both
        // scales equal, so the width side is the target's (56) and the height min(ceil(336 * 56/336), 56) = 56: no pad.
        // Grid 2x2, features 8x8; 336/336 is not > 8/8 -> new_width 336*8//336 = 8, padding 0: all 8 x 8 kept.
        // Tokens 16 (base tile) + 8 * (8 + 1) = 88.
        Assert.Equal((56, 56), AnyresPreprocessor.SelectBestResolution(336, 336, config.GridPinpoints));
        Assert.Equal((56, 56), AnyresPreprocessor.FittedSize(336, 336, (56, 56)));
        const int tokens = 88;
        Assert.Equal(tokens, AnyresLayout.For(config, new ImageSize(336, 336)).ImageTokens);

        var pixels = LlavaNextTests.ReferencePixels(new RgbImage(336, 336), (56, 56), (56, 56));
        Assert.Equal(5 * 3 * 28 * 28, pixels.Length);
        foreach (int i in new[] { 1, 6 })
        {
            var reference = LlavaReference.RunNext(folder, config, pixels, 2, 2, 336, 336, ImageIds(i, tokens));
            double error = RelativeToReference(LastZ(set, i), reference);
            Assert.True(error < 1e-4, $"black row {i}: hook_z relative error {error:E2}");
        }
    }
}
