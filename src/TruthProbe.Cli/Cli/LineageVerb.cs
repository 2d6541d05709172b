using System.CommandLine;
using TruthProbe.Common;
using TruthProbe.Lineage;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe lineage</c>: is one of these models the candidate's parent? Ranked by weight drift, with head maps as corroboration.</summary>
public sealed class LineageVerb : IVerb
{
    public string Name => "lineage";
    public string Summary => "rank models by how likely each is a candidate model's parent (weight drift, head-map correlation)";

    public string Details => $"""
        Compares the candidate's attention weights with each MODEL's (mean over layers of
        ||A - B||_F / ||A||_F for W_Q, W_K, W_V, W_O, A = MODEL, B = candidate; lower = closer), ranks the
        models, and prints a verdict: the closest related model and its margin to the runner-up, or
        "no parent found". Models whose widths or head layout differ from the candidate's are listed as
        "not comparable (shape)"; a different layer count is compared over the common layers.

        Rule: {LineageReport.Rule}
        """;

    private readonly Argument<string> _candidate = new("candidate") { Description = "the model whose parent is sought (a folder or file)" };
    private readonly Option<string[]> _against = new("--against")
    {
        HelpName = "MODEL", Description = "the possible parents (folders or llama2.c .bin files)",
        Required = true, AllowMultipleArgumentsPerToken = true, Arity = ArgumentArity.OneOrMore,
    };
    private readonly Option<string?> _maps = Opt.Text("--maps", "CAND_MAP,MAP1,...",
        "Truth-Score maps (scores.npy / scores.csv / score folder): the candidate's first, then one per MODEL in order; " +
        "their Pearson r is reported beside the drift (maps at chance level are flagged)");
    // Optional: the verdict is printed; the file is for those who keep it.
    private readonly Option<string?> _out = Opt.Text("--out", "DIR", "also write DIR/lineage.json");
    public IEnumerable<Symbol> Symbols => [_candidate, _against, _maps, _out];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        string? outDir = args.GetValue(_out);
        string candidate = args.GetValue(_candidate)!;
        var models = args.GetValue(_against)!.ToList();
        var mapPaths = args.GetValue(_maps)?.Split(',', StringSplitOptions.TrimEntries);

        var report = LineageReport.Run(candidate, models, mapPaths);
        if (outDir != null) report.Write(outDir);
        stdout.Write(report.FormatTable());
        if (outDir != null) stdout.WriteLine($"wrote {outDir}");
        return 0;
    }
}
