using System.Text.Json;
using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Evaluation;

public class ChairScorerTests
{
    private const string Lvlm = "lvlm_captions_less_is_more";

    /// <summary>The real CHAIR word maps with a small hand-written ground truth.</summary>
    private static ChairScorer Scorer(TempDir tmp, string groundTruthJson = """{"1": ["dog"], "2": ["person", "chair"]}""")
    {
        string maps = SharedData.Path("data", "chair", ChairScorer.WordMapsFile);
        string gt = tmp.File("gt.json");
        File.WriteAllText(gt, groundTruthJson);
        return ChairScorer.Load(maps, gt);
    }

    private static string[] Objects(ChairScorer s, string caption) => s.Extract(caption).Mentions.Select(m => m.Object).ToArray();

    [Fact]
    public void Tokenizer_MatchesNltkWordTokenize()
    {
        // Expected lists: NLTK 3.8 NLTKWordTokenizer on the same (lower-case) sentences.
        Assert.Equal(["a", "man", "'s", "dog", ",", "2.5", "feet", "tall", ",", "sits", "(", "quietly", ")", "on", "a", "``", "red", "''", "chair", "."],
            CaptionTokenizer.Tokenize("a man's dog, 2.5 feet tall, sits (quietly) on a \"red\" chair."));
        Assert.Equal(["it", "ca", "n't", "be", "--", "no", ",", "really", "!"], CaptionTokenizer.Tokenize("it can't be--no, really!"));
        Assert.Equal(["the", "dogs", "'", "toys", "..."], CaptionTokenizer.Tokenize("the dogs' toys..."));
    }

    [Fact]
    public void Tokenizer_SplitsSentencesSoEveryFinalPeriodIsAToken()
    {
        // Without Punkt's sentence split NLTK would leave "dog." as one word and miss the dog.
        Assert.Equal(["a", "dog", ".", "a", "cat", "."], CaptionTokenizer.Tokenize("a dog. a cat."));
        Assert.Equal(["there", "are", "2.", "dogs", "."], CaptionTokenizer.Tokenize("there are 2. dogs."));
        // Expected lists: NLTK 3.8 Punkt (PunktSentenceTokenizer) + NLTKWordTokenizer on these texts.
        Assert.Equal(["reads", "``", "pro", "milk", ".", "''", "the", "rv", "."], CaptionTokenizer.Tokenize("reads \"pro milk.\" the rv."));
        Assert.Equal(["the", "time", "as", "6:30.", "in", "the", "background", "."], CaptionTokenizer.Tokenize("the time as 6:30. in the background."));
        Assert.Equal(["than", "the", "man", "'s", ".", "the", "bike", "."], CaptionTokenizer.Tokenize("than the man's. the bike."));
    }

    [SkippableFact]
    public void TwoWordObjects_AreOneMention_NotTheirParts()
    {
        using var tmp = new TempDir();
        var s = Scorer(tmp);
        Assert.Equal(["hot dog", "teddy bear", "fire hydrant"], Objects(s, "A hot dog and a teddy bear next to a fire hydrant."));
        Assert.Equal(["traffic light", "stop sign", "wine glass"], Objects(s, "Traffic lights, a stop sign and two wine glasses."));
        Assert.Equal(["airplane"], Objects(s, "A passenger jet."));
        Assert.Equal(["person", "bus"], Objects(s, "A passenger on the bus."));
    }

    [SkippableFact]
    public void BabyAndAdultAnimals_AreTheAnimal_NotAPerson()
    {
        using var tmp = new TempDir();
        var s = Scorer(tmp);
        Assert.Equal(["elephant", "giraffe"], Objects(s, "A baby elephant and an adult giraffe."));
        Assert.Empty(Objects(s, "A baby animal.")); // 'animal' is no COCO object, and the baby is not a person
        Assert.Equal(["person"], Objects(s, "A baby."));
    }

    [SkippableFact]
    public void ToiletSeat_IsTheToilet_AndAnySeatNextToAToiletIsNoChair()
    {
        using var tmp = new TempDir();
        var s = Scorer(tmp);
        Assert.Equal(["toilet"], Objects(s, "The toilet seat is up."));
        Assert.Equal(["toilet"], Objects(s, "A toilet with the seat up."));
        Assert.Equal(["chair", "chair"], Objects(s, "A stool with a seat."));
    }

    [SkippableFact]
    public void IrregularPlurals_MapToTheirObject()
    {
        using var tmp = new TempDir();
        var s = Scorer(tmp);
        Assert.Equal(["person", "mouse", "knife"], Objects(s, "People, mice and knives."));
        // WordNet lists "men" itself as a noun and morphy keeps the first of equally short lemmas, so the
        // reference counts no person for "men"; "vases" becomes the noun "vas" there.
        Assert.Equal(["person", "person"], Objects(s, "Men, women and children."));
        Assert.Equal(["vase"], Objects(s, "A vase and two vases."));
        Assert.Equal(["bird", "cow", "sheep", "bus", "bench", "skis"], Objects(s, "Geese, oxen, sheep, buses, benches, skis."));
        // The reference lemmatiser knows no noun "biker"/"smartphone", so their plurals stay unmatched there too.
        Assert.Equal(["person", "cell phone"], Objects(s, "A biker, bikers, a smartphone and smartphones."));
    }

