namespace TruthProbe.Cli;

/// <summary>Every verb of the CLI, in the order <c>truthprobe help</c> lists them.</summary>
public static class Verbs
{
    /// <summary>New instances on every call: each CLI run parses against its own option objects.</summary>
    public static IReadOnlyList<IVerb> Create() =>
    [
        new InspectVerb(),
        new GenerateVerb(),
        new TraceVerb(),
        new TraceDiffVerb(),
        new ConvertVerb(),
        new ScoreVerb(),
        new AttentionVerb(),
        new ProbeVerb(),
        new ProbingSetVerb(),
        new CompareVerb(),
        new DriftVerb(),
        new LineageVerb(),
        new GatesVerb(),
        new EvalHaluEvalVerb(),
        new EvalChairVerb(),
        new EvalPopeVerb(),
        new PatchVerb(),
        new LabPretrainVerb(),
        new LabFinetuneVerb(),
        new LabCurveVerb(),
        new LabScenesVerb(),
        new LabVlmVerb(),
        new DemoVerb(),
        new MergeVerb(),
    ];
}
