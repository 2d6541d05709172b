using System.Diagnostics;
using TruthProbe.Cli;
using TruthProbe.Common;
using TruthProbe.Evaluation;

namespace TruthProbe.Bench;

/// <summary>
/// CHAIR scoring speed: 500 real LLaVA-1.5 captions (~100 words each) after the scorer is loaded.
/// The ceiling is the budget of one second per 500 captions: ratio chair_vs_1s = 1 s / our time.
/// </summary>
public sealed class ChairBench : IBenchmark
{
    public string Name => "chair";

    public void Run(BenchContext context)
    {
        string? shared = RepoPaths.Shared();
        string captionsPath = shared == null ? "" : Path.Combine(shared, "data", "chair", "lvlm_captions_less_is_more", "r1-llava1.5-7b.jsonl");
        if (!File.Exists(captionsPath))
        {
            context.Log.WriteLine("chair: ../shared/data/chair not present, skipped");
            return;
        }
        var scorer = ChairScorer.Load(Path.Combine(shared!, "data", "chair", ChairScorer.WordMapsFile), Path.Combine(shared!, "data", "chair", ChairScorer.DefaultGroundTruth));
        var captions = ChairScorer.ReadCaptions(captionsPath);
        scorer.Score(captions); // warm-up: JIT and regex compilation
        int repeats = context.Quick ? 3 : 10;
        double best = double.MaxValue;
        for (int i = 0; i < repeats; i++)
        {
            var clock = Stopwatch.StartNew();
            var result = scorer.Score(captions);
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
            if (result.Captions != captions.Count) throw new InvalidOperationException("chair bench: captions went unscored");
        }
        context.Log.WriteLine($"chair: {captions.Count} captions scored in {best * 1000:0.0} ms (best of {repeats})");
        context.Ratio("chair_vs_1s", 1.0 / best);
    }
}
