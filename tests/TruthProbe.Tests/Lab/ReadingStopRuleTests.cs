using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Lab;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Lab;

/// <summary>The stop rule: the schedule it switches to against the closed form, where it switches, the cap, its records and its errors.</summary>
public class ReadingStopRuleTests
{
    [Fact]
    public void ScheduleWithADecayStart_IsWarmupPeakThenCosineOverTheDecaySteps()
    {
        const double peak = 3e-3;
        var s = new HeldPeakSchedule(peak, warmupSteps: 100, decayStart: 650, steps: 850);
        Assert.Equal(peak / 100, s.At(0), 15);
        Assert.Equal(peak * 50 / 100, s.At(49), 15);
        foreach (int step in new[] { 99, 100, 400, 649, 650 }) Assert.Equal(peak, s.At(step), 15);
        // lr = peak (0.1 + 0.9 (1 + cos(pi t)) / 2), t = (step - 650) / 200.
        Assert.Equal(peak * (0.1 + 0.9 * (1 + Math.Cos(Math.PI * 0.25)) / 2), s.At(700), 15);
        Assert.Equal(peak * 0.55, s.At(750), 15);
        Assert.Equal(peak * (0.1 + 0.9 * (1 + Math.Cos(Math.PI * 199 / 200)) / 2), s.At(849), 15);
    }

    [Fact]
    public void Checks_FallOnTheInterval_AfterTheWarmup_UpToTheCapLessTheDecay()
    {
        var plan = new TrainingPlan(1500, 64, 3e-3, WarmupSteps: 100);
        var rule = new ReadingStopRule(0.9, DecaySteps: 200, CheckEvery: 50);
        Assert.Equal(1300, rule.LatestDecayStart(plan));
        var checks = Enumerable.Range(1, 1500).Where(n => rule.ChecksAfter(n, plan)).ToArray();
        Assert.Equal(Enumerable.Range(2, 25).Select(k => 50 * k), checks); // 100, 150, ..., 1300
    }

    [Fact]
    public void CurriculumSteps_EndTheCurriculumThere_AndZeroKeepsItsShareOfTheCap()
    {
        var plan = new TrainingPlan(1500, 64, 3e-3, WarmupSteps: 100);
        int total = new ReadingStopRule(0.9, 200, CurriculumSteps: 250).CurriculumTotal(plan);
        // 1 + floor(3 step / 250) facts at most, capped at 4.
        Assert.Equal([1, 1, 2, 3, 4, 4], new[] { 0, 83, 84, 249, 250, 1400 }.Select(step => PretrainRecipe.CurriculumMaxFacts(step, total)));
        Assert.Equal(1500, new ReadingStopRule(0.9, 200).CurriculumTotal(plan));
    }

    [Fact]
    public void Monitor_IsTrainingsFullContextDrills_FromAStreamOfItsOwn()
    {
        var world = new SyntheticWorld(1);
        var monitor = ReadingStopRule.Monitor(world);
        Assert.Equal(ReadingStopRule.MonitorItems, monitor.Count);
        Assert.All(monitor, e => Assert.Equal(Recipe.MaxFacts, e.Context.Count));
        // 70% counterfactual: 256 draws, 4.4 binomial sd from 0.5 (the held-out set's share).
        double counterfactual = monitor.Count(e => e.Counterfactual) / (double)monitor.Count;
        Assert.InRange(counterfactual, 0.6, 0.8);
        var held = LabDatasets.Evaluation(world, LabRuns.EvaluationItems);
        Assert.True(monitor.Take(8).Zip(held).Count(p => p.First.Asked == p.Second.Asked) < 4, "the monitor repeats the held-out set");
        Assert.Equal(monitor.Select(e => e.Asked), ReadingStopRule.Monitor(world).Select(e => e.Asked));
    }

