using System.Numerics;
using TruthProbe.Evaluation;

namespace TruthProbe.Tests.Evaluation;

public class HaluEvalMetricsTests
{
    [Theory]
    // reply, parsed as yes?, parseable? (reference: lower(), strip(), re.match(r"^(yes|no)\b"), else "no")
    [InlineData("Yes.", true, true)]
    [InlineData("yes,", true, true)]
    [InlineData(" No", false, true)]
    [InlineData("NO, the answer is correct", false, true)]
    [InlineData("\n  yes\n", true, true)]
    [InlineData("yes_", false, false)]       // \w includes '_': no word boundary
    [InlineData("yes2", false, false)]
    [InlineData("yesé", false, false)]       // Unicode letters are word characters in Python 3
    [InlineData("The answer is yes", false, false)]
    [InlineData("", false, false)]
    [InlineData("unknown", false, false)]
    [InlineData("Yesterday", false, false)]
    [InlineData("nothing", false, false)]
    [InlineData("\x1cYes", true, true)]     // Python's strip() removes U+001C..U+001F too
    [InlineData("yes-no", true, true)]
    public void Parse_FollowsTheReferenceRule(string reply, bool yes, bool parseable)
    {
        var parsed = HaluEvalAnswer.Parse(reply);
        Assert.Equal((yes, parseable), (parsed.SaysYes, parsed.Parseable));
    }

    private static HaluEvalOutcome Outcome(bool label, string reply) => new(label, HaluEvalAnswer.Parse(reply));

    [Fact]
    public void Scores_HandComputedConfusionMatrix()
    {
        // 10 items: labels yes x4, no x6. Predictions: TP=3, FN=1 (an unparseable reply), FP=2, TN=4 (one "unknown").
        var outcomes = new[]
        {
            Outcome(true, "Yes"), Outcome(true, "yes."), Outcome(true, "YES"), Outcome(true, "I think so"),
            Outcome(false, "Yes"), Outcome(false, "yes"), Outcome(false, "No"), Outcome(false, "no"),
            Outcome(false, "No."), Outcome(false, "unknown"),
        };
        var s = HaluEvalScores.From(outcomes);
        Assert.Equal((3, 2, 1, 4, 2), (s.TruePositives, s.FalsePositives, s.FalseNegatives, s.TrueNegatives, s.Unparseable));
        Assert.Equal(70.0, s.Accuracy, 12);          // 7/10
        Assert.Equal(60.0, s.Precision, 12);         // 3/5
        Assert.Equal(75.0, s.Recall, 12);            // 3/4
        Assert.Equal(200.0 / 3.0, s.F1, 12);         // 2*0.6*0.75/1.35 = 0.6667
        Assert.Equal(50.0, s.YesRatio, 12);          // 5 of 10 replies read as yes
        Assert.Equal(40.0, s.LabelYesRatio, 12);
    }

    [Fact]
    public void Scores_NoPositivePredictions_PrecisionAndF1AreZeroAsInTheReference()
    {
        var s = HaluEvalScores.From([Outcome(true, "no"), Outcome(false, "no"), Outcome(false, "maybe")]);
        Assert.Equal((0.0, 0.0, 0.0), (s.Precision, s.Recall, s.F1));
        Assert.Equal(200.0 / 3.0, s.Accuracy, 12);
        Assert.Equal(0.0, s.YesRatio);
    }

    [Fact]
    public void MeanStd_UsesSampleStandardDeviation()
    {
        var m = MeanStd.Of([38.0, 40.0, 42.0]);
        Assert.Equal(40.0, m.Mean, 12);
        Assert.Equal(2.0, m.Std, 12);                // sqrt((4 + 0 + 4) / 2)
        Assert.Equal(new MeanStd(5, 0), MeanStd.Of([5.0]));
    }

    [Theory]
    [InlineData(1, 5, 0.21875)]                 // 2 * (C(6,0) + C(6,1)) / 2^6 = 14/64
    [InlineData(0, 10, 0.001953125)]            // 2 / 2^10
    [InlineData(3, 3, 1.0)]                     // 2 * 42/64 > 1: clamped
    [InlineData(0, 0, 1.0)]
    [InlineData(7, 2, 0.1796875)]               // 2 * (1 + 9 + 36) / 512
    public void McNemar_ExactPValue_HandComputed(int b, int c, double expected) =>
        Assert.Equal(expected, McNemarTest.ExactPValue(b, c), 12);

