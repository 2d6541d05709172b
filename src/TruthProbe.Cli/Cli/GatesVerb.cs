using System.Globalization;
using TruthProbe.Common;
using TruthProbe.Gating;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe gates</c>: the per-head gate table TruthProbe multiplies head outputs by (docs/design.md §5).</summary>
public sealed class GatesVerb : IVerb
{
    public string Name => "gates";
    public string Summary => "turn a Truth-Score map into a [layers, heads] gate table (contrast, minmax, ...)";

    public string Usage => """
        usage: truthprobe gates --scores MAP --mode contrast|minmax|plain|raw|random|inverse
                                [--lambda L] [--seed S] [--out gates.npy]

        Per layer, with S that layer's scores:
          contrast   1 + L * (S_h - mean S)                        (HaluEval, CHAIR; may be negative, never clamped)
          minmax     1 + L * (S_h - min S) / (max S - min S + 1e-6)  (POPE)
          plain      1 + L * S_h
          raw        S_h
          random     1 + U(-1, 1), seeded (ablation; L unused)
          inverse    minmax-normalised 1 / (S_h + 1e-6), in [0, 1) (ablation; L unused, as in the reference)

        MAP is a scores.npy, scores.csv or score folder with a score for every layer and head.
          --lambda L   amplifying factor (required by contrast, minmax, plain)
          --seed S     seed of the random mode (default 0; recorded)
          --out FILE   write the gates as float64 .npy [layers, heads] plus FILE.json (mode, lambda,
                       seed, sha256 of the score file)
        Prints min, max, mean and the number of negative gates.
        """;

    public int Run(Args args)
    {
        string scores = args.Required("scores", "the Truth-Score map");
        var mode = GateTable.ParseMode(args.Required("mode", "contrast, minmax, plain, raw, random or inverse"));
        double? lambda = args.DoubleOrNull("lambda");
        string? seedText = args.Get("seed");
        string? outPath = args.Get("out");
        args.EnsureAllRead(0);

        ulong seed = 0;
        if (seedText != null && !ulong.TryParse(seedText, NumberStyles.None, CultureInfo.InvariantCulture, out seed))
            throw new UserError($"gates: --seed must be a non-negative integer, got '{seedText}'");
        if (seedText != null && mode != GateMode.Random)
            Console.Out.WriteLine($"note: --mode {GateTable.ModeName(mode)} draws nothing at random; --seed is ignored");
        if (lambda != null && !GateTable.UsesLambda(mode))
            Console.Out.WriteLine($"note: --mode {GateTable.ModeName(mode)} does not use --lambda (as in the reference); it is ignored");

        var table = GateTable.FromScoreFile(scores, mode, lambda, seed);
        var s = table.Summary();
        string parameters = table.Lambda is { } l ? $" lambda {l.ToString(CultureInfo.InvariantCulture)}" : table.Seed is { } sd ? $" seed {sd}" : "";
        Console.Out.WriteLine($"{GateTable.ModeName(mode)}{parameters}: {table.Layers} layers x {table.Heads} heads from {table.Source}");
        Console.Out.WriteLine($"  {GateTable.Formula(mode)}");
        Console.Out.WriteLine(FormattableString.Invariant(
            $"  min {s.Min:0.0000}  max {s.Max:0.0000}  mean {s.Mean:0.0000}  negative {s.Negative} of {table.Values.Length}"));
        if (outPath != null)
        {
            table.Save(outPath);
            Console.Out.WriteLine($"wrote {outPath} and {GateTable.SidecarPath(outPath)}");
        }
        return 0;
    }
}