    [Fact]
    public void Pretrain_DecaysFromTheFirstCheckAtTheThreshold_AndRecordsIt_SameBytesTwice()
    {
        using var tmp = new TempDir();
        // A tiny model reads a few of the 256 monitor episodes after ~20 steps: 1/256 is crossed inside the cap, not at the first check.
        var rule = new ReadingStopRule(1.5 / 256, DecaySteps: 6, CheckEvery: 4);
        TrainingResult Run(string dir) => LabRuns.Pretrain(new LabRuns.PretrainOptions(tmp.File(dir), Steps: 60, BatchSize: 4, HoldUntilReading: rule), TextWriter.Null);
        var result = Run("a");
        var hold = result.Hold!;
        Assert.True(hold.ReachedThreshold);
        Assert.True(hold.Monitor.Count >= 2, "the threshold was met at the first check, so 'first' is not tested");
        Assert.All(hold.Monitor.SkipLast(1), p => Assert.True(p.Accuracy < rule.Threshold));
        Assert.True(hold.Monitor[^1].Accuracy >= rule.Threshold);
        Assert.Equal(hold.Monitor[^1].Step, hold.DecayStart);
        Assert.Equal(hold.DecayStart + rule.DecaySteps, result.Steps);
        Assert.True(result.Steps < 60);
        Assert.Equal(Enumerable.Range(0, hold.Monitor.Count).Select(k => 8 + 4 * k), hold.Monitor.Select(p => p.Step)); // warm-up 7 steps

        var meta = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.File("a"), LabCheckpoint.MetadataFile)))!;
        Assert.Equal(result.Steps, meta["steps"]!.GetValue<int>());
        var recorded = meta["hold_until_reading"]!;
        Assert.Equal("threshold", recorded["decay_reason"]!.GetValue<string>());
        Assert.Equal(hold.DecayStart, recorded["decay_start"]!.GetValue<int>());
        Assert.Equal(60, recorded["step_cap"]!.GetValue<int>());
        Assert.Equal(hold.Monitor.Count, recorded["monitor"]!.AsArray().Count);

        Run("b");
        Assert.Equal(File.ReadAllBytes(Path.Combine(tmp.File("a"), "model.safetensors")), File.ReadAllBytes(Path.Combine(tmp.File("b"), "model.safetensors")));
    }

    [Fact]
    public void Pretrain_ThatNeverReads_DecaysAtTheCapLessTheDecay()
    {
        using var tmp = new TempDir();
        var rule = new ReadingStopRule(1.0, DecaySteps: 5, CheckEvery: 5);
        var result = LabRuns.Pretrain(new LabRuns.PretrainOptions(tmp.File("m"), Steps: 20, BatchSize: 2, HoldUntilReading: rule), TextWriter.Null);
        Assert.Equal(20, result.Steps);
        Assert.False(result.Hold!.ReachedThreshold);
        Assert.Equal(15, result.Hold.DecayStart);
        Assert.Equal([5, 10, 15], result.Hold.Monitor.Select(p => p.Step));
        var meta = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.File("m"), LabCheckpoint.MetadataFile)))!;
        Assert.Equal("cap", meta["hold_until_reading"]!["decay_reason"]!.GetValue<string>());
    }

    [Theory]
    [InlineData(0.0, 200, 50, 0.0, 1500, "hold_until_reading")]
    [InlineData(1.5, 200, 50, 0.0, 1500, "hold_until_reading")]
    [InlineData(double.NaN, 200, 50, 0.0, 1500, "hold_until_reading")]
    [InlineData(0.9, 0, 50, 0.0, 1500, "decay_steps")]
    [InlineData(0.9, 200, 0, 0.0, 1500, "check_every")]
    [InlineData(0.9, 200, 50, 0.8, 1500, "hold_peak")]
    [InlineData(0.9, 200, 50, 0.0, 250, "steps")]
    [InlineData(0.9, 200, 50, 0.0, 1500, "curriculum_steps", -1)]
    public void BadRules_AreUserErrors(double threshold, int decay, int every, double holdPeak, int steps, string field, int curriculum = 0)
    {
        var plan = new TrainingPlan(steps, 64, 3e-3, WarmupSteps: 100, HoldFraction: holdPeak);
        var e = Assert.Throws<UserError>(() => new ReadingStopRule(threshold, decay, every, curriculum).Validate(plan));
        Assert.Equal(field, e.Field);
    }

    [Fact]
    public void PretrainVerb_TakesTheRule_AndRejectsABadOne()
    {
        using var tmp = new TempDir();
        var r = CliRunner.Run("lab", "pretrain", "--out", tmp.File("m"), "--steps", "12", "--batch", "2", "--hold-until-reading", "1", "--decay-steps", "4", "--check-every", "4");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("held peak ended at step 8 (the cap), 12 steps in all", r.Stdout);
        var meta = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.File("m"), LabCheckpoint.MetadataFile)))!;
        Assert.Equal(4, meta["hold_until_reading"]!["decay_steps"]!.GetValue<int>());
        r = CliRunner.Run("lab", "pretrain", "--out", tmp.File("n"), "--steps", "12", "--batch", "2", "--hold-until-reading", "0.9", "--hold-peak", "0.5");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("give one of them", r.Stderr);
    }
}
