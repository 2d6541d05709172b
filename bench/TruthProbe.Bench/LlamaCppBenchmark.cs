using System.Diagnostics;
using LLama;
using LLama.Common;
using LLama.Native;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Tokenizers;

namespace TruthProbe.Bench;

/// <summary>
/// Our engine against llama.cpp (LLamaSharp's CPU backend) on the same random bf16 weights with
/// Qwen2.5-0.5B shapes: the benchmark writes them as a Hugging Face folder, which our engine runs, and
/// converts that to GGUF, which llama.cpp runs. Both prefill the same prompt in one batch and then decode
/// one token at a time, on all cores, llama.cpp with its default settings (f16 KV cache). Prefill is the
/// best of <see cref="PrefillRounds"/> runs on each side, decode the median step, so that a burst of other
/// work on the machine does not decide the ratio.
/// </summary>
public sealed class LlamaCppBenchmark : IBenchmark
{
    public string Name => "llamacpp";
    private const int PrefillRounds = 2;

    public void Run(BenchContext context)
    {
        var log = context.Log;
        // Qwen2.5-0.5B: 24 layers, d_model 896, 14 heads (2 KV), FFN 4864, vocab 151936, tied embeddings, q/k/v biases.
        var config = new ModelConfig
        {
            Architecture = "qwen2", Layers = context.Quick ? 4 : 24, DModel = 896, Heads = 14, KvHeads = 2, HeadDim = 64,
            Ffn = 4864, Vocab = 151936, MaxContext = 32768, RopeTheta = 1e6f, RmsEps = 1e-6f, TiedEmbeddings = true, QkvBias = true,
        };
        int prefillTokens = context.Quick ? 128 : 512, decodeTokens = context.Quick ? 8 : 32;
        if (context.Quick) log.WriteLine($"--quick: {config.Layers} of 24 layers, prefill {prefillTokens} tokens (not 512), {decodeTokens} decode steps");
        int[] prompt = Enumerable.Range(0, prefillTokens).Select(i => (i * 7919) % config.Vocab).ToArray();

        string folder = Directory.CreateTempSubdirectory("truthprobe-bench-llamacpp-").FullName;
        try
        {
            var sw = Stopwatch.StartNew();
            string hf = Path.Combine(folder, "hf"), gguf = Path.Combine(folder, "model.gguf");
            RandomModel.WriteHf(hf, config, seed: 1, WeightDType.BF16);
            using (var source = Transformer.Load(hf))
                GgufCheckpoint.Write(gguf, config, source.Weights, ByteVocabulary(), GgufTensorType.BF16, "random-qwen2.5-0.5b-shape");
            log.WriteLine($"random bf16 model ({config.ParameterCount() / 1e6:0} M parameters) written as safetensors and GGUF in {sw.Elapsed.TotalSeconds:0.0} s");

            var (theirPrefill, theirDecode) = MeasureLlamaCpp(gguf, prompt, decodeTokens);
            log.WriteLine($"llama.cpp: prefill {prefillTokens / theirPrefill:0.0} tok/s ({theirPrefill:0.000} s), decode {theirDecode * 1e3:0.0} ms/token");
            var (ourPrefill, ourDecode) = MeasureOurs(hf, prompt, decodeTokens);
            log.WriteLine($"truthprobe: prefill {prefillTokens / ourPrefill:0.0} tok/s ({ourPrefill:0.000} s), decode {ourDecode * 1e3:0.0} ms/token");

            context.Ratio("prefill_vs_llamacpp", theirPrefill / ourPrefill);
            context.Ratio("decode_vs_llamacpp", theirDecode / ourDecode);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>The 256 byte-level tokens and an end-of-text token; the GGUF writer pads the rest of the
    /// 151,936 rows with unused tokens, which is all llama.cpp needs to load the model.</summary>
    private static TokenizerVocabulary ByteVocabulary()
    {
        string[] tokens = [.. Enumerable.Range(0, 256).Select(b => ByteLevelAlphabet.CharOf[b].ToString()), "<|endoftext|>"];
        int[] types = [.. Enumerable.Repeat(TokenType.Normal, 256), TokenType.Control];
        return new TokenizerVocabulary("gpt2", tokens, new float[tokens.Length], types, [], BosId: null, EosId: 256,
            UnknownId: null, PaddingId: null, AddBos: false, PreTokenizer: "qwen2");
    }

    /// <returns>prefill seconds for the whole prompt, median decode seconds per token.</returns>
    private static (double Prefill, double Decode) MeasureLlamaCpp(string gguf, int[] prompt, int decodeTokens)
    {
        NativeLibraryConfig.All.WithLogCallback((level, message) =>
        {
            if (level == LLamaLogLevel.Error) Console.Error.Write("llama.cpp: " + message);
        });
        int threads = Environment.ProcessorCount;
        var parameters = new ModelParams(gguf)
        {
            ContextSize = (uint)(prompt.Length + decodeTokens + 16),
            BatchSize = (uint)prompt.Length,
            UBatchSize = (uint)prompt.Length,
            Threads = threads,
            BatchThreads = threads,
        };
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        var batch = new LLamaBatch();

        void Decode(ReadOnlySpan<int> tokens, int position)
        {
            batch.Clear();
            for (int i = 0; i < tokens.Length; i++) batch.Add((LLamaToken)tokens[i], position + i, LLamaSeqId.Zero, logits: i == tokens.Length - 1);
            var result = context.Decode(batch);
            if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp decode failed: {result}");
        }

        Decode(prompt.AsSpan(0, 8), 0); // warm-up: page-in of the mapped weights, graph allocation
        double prefill = double.MaxValue;
        var sw = new Stopwatch();
        for (int round = 0; round < PrefillRounds; round++)
        {
            context.NativeHandle.MemoryClear(true);
            sw.Restart();
            Decode(prompt, 0);
            prefill = Math.Min(prefill, sw.Elapsed.TotalSeconds);
        }
        var times = new List<double>();
        int[] one = [Generator.ArgMax(context.NativeHandle.GetLogitsIth(prompt.Length - 1))];
        for (int i = 0; i < decodeTokens; i++)
        {
            sw.Restart();
            Decode(one, prompt.Length + i);
            one[0] = Generator.ArgMax(context.NativeHandle.GetLogitsIth(0));
            times.Add(sw.Elapsed.TotalSeconds);
        }
        return (prefill, Median(times));
    }

    private static (double Prefill, double Decode) MeasureOurs(string hf, int[] prompt, int decodeTokens)
    {
        using var model = Transformer.Load(hf);
        var state = model.NewState();
        model.Forward(state, prompt.AsSpan(0, 8)); // warm-up: JIT, page-in of the mapped weights
        double prefill = double.MaxValue;
        var sw = new Stopwatch();
        int[] one = [0];
        for (int round = 0; round < PrefillRounds; round++)
        {
            state.Reset();
            sw.Restart();
            one[0] = Generator.ArgMax(model.Forward(state, prompt));
            prefill = Math.Min(prefill, sw.Elapsed.TotalSeconds);
        }
        var times = new List<double>();
        for (int i = 0; i < decodeTokens; i++)
        {
            sw.Restart();
            one[0] = Generator.ArgMax(model.Forward(state, one));
            times.Add(sw.Elapsed.TotalSeconds);
        }
        return (prefill, Median(times));
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}