    [Theory]
    [InlineData(480, 620)]
    [InlineData(9000, 9400)]
    public void McNemar_ManyDiscordantPairs_MatchesExactBigIntegerSum(int b, int c)
    {
        int n = b + c, k = Math.Min(b, c);
        BigInteger choose = 1, sum = 0;
        for (int i = 0; i <= k; i++) { sum += choose; choose = choose * (n - i) / (i + 1); }
        // p = 2 * sum / 2^n, evaluated through logs of the exact integers.
        double expected = Math.Min(1, Math.Exp(Math.Log(2) + BigInteger.Log(sum) - n * Math.Log(2)));
        double p = McNemarTest.ExactPValue(b, c);
        Assert.True(p > 0);
        Assert.Equal(expected, p, expected * 1e-9);
    }

    [Fact]
    public void McNemar_CountsOnlyDiscordantPairs()
    {
        bool[] first = [true, true, true, false, false, true];
        bool[] second = [true, false, false, true, false, true];
        var r = McNemarTest.Exact(first, second);
        Assert.Equal((2, 1), (r.OnlyFirstCorrect, r.OnlySecondCorrect));
        Assert.Equal(1.0, r.PValue); // 2 * (1 + 3) / 8 = 1
    }

    [Fact]
    public void Comparison_PerSeedScoresAndPairedTest()
    {
        var rows = Enumerable.Range(0, 6).Select(i => new HaluEvalRow(i, i + 1, "k", "q", "right", "wrong")).ToList();
        var items = HaluEvalData.Items(rows, 1).Concat(HaluEvalData.Items(rows, 2)).ToList();
        // Vanilla always says "No"; gated answers correctly.
        var vanilla = HaluEvalRunner.Judge(items, _ => "No");
        var gated = HaluEvalRunner.Judge(items, p => p.Contains("#Answer#: wrong") ? "Yes" : "No");
        var cmp = HaluEvalComparison.Of(vanilla, gated);
        Assert.Equal([1, 2], cmp.Seeds.Select(s => s.Seed));
        foreach (var s in cmp.Seeds)
        {
            int hallucinated = items.Count(i => i.Seed == s.Seed && i.ShowsHallucinated);
            Assert.Equal(100.0, s.Gated.Accuracy);
            Assert.Equal(100.0 * (6 - hallucinated) / 6, s.Vanilla.Accuracy, 12);
            Assert.Equal((0, hallucinated), (s.McNemar.OnlyFirstCorrect, s.McNemar.OnlySecondCorrect));
        }
        Assert.Equal(100.0, cmp.Gated("accuracy").Mean);
        Assert.Equal(cmp.Seeds.Sum(s => s.McNemar.OnlySecondCorrect), cmp.Pooled.OnlySecondCorrect);
    }

    [Fact]
    public void Judge_GeneratesEachDistinctPromptOnce()
    {
        var rows = Enumerable.Range(0, 5).Select(i => new HaluEvalRow(i, i + 1, "k" + i, "q", "right", "wrong")).ToList();
        var items = new[] { 1, 2, 3, 4 }.SelectMany(seed => HaluEvalData.Items(rows, seed)).ToList();
        int calls = 0;
        var judged = HaluEvalRunner.Judge(items, _ => { calls++; return "yes"; });
        Assert.Equal(20, judged.Count);
        Assert.Equal(HaluEvalRunner.DistinctPrompts(items), calls);
        Assert.InRange(calls, 5, 10);
    }

    [Fact]
    public void Sweep_SplitIsSeeded_TwentyPercentTuning_AndDisjoint()
    {
        var rows = Enumerable.Range(292, 100).Select(i => new HaluEvalRow(i, i + 1, "k", "q", "a", "b")).ToList();
        var (tuning, test) = HaluEvalSweep.Split(rows, 42);
        Assert.Equal(20, tuning.Count);
        Assert.Equal(80, test.Count);
        Assert.Empty(tuning.Select(r => r.Index).Intersect(test.Select(r => r.Index)));
        Assert.Equal(tuning.Select(r => r.Index), HaluEvalSweep.Split(rows, 42).Tuning.Select(r => r.Index));
        Assert.NotEqual(tuning.Select(r => r.Index), HaluEvalSweep.Split(rows, 7).Tuning.Select(r => r.Index));
    }

    [Fact]
    public void Sweep_ChoosesBestTuningF1_TiesGoToTheSmallerLambda()
    {
        Assert.Equal(4.5, HaluEvalSweep.Choose([(0, 10), (1.5, 20), (3, 25), (4.5, 30), (6, 29)]));
        Assert.Equal(1.5, HaluEvalSweep.Choose([(6, 30), (1.5, 30), (3, 30), (0, 12)]));
    }
}
