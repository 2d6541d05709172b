using System.CommandLine;
using System.Globalization;
using TruthProbe.Model;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe trace-diff A B</c>: how far two traces of the same prompt are apart, hook by hook.</summary>
public sealed class TraceDiffVerb : IVerb
{
    public string Name => "trace-diff";
    public string Summary => "compare two traces hook by hook (max |diff|, max relative diff); exit 1 above --tol";

    public string Details => """
        A and B are safetensors traces of the same prompt: ours from 'trace', the reference's from
        tools/parity/hf_trace.py (docs/vision.md, "Checking parity on real weights"). Per hook: the shape, max |A - B|
        and that over max |B| (B is taken as the reference). Exit 1 when a hook is above --tol, is missing from one
        trace, has another shape or holds NaN, or when the traces' token_ids or positions differ; else 0.
        """;

    private readonly Argument<string> _a = new("A") { Description = "a trace (.safetensors)" };
    private readonly Argument<string> _b = new("B") { Description = "the trace to compare against (the reference)" };
    private readonly Option<double> _tol = Opt.Double("--tol", "X", 1e-4, "largest max |A - B| / max |B| that passes");
    public IEnumerable<Symbol> Symbols => [_a, _b, _tol];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        double tol = args.GetValue(_tol);
        var (hooks, disagreements) = TraceDiff.Compare(args.GetValue(_a)!, args.GetValue(_b)!);
        int width = hooks.Select(h => h.Name.Length).Append(4).Max();
        stdout.WriteLine($"{"hook".PadRight(width)}  {"shape",-16}  {"max_abs",-12}  {"max_rel",-12}");
        foreach (var h in hooks)
        {
            string shape = h.ShapeA == null ? "missing in A" : h.ShapeB == null ? "missing in B"
                : h.Compared ? "[" + string.Join(", ", h.ShapeA) + "]" : $"[{string.Join(", ", h.ShapeA)}] vs [{string.Join(", ", h.ShapeB)}]";
            string verdict = h.Within(tol) ? "ok" : "FAIL";
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{h.Name.PadRight(width)}  {shape,-16}  {h.MaxAbs,-12:E3}  {h.MaxRelative,-12:E3}  {verdict}"));
        }
        foreach (string d in disagreements) stdout.WriteLine(d);
        int failed = hooks.Count(h => !h.Within(tol));
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{hooks.Count} hooks, {failed} above tolerance {tol:G3}{(disagreements.Count > 0 ? $"; {disagreements.Count} metadata disagreement(s)" : "")}"));
        return failed == 0 && disagreements.Count == 0 ? 0 : 1;
    }
}
