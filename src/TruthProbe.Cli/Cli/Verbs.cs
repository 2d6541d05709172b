namespace TruthProbe.Cli;

/// <summary>Every verb of the CLI, in the order <c>truthprobe help</c> lists them.</summary>
public static class Verbs
{
    public static readonly IReadOnlyList<IVerb> All =
    [
        new InspectVerb(),
        new GenerateVerb(),
        new TraceVerb(),
        new CompareVerb(),
        new GatesVerb(),
        new EvalChairVerb(),
        new EvalPopeVerb(),
    ];
}
