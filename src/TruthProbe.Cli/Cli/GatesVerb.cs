using System.CommandLine;
using System.Globalization;
using TruthProbe.Common;
using TruthProbe.Gating;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe gates</c>: the per-head gate table TruthProbe multiplies head outputs by (docs/design.md §5).</summary>
public sealed class GatesVerb : IVerb
{
    public string Name => "gates";
    public string Summary => "turn a Truth-Score map into a [layers, heads] gate table (contrast, minmax, ...)";

    public string Details => """
        Per layer, with S that layer's scores:
          contrast   1 + L * (S_h - mean S)                        (HaluEval, CHAIR; may be negative, never clamped)
          minmax     1 + L * (S_h - min S) / (max S - min S + 1e-6)  (POPE)
          plain      1 + L * S_h
          raw        S_h
          random     1 + U(-1, 1), seeded (ablation; L unused)
          inverse    minmax-normalised 1 / (S_h + 1e-6), in [0, 1) (ablation; L unused, as in the reference)

        MAP is a scores.npy, scores.csv or score folder with a score for every layer and head.
        Prints min, max, mean and the number of negative gates.
        """;

    private readonly GatingOptions.Group _gating = new();
    // Optional: without it the table's summary is printed and nothing is written.
    private readonly Option<string?> _out = Opt.Text("--out", "FILE.npy",
        "write the gates as float64 .npy [layers, heads] plus FILE.json (mode, lambda, seed, sha256 of the score file)");

    public GatesVerb()
    {
        _gating.Scores.Required = true;
        _gating.Mode.Required = true;
    }

    public IEnumerable<Symbol> Symbols => [_gating.Scores, _gating.Mode, _gating.Lambda, _gating.GateSeed, _out];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        string scores = args.GetValue(_gating.Scores)!;
        var mode = GateTable.ParseMode(args.GetValue(_gating.Mode)!);
        double? lambda = args.GetValue(_gating.Lambda);
        ulong? seedGiven = args.GetValue(_gating.GateSeed);
        string? outPath = args.GetValue(_out);

        ulong seed = seedGiven ?? 0;
        if (seedGiven != null && mode != GateMode.Random)
            stdout.WriteLine($"note: --mode {GateTable.ModeName(mode)} draws nothing at random; --gate-seed is ignored");
        if (lambda != null && !GateTable.UsesLambda(mode))
            stdout.WriteLine($"note: --mode {GateTable.ModeName(mode)} does not use --lambda (as in the reference); it is ignored");

        var table = GateTable.FromScoreFile(scores, mode, lambda, seed);
        var s = table.Summary();
        string parameters = table.Lambda is { } l ? $" lambda {l.ToString(CultureInfo.InvariantCulture)}" : table.Seed is { } sd ? $" seed {sd}" : "";
        stdout.WriteLine($"{GateTable.ModeName(mode)}{parameters}: {table.Layers} layers x {table.Heads} heads from {table.Source}");
        stdout.WriteLine($"  {GateTable.Formula(mode)}");
        stdout.WriteLine(FormattableString.Invariant(
            $"  min {s.Min:0.0000}  max {s.Max:0.0000}  mean {s.Mean:0.0000}  negative {s.Negative} of {table.Values.Length}"));
        if (outPath != null)
        {
            table.Save(outPath);
            stdout.WriteLine($"wrote {outPath} and {GateTable.SidecarPath(outPath)}");
        }
        return 0;
    }
}
