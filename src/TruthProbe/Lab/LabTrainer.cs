using System.Diagnostics;
using TruthProbe.Training;

namespace TruthProbe.Lab;

/// <summary>Held-out reading accuracy: greedy answer word = the context's answer, overall and on counterfactual contexts.</summary>
public sealed record ReadingAccuracy(double Overall, double Consistent, double Counterfactual, int Items);

/// <summary>Where a run ended: loss, accuracy and speed.</summary>
/// <param name="Hold">where a <see cref="ReadingStopRule"/> ended the held peak (null without one).</param>
public sealed record TrainingResult(int Steps, double FinalLoss, double Seconds, long Tokens, ReadingAccuracy? Accuracy, IReadOnlyList<(int Step, double Loss, ReadingAccuracy? Accuracy)> Curve,
    HoldOutcome? Hold = null)
{
    public double TokensPerSecond => Tokens / Math.Max(1e-9, Seconds);
}

/// <summary>The training loop: seeded batches, forward, backward, clip, AdamW with warm-up, a held peak and a cosine.</summary>
internal static class LabTrainer
{
    /// <param name="report">called after each step with (step, loss); returns nothing, may draw progress.</param>
    /// <param name="evaluateEvery">steps between held-out evaluations (0: only at the end).</param>
    /// <param name="onCheckpoint">called every <paramref name="checkpointEvery"/> steps with the step count.</param>
    /// <param name="onEvaluate">called with each point of the learning curve as it is measured.</param>
    /// <param name="stop">ends the held peak when the monitor reads; <paramref name="plan"/>'s steps are then the cap, and the
    /// curriculum spans the rule's steps or its share of the cap, so the batches do not depend on the decision.</param>
    public static TrainingResult Train(TrainableLlama model, Recipe recipe, TrainingPlan plan, int seed, IReadOnlyList<Episode> evaluation,
        Action<int, double>? report = null, int evaluateEvery = 0, int checkpointEvery = 0, Action<int>? onCheckpoint = null,
        Action<int, double, ReadingAccuracy?>? onEvaluate = null, ReadingStopRule? stop = null)
    {
        var optimizer = new AdamW(model.Parameters, weightDecay: plan.WeightDecay);
        stop?.Validate(plan);
        var schedule = stop == null ? new HeldPeakSchedule(plan) : new HeldPeakSchedule(plan.LearningRate, plan.WarmupSteps, stop.LatestDecayStart(plan), plan.Steps);
        var monitor = stop == null ? null : ReadingStopRule.Monitor(recipe.Corpus.World);
        var monitorCurve = new List<(int, double)>();
        bool reached = false;
        int total = plan.Steps, curriculumTotal = stop?.CurriculumTotal(plan) ?? plan.Steps;
        var curve = new List<(int, double, ReadingAccuracy?)>();
        var clock = Stopwatch.StartNew();
        long tokens = 0;
        double loss = double.NaN, smoothed = double.NaN;
        double evalSeconds = 0;
        for (int step = 0; step < total; step++)
        {
            var batch = recipe.Batch(seed, step, curriculumTotal, plan.BatchSize);
            model.Parameters.ZeroGrads();
            loss = model.Forward(batch, out _, out _);
            if (!double.IsFinite(loss))
                throw new Common.UserError($"training diverged at step {step + 1} (loss {loss}); lower the learning rate (peak {plan.LearningRate:G3})");
            model.Backward();
            optimizer.ClipGradients(plan.ClipNorm);
            optimizer.Step(schedule.At(step));
            tokens += batch.Rows;
            smoothed = double.IsNaN(smoothed) ? loss : 0.95 * smoothed + 0.05 * loss;
            report?.Invoke(step + 1, smoothed);
            if (stop != null && !reached && stop.ChecksAfter(step + 1, plan))
            {
                var t0 = clock.Elapsed.TotalSeconds;
                double read = Evaluate(model, recipe.Corpus, monitor!).Overall;
                monitorCurve.Add((step + 1, read));
                evalSeconds += clock.Elapsed.TotalSeconds - t0;
                if (read >= stop.Threshold)
                {
                    reached = true;
                    total = step + 1 + stop.DecaySteps;
                    schedule = new HeldPeakSchedule(plan.LearningRate, plan.WarmupSteps, step + 1, total);
                }
            }
            if (evaluateEvery > 0 && (step + 1) % evaluateEvery == 0 && step + 1 < total)
            {
                var t0 = clock.Elapsed.TotalSeconds;
                var accuracy = Evaluate(model, recipe.Corpus, evaluation);
                curve.Add((step + 1, smoothed, accuracy));
                onEvaluate?.Invoke(step + 1, smoothed, accuracy);
                evalSeconds += clock.Elapsed.TotalSeconds - t0;
            }
            if (checkpointEvery > 0 && (step + 1) % checkpointEvery == 0 && step + 1 < total) onCheckpoint?.Invoke(step + 1);
        }
        double seconds = clock.Elapsed.TotalSeconds - evalSeconds;
        var final = evaluation.Count > 0 ? Evaluate(model, recipe.Corpus, evaluation) : null;
        curve.Add((total, smoothed, final));
        onEvaluate?.Invoke(total, smoothed, final);
        var hold = stop == null ? null : new HoldOutcome(schedule.DecayStart, reached, monitorCurve);
        return new TrainingResult(total, loss, seconds, tokens, final, curve, hold);
    }

    public static ReadingAccuracy Evaluate(TrainableLlama model, Corpus corpus, IReadOnlyList<Episode> episodes, bool chat = false)
    {
        int consistent = 0, consistentRight = 0, counter = 0, counterRight = 0;
        const int chunk = 128;
        for (int start = 0; start < episodes.Count; start += chunk)
        {
            var part = episodes.Skip(start).Take(chunk).ToList();
            var batch = Corpus.Batch(part.Select(e => corpus.Reading(e, chat)).ToList());
            model.Forward(batch, out _, out _);
            var logits = model.Logits;
            int vocab = model.Config.Vocab;
            for (int b = 0; b < part.Count; b++)
            {
                // The answer is the last token of its sequence; the position before it predicts it.
                int row = Array.FindLastIndex(batch.Weights, batch.Start(b) + batch.Length(b) - 1, batch.Length(b), w => w != 0);
                bool right = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits.Slice(row * vocab, vocab)) == batch.Targets[row];
                if (part[b].Counterfactual) { counter++; if (right) counterRight++; }
                else { consistent++; if (right) consistentRight++; }
            }
        }
        static double Ratio(int a, int b) => b == 0 ? double.NaN : (double)a / b;
        return new ReadingAccuracy(Ratio(consistentRight + counterRight, consistent + counter), Ratio(consistentRight, consistent), Ratio(counterRight, counter), episodes.Count);
    }
}
