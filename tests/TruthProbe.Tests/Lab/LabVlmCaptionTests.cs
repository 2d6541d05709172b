using System.Text.Json.Nodes;
using TruthProbe.Demo;
using TruthProbe.Evaluation;
using TruthProbe.Lab;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Lab;

/// <summary>The descendant's caption rows: the describe prompt <c>eval chair</c> and the demo send, then the scene's caption.</summary>
public class LabVlmCaptionTests
{
    private static readonly VlmPromptFormat Llava = new(LlavaPrompts.Pope, LlavaPrompts.Chair);
    private static int Class(string name) => Array.IndexOf(SceneWorld.Classes, name);
    private static int Colour(string name) => Array.IndexOf(SyntheticWorld.Colours, name);

    /// <summary>
    /// A scene written by hand (a sofa in the last cell listed first, a lamp in the first): the row is LLaVA's describe
    /// prompt with 16 image ids, then the caption in reading order ("an" before a vowel), then EOS; the loss sits on the
    /// caption's words and the EOS only, evenly, summing to one sequence's weight as a question's does.
    /// </summary>
    [Fact]
    public void CaptionRow_IsTheDescribePromptThenTheCaptionInReadingOrder_LossOnTheCaptionAndEos()
    {
        var text = new VlmText(WordTokenizer.ForWorld(), Llava);
        var scene = new Scene(7, 0, [new SceneObject(Class("sofa"), Colour("orange"), 15), new SceneObject(Class("lamp"), Colour("red"), 0)]);
        var row = text.Caption(scene, 16);

        var prompt = text.Prompt(LlavaPrompts.Chair, 16);
        Assert.Equal(prompt, row.Tokens.Take(prompt.Count));
        Assert.Equal(16, prompt.Count(id => id == text.ImageId));
        var caption = text.Tokenizer.Encode("There is a red lamp at the top left and an orange sofa at the bottom right.").Skip(1).Append(WordTokenizer.EosId);
        Assert.Equal(caption, row.Tokens.Skip(prompt.Count));

        Assert.All(row.TokenWeights.Take(prompt.Count), w => Assert.Equal(0f, w));
        int n = row.Tokens.Length - prompt.Count;
        Assert.All(row.TokenWeights.Skip(prompt.Count), w => Assert.Equal(1f / n, w));
        Assert.Equal(1.0, row.TokenWeights.Sum(w => (double)w), 5);
    }

    /// <summary>
    /// The demo reads at most <see cref="DemoVlmPlan.CaptionTokens"/> new tokens of a caption: every object of a
    /// 4-object scene (the most a scene holds) is named within them, so a descendant that writes its training
    /// captions is scored on all of its objects.
    /// </summary>
    [Fact]
    public void DemoCaptionBudget_NamesEveryObjectOfTheLargestScenes()
    {
        var text = new VlmText(WordTokenizer.ForWorld(), Llava);
        var largest = SceneDatasets.Sample(200, 5).Scenes.Where(s => s.Objects.Count == 4).ToList();
        Assert.NotEmpty(largest);
        foreach (var scene in largest)
        {
            var words = text.Caption(scene, 16).Tokens.Skip(text.Prompt(LlavaPrompts.Chair, 16).Count).Take(new DemoVlmPlan().CaptionTokens).Select(text.Tokenizer.Word).ToHashSet();
            Assert.All(scene.Objects, o => Assert.Contains(SceneWorld.Classes[o.Class], words));
        }
    }

    /// <summary>
    /// A tiny run with a caption stage after stage 2: the same seed writes the same bytes, and lab.json records the
    /// stage, its shares and its loss (null when a stage did not run).
    /// </summary>
    [Fact]
    public void TinyRunWithCaptionStage_ByteIdenticalForTheSameSeed_AndRecordsTheStage()
    {
        using var tmp = new TempDir();
        string baseDir = Path.Combine(tmp.Path, "base"), scenes = Path.Combine(tmp.Path, "scenes");
        LabRuns.Pretrain(new LabRuns.PretrainOptions(baseDir, Steps: 2, BatchSize: 4), TextWriter.Null);
        SceneDatasets.Sample(6, 2).Write(scenes, 32, 2);
        void Run(string name) => LabVlm.Train(new LabVlm.Options(baseDir, scenes, Path.Combine(tmp.Path, name), Llava, Seed: 3, TrainScenes: 12,
            TowerSteps: 1, Stage1Steps: 1, Stage2Steps: 1, BatchSize: 8, TowerHidden: 16, TowerHeads: 2, ReadingItems: 8, Stage3Steps: 2,
            Stage3Mix: new LabVlm.Mix(0.5, 0.5, 0)), TextWriter.Null);
        Run("a");
        Run("b");
        Assert.Equal(File.ReadAllBytes(Path.Combine(tmp.Path, "a", "model.safetensors")), File.ReadAllBytes(Path.Combine(tmp.Path, "b", "model.safetensors")));
        var meta = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.Path, "a", "lab.json")))!;
        Assert.Equal(2, (int)meta["stage3_steps"]!);
        Assert.Equal(1 + 1 + 2, (int)meta["steps"]!);
        Assert.True(meta["stage3_loss"]?.GetValue<double>() > 0, "stage 3 ran and its loss is recorded");
        var mix = meta["stage3_mix"]!;
        Assert.Equal((0.5, 0.5, 0.0), ((double)mix["questions"]!, (double)mix["captions"]!, (double)mix["text"]!));
    }

    [Fact]
    public void Cli_AMixOfTwoShares_ExitsTwoNamingTheOption()
    {
        using var tmp = new TempDir();
        var r = CliRunner.Run("lab", "vlm", tmp.File("base"), "--scenes", tmp.File("scenes"), "--out", tmp.File("out"), "--stage3-mix", "0.5,0.5");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--stage3-mix takes three shares", r.Stderr);
    }
}