    [SkippableFact]
    public void CapitalisationAndPunctuation_DoNotHideObjects()
    {
        using var tmp = new TempDir();
        var s = Scorer(tmp);
        Assert.Equal(["dog", "cat", "sheep", "dog", "bowl"], Objects(s, "DOGS! Cats, and a Sheep... The dog's bowl."));
    }

    [SkippableFact]
    public void VerbForms_FollowThePosTaggedReference()
    {
        using var tmp = new TempDir();
        var s = Scorer(tmp);
        Assert.Equal(["person", "chair", "bench"], Objects(s, "A man seated on a bench."));
        Assert.Equal(["person", "skis"], Objects(s, "People skiing down a hill."));
        Assert.Empty(Objects(s, "The skiing was fun."));
        Assert.Equal(["person"], Objects(s, "A man in skiing equipment."));
        Assert.Equal(["person", "snowboard"], Objects(s, "Two people snowboarding together."));
    }

    /// <summary>
    /// Table 1 of "Less is More" (arXiv 2402.14545, ACL 2024) as printed: CHAIR_S, CHAIR_I, recall and
    /// length for the caption files behind it. r4 (OPERA-fast) is absent from the transcription we could
    /// read and r6 repeats r5 upstream, so neither has a row. The numbers check themselves: the paper
    /// states 26.4% / 26.6% lower CHAIR_S / CHAIR_I for r5 against r1, which 50.0 -> 36.8 and 15.4 -> 11.3 give.
    /// </summary>
    public static TheoryData<string, double, double, double, double> PublishedTable1 => new()
    {
        { "r1-llava1.5-7b", 50.0, 15.4, 77.1, 100.6 },
        { "r2-vcd", 48.6, 14.9, 77.3, 100.4 },
        { "r3-opera", 47.8, 14.6, 76.8, 98.6 },
        { "r5-ours-inst", 36.8, 11.3, 74.3, 76.2 },
        { "r7-llava1.5-13b", 47.2, 13.0, 77.3, 100.9 },
        { "r8-ours-cap", 36.8, 11.4, 75.3, 85.1 },
        { "r9-llava-7b", 35.4, 13.8, 64.8, 57.8 },
        { "r10-ours-cap", 27.0, 13.2, 57.1, 39.9 },
        { "r11-minigptv2", 38.0, 11.1, 66.3, 87.2 },
        { "r12-ours-cap", 27.0, 9.8, 66.6, 62.2 },
    };

