using System.CommandLine;
using System.Globalization;
using TruthProbe.Model;

namespace TruthProbe.Cli;

public sealed class InspectVerb : IVerb
{
    public string Name => "inspect";
    public string Summary => "show a model's architecture, size, dtypes and tokenizer";
    private readonly ModelInput _model = new(gating: false);
    public IEnumerable<Symbol> Symbols => _model.Symbols;

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        using var loaded = _model.Load(args, Name);
        var model = loaded.Model;
        var c = model.Config;
        var inv = CultureInfo.InvariantCulture;
        stdout.WriteLine($"model:        {model.Source}");
        stdout.WriteLine($"format:       {model.Format}");
        stdout.WriteLine($"architecture: {c.Architecture}");
        stdout.WriteLine($"shape:        {c.Layers} layers, d_model {c.DModel}, {c.Heads} heads ({c.KvHeads} kv, d_head {c.HeadDim}), ffn {c.Ffn}, vocab {c.Vocab}, context {c.MaxContext}");
        stdout.WriteLine(string.Create(inv, $"rope:         theta {c.RopeTheta}{(c.RopeLinearFactor != 1 ? $", linear scaling {c.RopeLinearFactor}" : "")}; rms eps {c.RmsEps:g}"));
        stdout.WriteLine($"options:      tied embeddings {YesNo(c.TiedEmbeddings)}, qkv bias {YesNo(c.QkvBias)}, o_proj bias {YesNo(c.OProjBias)}, sliding window {c.SlidingWindow?.ToString(inv) ?? "none"}");
        stdout.WriteLine(string.Create(inv, $"parameters:   {c.ParameterCount():N0}"));
        var dtypes = model.Weights.Matrices().GroupBy(m => m.DType).Select(g => $"{g.Key} ({g.Count()} matrices, {g.Sum(m => m.ByteLength) / 1e6:0.0} MB)");
        stdout.WriteLine($"dtypes:       {string.Join(", ", dtypes)}");
        if (model.Tokenizer is { } t)
        {
            string Special(int? id) => id is int i ? $"{i} '{t.TokenText(i)}'" : "none";
            stdout.WriteLine($"tokenizer:    {t.Kind}, {t.VocabSize} tokens, BOS {Special(t.BosId)}, EOS {Special(t.EosId)}, adds BOS {YesNo(t.AddsBos)}");
        }
        else stdout.WriteLine($"tokenizer:    none (run from token ids; BOS {c.BosId?.ToString(inv) ?? "none"}, EOS {string.Join(",", c.EosIds)})");
        return 0;
    }

    private static string YesNo(bool b) => b ? "yes" : "no";
}
