using TruthProbe.Cli;
using TruthProbe.Imaging;
using TruthProbe.Lab;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Lab;

public class SceneWorldTests
{
    private static readonly SceneDatasets Sets = SceneDatasets.Sample(300, seed: 7);

    [Fact]
    public void Classes_AreTheTextWorldsObjects_AndEveryClassHasOneTheme()
    {
        Assert.Equal(SyntheticWorld.Objects, SceneWorld.Classes.Select(c => c + "s"));
        Assert.Equal(Enumerable.Range(0, SceneWorld.Classes.Length), SceneWorld.Themes.SelectMany(t => t).Order());
        Assert.Equal(SyntheticWorld.Colours.Length, SceneWorld.ColourRgb.Length);
    }

    [Fact]
    public void Glyphs_AreDistinctEnoughToTellClassesApart()
    {
        var g = SceneWorld.Glyphs;
        for (int a = 0; a < g.Length; a++)
        {
            Assert.InRange(g[a].Count(b => b), 9, 16);
            for (int b = a + 1; b < g.Length; b++) Assert.True(g[a].Zip(g[b]).Count(p => p.First != p.Second) >= 7, $"glyphs {a} and {b} are too alike");
        }
    }

    [Theory]
    [InlineData(56)]
    [InlineData(64)]
    [InlineData(112)]
    public void Render_PaintsEachObjectsGlyphInItsColour_AndNothingElse(int size)
    {
        var scene = Sets.Scenes[5];
        var image = SceneWorld.Render(scene, size);
        int cell = size / SceneWorld.Grid, scale = (cell - 2) / SceneWorld.GlyphSize;
        // Pixels of each colour: the glyph's set cells times scale squared; the rest is background.
        var counts = new Dictionary<(byte, byte, byte), int>();
        for (int i = 0; i < image.Pixels.Length; i += 3)
        {
            var px = (image.Pixels[i], image.Pixels[i + 1], image.Pixels[i + 2]);
            counts[px] = counts.GetValueOrDefault(px) + 1;
        }
        foreach (var o in scene.Objects)
            Assert.Equal(SceneWorld.Glyphs[o.Class].Count(b => b) * scale * scale, counts[SceneWorld.ColourRgb[o.Colour]]);
        Assert.Equal(size * size - scene.Objects.Sum(o => SceneWorld.Glyphs[o.Class].Count(b => b) * scale * scale), counts[SceneWorld.Background]);
        Assert.Equal(scene.Objects.Count + 1, counts.Count);
    }

    [Fact]
    public void Scenes_FollowTheirThemes_AndClassesDifferInFrequency()
    {
        double inTheme = Sets.Scenes.SelectMany(s => s.Objects.Select(o => SceneWorld.Themes[s.Theme].Contains(o.Class))).Average(b => b ? 1.0 : 0.0);
        // 80% drawn from the theme, plus the 1 in 4 of the other draws that land in it anyway: 0.85 expected.
        Assert.InRange(inTheme, 0.80, 0.90);
        // Themes drawn 0.4 (home) vs 0.1 (tech): home's classes are in 2.3 times as many of these 300 scenes.
        double Mean(int theme) => SceneWorld.Themes[theme].Average(c => Sets.Frequency[c]);
        Assert.True(Mean(0) > 1.8 * Mean(3), $"frequencies {string.Join(",", Sets.Frequency)}");
        Assert.All(Sets.Scenes, s => Assert.Equal(s.Objects.Count, s.Objects.Select(o => o.Cell).Distinct().Count()));
    }

    [Fact]
    public void Pope_PositivesArePresent_NegativesAbsent_AndEachSettingRanksItsNegatives()
    {
        var random = Sets.Pope("random", 1);
        foreach (string setting in SceneDatasets.PopeSettings)
        {
            var questions = Sets.Pope(setting, 1);
            Assert.All(questions, q => Assert.Equal(q.Present, Sets.Scenes[q.Scene].Has(q.Class)));
            Assert.Equal(questions.Count(q => q.Present), questions.Count(q => !q.Present));
        }
        foreach (var q in Sets.Pope("popular", 1).Where(q => !q.Present))
        {
            var absent = Enumerable.Range(0, SceneWorld.Classes.Length).Where(c => !Sets.Scenes[q.Scene].Has(c));
            Assert.True(Sets.Frequency[q.Class] >= absent.Select(c => Sets.Frequency[c]).OrderDescending().ElementAt(SceneDatasets.PositivesPerScene - 1));
        }
        double CoOccurrence(IEnumerable<ObjectQuestion> qs) =>
            qs.Where(q => !q.Present).Average(q => Sets.Scenes[q.Scene].Objects.Sum(o => Sets.CoOccurrence[o.Class, q.Class]));
        Assert.True(CoOccurrence(Sets.Pope("adversarial", 1)) > 2 * CoOccurrence(random),
            $"adversarial {CoOccurrence(Sets.Pope("adversarial", 1)):0.0} vs random {CoOccurrence(random):0.0}");
    }

    [Fact]
    public void LabScenes_WritesDecodablePngsOfTheScenes_AndTheSameSeedGivesTheSameBytes()
    {
        using var tmp = new TempDir();
        foreach (string dir in new[] { "a", "b" })
            Assert.Equal(0, CliRunner.Run("lab", "scenes", "--count", "12", "--size", "56", "--seed", "5", "--out", tmp.File(dir)).ExitCode);
        var files = Directory.GetFiles(tmp.File("a"), "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(tmp.File("a"), f)).Order().ToList();
        Assert.Equal(12 + 8, files.Count);
        foreach (string f in files)
            Assert.Equal(File.ReadAllBytes(Path.Combine(tmp.File("a"), f)), File.ReadAllBytes(Path.Combine(tmp.File("b"), f)));
        var scene = SceneDatasets.Sample(12, 5).Scenes[3];
        var decoded = ImageFile.Load(Path.Combine(tmp.File("a"), "images", scene.ImageName));
        Assert.Equal(SceneWorld.Render(scene, 56).Pixels, decoded.Pixels);
        // Per object, a presence episode on its scene and one on a scene without its class, a gold and a hallucinated row each.
        Assert.Equal(SceneDatasets.Sample(12, 5).Scenes.Sum(s => s.Objects.Count) * 2 * 2, File.ReadAllLines(Path.Combine(tmp.File("a"), "probing.jsonl")).Length);
    }
}
