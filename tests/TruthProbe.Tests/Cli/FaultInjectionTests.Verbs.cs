using TruthProbe.Evaluation;
using TruthProbe.Formats;
using TruthProbe.Tests.Common;
using TruthProbe.Tests.Evaluation;

namespace TruthProbe.Tests.Cli;

/// <summary>The same kill-and-rerun check for <c>patch</c>, the model-driven <c>eval pope</c> / <c>eval chair</c> and <c>demo</c>.</summary>
public sealed partial class FaultInjectionTests
{
    [SkippableFact]
    public void Patch() => KilledAndRerun_EndsAsAnUninterruptedRun(Out("patched"),
        () =>
        {
            string scores = Out("scores.npy");
            Npy.WriteFloat64(scores, Enumerable.Range(0, 40).Select(i => 0.5 + 0.45 * Math.Cos(i * 2.3)).ToArray(), 5, 8);
            return ["patch", Model(), "--scores", scores, "--mode", "contrast", "--lambda", "4.5", "--out", Out("patched")];
        }, seed: 5);

    /// <summary>The tiny llava-hf checkpoint of the image-eval tests (16 image tokens), both arms (vanilla and gated).</summary>
    private string[] ImageEval(string task, params string[] data)
    {
        if (!Directory.Exists(Out("llava"))) ImageEvalCliTests.Checkpoint(_tmp);
        return ["eval", task, Out("llava"), .. data, "--max-new-tokens", "4", "--scores", ImageEvalCliTests.Scores(_tmp), "--mode", "contrast", "--lambda", "6", "--out", Out(task)];
    }

    [SkippableFact]
    public void EvalPope() => KilledAndRerun_EndsAsAnUninterruptedRun(Out("pope"),
        () => ImageEval("pope", "--questions", ImageEvalCliTests.Questions(_tmp, 8), "--images", ImageEvalCliTests.Images), seed: 6);

    [SkippableFact]
    public void EvalChair() => KilledAndRerun_EndsAsAnUninterruptedRun(Out("chair"),
        () =>
        {
            SharedData.Path("data", "chair", ChairScorer.WordMapsFile);
            if (!File.Exists(Out("ids.txt"))) ImageEvalCliTests.CocoPhotos(_tmp);
            return ImageEval("chair", "--images", Out("coco"), "--image-ids", Out("ids.txt"), "--gt", Out("gt.json"));
        }, seed: 7);

    /// <summary>
    /// The demo on the test suite's tiny plan, its family cache inside the output so that a kill can land in the build
    /// as well as in the analysis. About a minute a run: only with TRUTHPROBE_FAULT_KILLS set.
    /// </summary>
    [SkippableFact]
    public void Demo()
    {
        Skip.If(Environment.GetEnvironmentVariable("TRUTHPROBE_FAULT_KILLS") == null, "the demo takes about a minute a run; set TRUTHPROBE_FAULT_KILLS=N to kill it N times");
        KilledAndRerun_EndsAsAnUninterruptedRun(Out("demo"),
            () => ["demo", "--pretrain-steps", "6", "--finetune-steps", "2", "--curve-steps", "0,2,4", "--cache", Path.Combine(Out("demo"), "cache"), "--out", Path.Combine(Out("demo"), "out")],
            seed: 8,
            // A kill after the family was built leaves it in the cache, and the rerun says that it reused it.
            alsoVolatile: p => p == "out/summary.json.family_from_cache");
    }
}
