using System.CommandLine;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Model;

namespace TruthProbe.Cli;

public sealed class ConvertVerb : IVerb
{
    public string Name => "convert";
    public string Summary => "write a model as GGUF (llama.cpp) or as a Hugging Face safetensors folder";

    private readonly ModelInput _model = new(gating: false, runs: false);
    private readonly Option<string> _out = Opt.Out("FILE.gguf|DIR",
        "FILE.gguf: GGUF v3 for llama.cpp: llama (q/k rows reordered for its RoPE) or qwen2, tokenizer included; " +
        "DIR: Hugging Face folder: config.json + model.safetensors (no tokenizer files)");
    private readonly Option<string?> _dtype = Opt.Text("--dtype", "f32|f16|bf16|q8_0",
        "matrix type (default: the model's own); q8_0 only for GGUF; norms and biases stay f32 in GGUF");
    public IEnumerable<Symbol> Symbols => [.. _model.Symbols, _out, _dtype];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        using var loaded = _model.Load(args, Name);
        var model = loaded.Model;
        if (loaded.Llava != null)
            throw new UserError($"convert: {model.Source} is a LLaVA checkpoint; only text decoders are converted (its vision tower and projector would be lost)");
        if (loaded.Qwen != null)
            throw new UserError($"convert: {model.Source} is a Qwen vision-language checkpoint; only text decoders are converted (its vision encoder would be lost)");
        string output = args.GetValue(_out)!;
        string? dtypeName = args.GetValue(_dtype);

        bool gguf = output.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase);
        var own = model.Weights.Matrices().First().DType;
        string dtype = (dtypeName ?? own.ToString()).ToLowerInvariant();
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(model.Source));
        if (gguf)
        {
            var type = dtype switch
            {
                "f32" => GgufTensorType.F32,
                "f16" => GgufTensorType.F16,
                "bf16" => GgufTensorType.BF16,
                "q8_0" => GgufTensorType.Q8_0,
                _ => throw new UserError($"convert: --dtype '{dtype}' is not one of f32, f16, bf16, q8_0"),
            };
            GgufCheckpoint.Write(output, model.Config, model.Weights, model.Tokenizer?.Vocabulary, type, name);
        }
        else
        {
            var weightType = dtype switch
            {
                "f32" => WeightDType.F32,
                "f16" => WeightDType.F16,
                "bf16" => WeightDType.BF16,
                _ => throw new UserError($"convert: --dtype '{dtype}' is not one of f32, f16, bf16 for a Hugging Face folder (q8_0 is GGUF only)"),
            };
            HfCheckpoint.Write(output, model.Config, model.Weights, weightType);
        }
        stdout.WriteLine($"wrote {model.Config.Architecture} ({model.Config.ParameterCount():N0} parameters, {dtype}) from {model.Format} to {output}" +
            (gguf ? (model.Tokenizer == null ? " without a tokenizer (no_vocab)" : $" with its {model.Tokenizer.Kind} tokenizer") : ""));
        return 0;
    }
}
