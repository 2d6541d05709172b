using TruthProbe.Common;
using TruthProbe.Lab;
using TruthProbe.Tests.Common;
using TruthProbe.Training;

namespace TruthProbe.Tests.Lab;

/// <summary>Warm-up, held peak, cosine: against the closed form of each phase.</summary>
public class HeldPeakScheduleTests
{
    [Fact]
    public void HoldingThePeak_ToStep800Of1000_DecaysOverTheLast200()
    {
        const double peak = 3e-3;
        var s = new HeldPeakSchedule(new TrainingPlan(1000, 64, peak, WarmupSteps: 100, HoldFraction: 0.8));
        Assert.Equal(800, s.DecayStart);
        Assert.Equal(peak / 100, s.At(0), 15);
        Assert.Equal(peak * 50 / 100, s.At(49), 15);
        foreach (int step in new[] { 99, 100, 450, 799, 800 }) Assert.Equal(peak, s.At(step), 15);
        // Cosine to 10% over steps 800-1000: lr = peak (0.1 + 0.9 (1 + cos(pi t)) / 2), t = (step - 800) / 200.
        Assert.Equal(peak * (0.1 + 0.9 * (1 + Math.Cos(Math.PI * 0.25)) / 2), s.At(850), 15);
        Assert.Equal(peak * 0.55, s.At(900), 15);
        Assert.Equal(peak * 0.1, s.At(1000), 15);
    }

    [Fact]
    public void NoHold_IsTheWarmupCosineScheduleBitForBit()
    {
        // A zero hold must train what the lab trained before the hold existed, so cached families stay valid.
        var plan = new TrainingPlan(1200, 64, 3e-3, WarmupSteps: 100);
        var held = new HeldPeakSchedule(plan);
        var plain = new LearningRateSchedule(3e-3, 100, 1200);
        for (int step = 0; step < 1200; step++) Assert.Equal(plain.At(step), held.At(step));
        Assert.Equal(100, held.DecayStart);
        Assert.Equal(3e-3 * (0.1 + 0.9 * (1 + Math.Cos(Math.PI * 0.5)) / 2), held.At(650), 15);
    }

    [Fact]
    public void AHoldShorterThanTheWarmup_StartsTheCosineAfterTheWarmup()
    {
        var s = new HeldPeakSchedule(new TrainingPlan(100, 8, 1.0, WarmupSteps: 20, HoldFraction: 0.1));
        Assert.Equal(20, s.DecayStart);
        Assert.Equal(1.0, s.At(20), 15);
        Assert.Equal(0.55, s.At(60), 15);
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(-0.1)]
    [InlineData(double.NaN)]
    public void AHoldOutsideZeroToOne_IsAUserError(double hold)
    {
        var e = Assert.Throws<UserError>(() => new HeldPeakSchedule(new TrainingPlan(100, 8, 1e-3, 10, HoldFraction: hold)));
        Assert.Contains("peak learning rate", e.Message);
        Assert.Equal("hold_peak", e.Field);
    }

    [Fact]
    public void PretrainVerb_RecordsTheHoldAndRejectsABadOne()
    {
        using var tmp = new TempDir();
        var r = CliRunner.Run("lab", "pretrain", "--out", tmp.File("m"), "--steps", "4", "--batch", "4", "--hold-peak", "0.5");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("peak rate held to step 2", r.Stdout);
        var meta = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.File("m"), "lab.json")))!;
        Assert.Equal(0.5, meta["hold_peak"]!.GetValue<double>());
        r = CliRunner.Run("lab", "pretrain", "--out", tmp.File("n"), "--steps", "4", "--batch", "4", "--hold-peak", "1");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("peak learning rate must be in [0, 1)", r.Stderr);
    }
}
