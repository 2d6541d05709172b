using System.Globalization;
using TruthProbe.Model;

namespace TruthProbe.Cli;

public sealed class InspectVerb : IVerb
{
    public string Name => "inspect";
    public string Summary => "show a model's architecture, size, dtypes and tokenizer";
    public string Usage => "usage: truthprobe inspect <model> [--tokenizer FILE]\n" + ModelInput.Usage;

    public int Run(Args args)
    {
        using var model = ModelInput.Load(args);
        args.EnsureAllRead(1);
        var c = model.Config;
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine($"model:        {model.Source}");
        Console.WriteLine($"format:       {model.Format}");
        Console.WriteLine($"architecture: {c.Architecture}");
        Console.WriteLine($"shape:        {c.Layers} layers, d_model {c.DModel}, {c.Heads} heads ({c.KvHeads} kv, d_head {c.HeadDim}), ffn {c.Ffn}, vocab {c.Vocab}, context {c.MaxContext}");
        Console.WriteLine(string.Create(inv, $"rope:         theta {c.RopeTheta}{(c.RopeLinearFactor != 1 ? $", linear scaling {c.RopeLinearFactor}" : "")}; rms eps {c.RmsEps:g}"));
        Console.WriteLine($"options:      tied embeddings {YesNo(c.TiedEmbeddings)}, qkv bias {YesNo(c.QkvBias)}, o_proj bias {YesNo(c.OProjBias)}, sliding window {c.SlidingWindow?.ToString(inv) ?? "none"}");
        Console.WriteLine(string.Create(inv, $"parameters:   {c.ParameterCount():N0}"));
        var dtypes = model.Weights.Matrices().GroupBy(m => m.DType).Select(g => $"{g.Key} ({g.Count()} matrices, {g.Sum(m => m.ByteLength) / 1e6:0.0} MB)");
        Console.WriteLine($"dtypes:       {string.Join(", ", dtypes)}");
        if (model.Tokenizer is { } t)
        {
            string Special(int? id) => id is int i ? $"{i} '{t.TokenText(i)}'" : "none";
            Console.WriteLine($"tokenizer:    {t.Kind}, {t.VocabSize} tokens, BOS {Special(t.BosId)}, EOS {Special(t.EosId)}, adds BOS {YesNo(t.AddsBos)}");
        }
        else Console.WriteLine($"tokenizer:    none (run from token ids; BOS {c.BosId?.ToString(inv) ?? "none"}, EOS {string.Join(",", c.EosIds)})");
        return 0;
    }

    private static string YesNo(bool b) => b ? "yes" : "no";
}
