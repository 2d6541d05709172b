using System.Diagnostics;
using LLama.Common;
using LLama.Native;
using LLama;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Tokenizers;

namespace TruthProbe.Bench;

/// <summary>
/// Our engine against llama.cpp (LLamaSharp's CPU backend) on the same random bf16 weights with
/// Qwen2.5-0.5B shapes: the benchmark writes them as a Hugging Face folder, which our engine runs, and
/// converts that to GGUF, which llama.cpp runs. Both prefill the same prompt in one batch and then decode
/// one token at a time, on all cores, llama.cpp with its default settings (f16 KV cache). The two runtimes
/// take turns (prefill, prefill, then runs of decode steps) so that other work on a shared machine weighs on both
/// alike; prefill is the best of <see cref="PrefillRounds"/> turns, decode the median step.
/// </summary>
public sealed class LlamaCppBenchmark : IBenchmark
{
    public string Name => "llamacpp";
    private const int PrefillRounds = 2;

    /// <summary>One runtime: prefill a prompt from an empty cache, then decode greedily one token at a time.</summary>
    private interface IRuntime : IDisposable
    {
        void Prefill(int[] prompt);
        void Step();
    }

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

        string folder = BenchTemp.Create("truthprobe-bench-llamacpp-");
        try
        {
            var sw = Stopwatch.StartNew();
            string hf = Path.Combine(folder, "hf"), gguf = Path.Combine(folder, "model.gguf");
            RandomModel.WriteHf(hf, config, seed: 1, WeightDType.BF16);
            using (var source = Transformer.Load(hf))
                GgufCheckpoint.Write(gguf, config, source.Weights, ByteVocabulary(), GgufTensorType.BF16, "random-qwen2.5-0.5b-shape");
            log.WriteLine($"random bf16 model ({config.ParameterCount() / 1e6:0} M parameters) written as safetensors and GGUF in {sw.Elapsed.TotalSeconds:0.0} s");

            using var theirs = new LlamaCppRuntime(gguf, prompt.Length + decodeTokens + 16, prompt.Length);
            using var ours = new EngineRuntime(hf);
            IRuntime[] runtimes = [theirs, ours];
            foreach (var r in runtimes) r.Prefill(prompt[..8]); // warm-up: JIT, page-in of the mapped weights, graph allocation

            var prefill = new double[2];
            Array.Fill(prefill, double.MaxValue);
            for (int round = 0; round < PrefillRounds; round++)
                for (int i = 0; i < 2; i++) prefill[i] = Math.Min(prefill[i], Time(() => runtimes[i].Prefill(prompt)));
            var steps = new[] { new List<double>(), new List<double>() };
            // Decode takes turns in runs of consecutive steps, as a generator decodes: step-by-step turns would
            // start each step while the other runtime's threads still poll for work (ggml's threadpool polls a
            // few ms after a graph), taking a core from it. The pause lets them go to sleep.
            for (int t = 0; t < decodeTokens; t += DecodeRun)
                for (int i = 0; i < 2; i++)
                {
                    Thread.Sleep(50);
                    for (int s = t; s < Math.Min(t + DecodeRun, decodeTokens); s++) steps[i].Add(Time(runtimes[i].Step));
                }
            double[] decode = [BenchStats.Median(steps[0]), BenchStats.Median(steps[1])];

            log.WriteLine($"llama.cpp:  prefill {prefillTokens / prefill[0]:0.0} tok/s ({prefill[0]:0.000} s), decode {decode[0] * 1e3:0.0} ms/token");
            log.WriteLine($"truthprobe: prefill {prefillTokens / prefill[1]:0.0} tok/s ({prefill[1]:0.000} s), decode {decode[1] * 1e3:0.0} ms/token");
            context.Ratio("prefill_vs_llamacpp", prefill[0] / prefill[1]);
            context.Ratio("decode_vs_llamacpp", decode[0] / decode[1]);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private const int DecodeRun = 8;

    private static double Time(Action action)
    {
        var sw = Stopwatch.StartNew();
        action();
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>The 256 byte-level tokens and an end-of-text token; the GGUF writer pads the rest of the
    /// 151,936 rows with unused tokens, which is all llama.cpp needs to load the model.</summary>
    internal static TokenizerVocabulary ByteVocabulary()
    {
        string[] tokens = [.. Enumerable.Range(0, 256).Select(b => ByteLevelAlphabet.CharOf[b].ToString()), "<|endoftext|>"];
        int[] types = [.. Enumerable.Repeat(TokenType.Normal, 256), TokenType.Control];
        return new TokenizerVocabulary("gpt2", tokens, new float[tokens.Length], types, [], BosId: null, EosId: 256,
            UnknownId: null, PaddingId: null, AddBos: false, PreTokenizer: "qwen2");
    }

    private sealed class EngineRuntime(string folder) : IRuntime
    {
        private readonly Transformer _model = Transformer.Load(folder);
        private RunState? _state;
        private readonly int[] _next = [0];

        public void Prefill(int[] prompt)
        {
            _state ??= _model.NewState();
            _state.Reset();
            _next[0] = Generator.ArgMax(_model.Forward(_state, prompt));
        }

        public void Step() => _next[0] = Generator.ArgMax(_model.Forward(_state!, _next));

        public void Dispose() => _model.Dispose();
    }

    internal sealed class LlamaCppRuntime : IRuntime
    {
        private readonly LLamaWeights _weights;
        private readonly LLamaContext _context;
        private readonly LLamaBatch _batch = new();
        private int _position, _next;

        // Once per process: LLamaSharp refuses configuration after its library has loaded, i.e. for a second runtime.
        static LlamaCppRuntime() => NativeLibraryConfig.All.WithLogCallback((level, message) =>
        {
            if (level == LLamaLogLevel.Error) Console.Error.Write("llama.cpp: " + message);
        });

        public LlamaCppRuntime(string gguf, int contextSize, int batchSize)
        {
            int threads = Environment.ProcessorCount;
            var parameters = new ModelParams(gguf)
            {
                ContextSize = (uint)contextSize,
                BatchSize = (uint)batchSize,
                UBatchSize = (uint)batchSize,
                Threads = threads,
                BatchThreads = threads,
            };
            _weights = LLamaWeights.LoadFromFile(parameters);
            _context = _weights.CreateContext(parameters);
        }

        public void Prefill(int[] prompt)
        {
            _context.NativeHandle.MemoryClear(true);
            _position = 0;
            Decode(prompt);
        }

        public void Step() => Decode([_next]);

        /// <summary>The greedy token after the last prefill or step.</summary>
        public int Next => _next;

        private void Decode(ReadOnlySpan<int> tokens)
        {
            _batch.Clear();
            for (int i = 0; i < tokens.Length; i++) _batch.Add((LLamaToken)tokens[i], _position + i, LLamaSeqId.Zero, logits: i == tokens.Length - 1);
            var result = _context.Decode(_batch);
            if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp decode failed: {result}");
            _position += tokens.Length;
            _next = Generator.ArgMax(_context.NativeHandle.GetLogitsIth(tokens.Length - 1));
        }

        public void Dispose()
        {
            _context.Dispose();
            _weights.Dispose();
        }
    }
}
