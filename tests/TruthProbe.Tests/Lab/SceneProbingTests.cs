using TruthProbe.Cli;
using TruthProbe.Demo;
using TruthProbe.Lab;
using TruthProbe.Probing;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Lab;

public class SceneProbingTests
{
    private static readonly SceneDatasets Sets = SceneDatasets.Sample(300, seed: 7);

    private static int ClassOf(string question) =>
        Enumerable.Range(0, SceneWorld.Classes.Length).Where(c => SceneDatasets.QuestionText(c) == question).DefaultIfEmpty(-1).First();

    [Fact]
    public void Episodes_GoldIsWhatTheSceneShows_AndEachNegativeIsTheKindItIsCalled()
    {
        var episodes = Sets.Episodes(3);
        Assert.Equal(episodes.Count, episodes.Select(e => (e.Scene, e.Question)).Distinct().Count());
        double CoOccurrence(string kind) => episodes.Where(e => e.Kind == kind)
            .Average(e => Sets.Scenes[e.Scene].Objects.Sum(o => Sets.CoOccurrence[o.Class, ClassOf(e.Question)]));
        foreach (var e in episodes)
        {
            int cls = ClassOf(e.Question);
            Assert.True(cls >= 0, e.Question);
            bool present = Sets.Scenes[e.Scene].Has(cls);
            Assert.Equal(present ? "Yes" : "No", e.Gold);
            Assert.Equal(present ? "No" : "Yes", e.Hallucinated);
            Assert.Equal(present, e.Kind == "present");
        }
        // Every scene holding a class is asked about it, and as many scenes without it.
        for (int c = 0; c < SceneWorld.Classes.Length; c++)
        {
            Assert.Equal(Sets.Frequency[c], episodes.Count(e => e.Kind == "present" && ClassOf(e.Question) == c));
            Assert.Equal(Sets.Frequency[c], episodes.Count(e => e.Kind != "present" && ClassOf(e.Question) == c));
        }
        Assert.True(CoOccurrence("adversarial") > 2 * CoOccurrence("random"), $"adversarial {CoOccurrence("adversarial"):0.0} vs random {CoOccurrence("random"):0.0}");
    }

    [Fact]
    public void Episodes_AfterTheDemosOneRowCut_EveryQuestionAndAnswerIsAsOftenGoldAsHallucinated()
    {
        var episodes = Sets.Episodes(3);
        // LabScoring.OneRowPerEpisode keeps the gold row of even episodes and the hallucinated row of odd ones.
        var kept = episodes.Select((e, i) => (e, Gold: i % 2 == 0)).ToList();
        foreach (var text in kept.GroupBy(k => (k.e.Question, Answer: k.Gold ? k.e.Gold : k.e.Hallucinated)))
            Assert.Equal(text.Count(k => k.Gold), text.Count(k => !k.Gold));
        // The cut keeps the affirmative answers only: true on a scene with the class, a hallucinated object on one without,
        // the two kinds of negative within one of each other.
        Assert.All(kept, k => Assert.Equal("Yes", k.Gold ? k.e.Gold : k.e.Hallucinated));
        Assert.All(kept, k => Assert.Equal(k.Gold, k.e.Kind == "present"));
        Assert.InRange(kept.Count(k => k.e.Kind == "adversarial") - kept.Count(k => k.e.Kind == "random"), -1, 1);
    }

    [Fact]
    public void Episodes_SameSeedSameEpisodes_AnotherSeedOthers()
    {
        Assert.Equal(Sets.Episodes(3), SceneDatasets.Sample(300, seed: 7).Episodes(3));
        Assert.NotEqual(Sets.Episodes(3), Sets.Episodes(4));
        Assert.Equal(Sets.Episodes(3).Count, Sets.Episodes(4).Count);
    }

    [Fact]
    public void WrittenProbingRows_AreTheEpisodes_AsScoreReadsThem_AndStayBalancedThroughTheDemosCut()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("scenes");
        Assert.Equal(0, CliRunner.Run("lab", "scenes", "--count", "80", "--size", "56", "--seed", "5", "--out", dir).ExitCode);
        var episodes = SceneDatasets.Sample(80, 5).Episodes(5 + 10);
        var rows = ProbingData.Load(Path.Combine(dir, "probing.jsonl"), samples: null, skipBad: false).Rows;
        Assert.Equal(2 * episodes.Count, rows.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            var e = episodes[i / 2];
            Assert.Equal(($"scene_{e.Scene:D5}.png", e.Question, i % 2 == 0 ? e.Gold : e.Hallucinated, (byte)(i % 2 == 0 ? 1 : 0)),
                (rows[i].Image, rows[i].Question, rows[i].Answer, rows[i].Label));
            Assert.True(File.Exists(Path.Combine(dir, "images", rows[i].Image!)), rows[i].Image);
        }
        foreach (var text in rows.GroupBy(r => (r.Question, r.Answer)))
            Assert.Equal(text.Count(r => r.Label == 1), text.Count(r => r.Label == 0));
        string cut = tmp.File("cut.jsonl");
        LabScoring.OneRowPerEpisode(Path.Combine(dir, "probing.jsonl"), cut);
        var kept = ProbingData.Load(cut, samples: null, skipBad: false).Rows;
        Assert.Equal(episodes.Count, kept.Count);
        foreach (var text in kept.GroupBy(r => (r.Question, r.Answer)))
            Assert.Equal(text.Count(r => r.Label == 1), text.Count(r => r.Label == 0));
    }
}
