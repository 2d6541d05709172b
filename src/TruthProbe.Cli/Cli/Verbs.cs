namespace TruthProbe.Cli;

/// <summary>Every verb of the CLI, in the order <c>truthprobe help</c> lists them.</summary>
public static class Verbs
{
    public static readonly IReadOnlyList<IVerb> All =
    [
        new InspectVerb(),
        new GenerateVerb(),
        new TraceVerb(),
        new ConvertVerb(),
        new CompareVerb(),
        new DriftVerb(),
        new LineageVerb(),
        new GatesVerb(),
        new EvalHaluEvalVerb(),
        new EvalChairVerb(),
        new EvalPopeVerb(),
        new PatchVerb(),
        new ScoreVerb(),
        new ProbeVerb(),
        new ProbingSetVerb(),
        new LabPretrainVerb(),
        new LabFinetuneVerb(),
    ];
}