    /// <summary>
    /// Issue 7's tolerances (0.4 / 0.15 / 0.1 points) cover what the missing POS tagger leaves (see
    /// docs/evaluation.md); recall is held to 0.25 points (4 of the 1,587 ground-truth objects).
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(PublishedTable1))]
    public void LessIsMoreCaptions_ReproducePublishedTable1(string file, double chairS, double chairI, double recall, double len)
    {
        string dir = SharedData.Path("data", "chair");
        var scorer = ChairScorer.Load(Path.Combine(dir, ChairScorer.WordMapsFile), Path.Combine(dir, ChairScorer.DefaultGroundTruth));
        var result = scorer.Score(ChairScorer.ReadCaptions(Path.Combine(dir, Lvlm, file + ".jsonl")));
        Assert.Equal(500, result.Captions);
        Assert.InRange(Math.Abs(result.ChairS - chairS), 0, 0.4 + 1e-9);
        Assert.InRange(Math.Abs(result.ChairI!.Value - chairI), 0, 0.15);
        Assert.InRange(Math.Abs(result.Recall!.Value - recall), 0, 0.25);
        Assert.InRange(Math.Abs(result.Len - len), 0, 0.1);
    }

    [SkippableFact]
    public void Score_HandComputedMetrics_UnknownImagesListed_EmptyCaptionCounted()
    {
        using var tmp = new TempDir();
        var s = Scorer(tmp);
        var result = s.Score([
            new Caption(1, "A dog and a cat. Another dog."),   // dog ok, cat hallucinated, dog ok
            new Caption(2, "A man sits."),                      // person ok
            new Caption(2, ""),                                 // empty: scored, no words
            new Caption(99, "A giraffe."),                      // no ground truth: not scored
        ]);
        Assert.Equal(3, result.Captions);
        Assert.Equal(100.0 / 3, result.ChairS, 9);           // 1 of 3 captions
        Assert.Equal(100.0 * 1 / 4, result.ChairI!.Value, 9);   // 1 of 4 mentions
        Assert.Equal(100.0 * (1 + 1 + 0) / (1 + 2 + 2), result.Recall!.Value, 9);
        Assert.Equal((9 + 4 + 0) / 3.0, result.Len, 9);        // "a dog and a cat . another dog ." / "a man sits ."
        Assert.Equal([99L], result.UnknownImageIds);
        Assert.Equal(1, result.EmptyCaptions);
        Assert.Equal([new Mention("cat", "cat")], result.Details[0].Hallucinated);
    }

    [Theory]
    [InlineData("123456", 123456)]
    [InlineData("000000123456.jpg", 123456)]
    [InlineData("COCO_val2014_000000123456.jpg", 123456)]
    public void ImageIds_AcceptIntegersAndCocoFileNames(string key, long expected) =>
        Assert.Equal(expected, ChairScorer.ParseImageId(key, "t"));

    [Fact]
    public void ImageId_NotAnIdOrFileName_IsAUserError() =>
        Assert.Contains("image_id 'cat.jpg'", Assert.Throws<UserError>(() => ChairScorer.ParseImageId("cat.jpg", "f:3")).Message);

    [Fact]
    public void Captions_MalformedLine_ErrorNamesFileAndLine()
    {
        using var tmp = new TempDir();
        string path = tmp.File("caps.jsonl");
        File.WriteAllText(path, "{\"image_id\": 1, \"caption\": \"a dog\"}\n\n{\"image_id\": 2, \"caption\": \n");
        var e = Assert.Throws<UserError>(() => ChairScorer.ReadCaptions(path));
        Assert.Contains($"{path}:3", e.Message);
        File.WriteAllText(path, "{\"image_id\": 1, \"caption\": \"a dog\"}\n{\"image_id\": 2}\n");
        Assert.Contains($"{path}:2: missing the caption", Assert.Throws<UserError>(() => ChairScorer.ReadCaptions(path)).Message);
    }

    [SkippableFact]
    public void Cli_WritesMetricsAndCaptionDetails_AndListsUnknownImages()
    {
        using var tmp = new TempDir();
        string gt = tmp.File("gt.json");
        File.WriteAllText(gt, """{"1": ["dog"]}""");
        SharedData.Path("data", "chair", ChairScorer.WordMapsFile);
        string caps = tmp.File("caps.jsonl");
        File.WriteAllText(caps, """
            {"image_id": "COCO_val2014_000000000001.jpg", "text": "A dog with a frisbee."}
            {"image_id": 7, "caption": "A cat."}
            """);
        var r = CliRunner.Run("eval", "chair", "--captions", caps, "--gt", gt, "--out", tmp.File("out"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        ProvenanceAssert.In(tmp.File("out/metrics.json"), [], [("captions", caps)]);
        using var metrics = JsonDocument.Parse(File.ReadAllText(tmp.File("out/metrics.json")));
        var m = metrics.RootElement;
        Assert.Equal(100.0, m.GetProperty("chair_s").GetDouble());
        Assert.Equal(50.0, m.GetProperty("chair_i").GetDouble());
        Assert.Equal(1, m.GetProperty("captions").GetInt32());
        Assert.Equal(1, m.GetProperty("unknown_images").GetInt32());
        Assert.Equal(7, m.GetProperty("unknown_image_ids")[0].GetInt64());
        Assert.Contains("1 caption(s) of images without ground truth", r.Stderr);
        var lines = File.ReadAllLines(tmp.File("out/captions.jsonl"));
        Assert.Equal(2, lines.Length);
        using var first = JsonDocument.Parse(lines[0]);
        Assert.Equal("frisbee", first.RootElement.GetProperty("hallucinated")[0].GetProperty("object").GetString());
    }

    [SkippableFact]
    public void GroundTruthBuilds_DifferAsTheDataReadmeStates()
    {
        // docs/evaluation.md: scored against coco2014_gt_objects_subset.json (pattern-singularised build)
        // instead of the lemmatizer build behind the published numbers, CHAIR_S comes out 0.2-0.4 points high.
        string dir = SharedData.Path("data", "chair");
        var lemma = ChairScorer.Load(Path.Combine(dir, ChairScorer.WordMapsFile), Path.Combine(dir, ChairScorer.DefaultGroundTruth));
        var other = ChairScorer.Load(Path.Combine(dir, ChairScorer.WordMapsFile), Path.Combine(dir, "coco2014_gt_objects_subset.json"));
        foreach (string name in new[] { "r1-llava1.5-7b", "r9-llava-7b" })
        {
            var captions = ChairScorer.ReadCaptions(Path.Combine(dir, Lvlm, name + ".jsonl"));
            double shift = other.Score(captions).ChairS - lemma.Score(captions).ChairS;
            Assert.InRange(shift, 0.2 - 1e-9, 0.4 + 1e-9);
        }
    }
}
