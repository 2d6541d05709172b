using LLama.Common;
using LLama.Native;
using LLama;

namespace TruthProbe.Tests.Formats;

/// <summary>
/// llama.cpp (through LLamaSharp's CPU backend) as an independent implementation: load a GGUF file, run one
/// token sequence in a single batch and return the logits of every position. The KV cache is kept in fp32
/// and flash attention off, so with fp32 weights llama.cpp computes in fp32 throughout and differences
/// from our engine are rounding, not format or layout.
/// </summary>
public static class LlamaCppReference
{
    private static readonly object Gate = new();
    private static bool _configured;

    /// <summary>Loads the native library once per process, with llama.cpp's chatty log reduced to its errors.</summary>
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (_configured) return;
            _configured = true;
            if (!NativeLibraryConfig.LLama.LibraryHasLoaded)
                NativeLibraryConfig.All.WithLogCallback((level, message) =>
                {
                    if (level == LLamaLogLevel.Error) Console.Error.Write("llama.cpp: " + message);
                });
            NativeApi.llama_empty_call(); // forces the load now, so a missing backend fails here and not mid-test
        }
    }

    /// <summary>llama.cpp's tokenisation of <paramref name="text"/> with the vocabulary stored in the file;
    /// <paramref name="parseSpecial"/> lets control tokens written in the text match.</summary>
    public static int[] Tokenize(string ggufPath, string text, bool addBos, bool parseSpecial)
    {
        EnsureLoaded();
        using var weights = LLamaWeights.LoadFromFile(new ModelParams(ggufPath) { VocabOnly = true });
        return weights.Tokenize(text, addBos, parseSpecial, System.Text.Encoding.UTF8).Select(t => (int)t).ToArray();
    }

    /// <summary>llama.cpp's own GGUF writer: re-encodes <paramref name="source"/> as <paramref name="type"/>
    /// (its quantiser for Q8_0), 1-D tensors staying F32.</summary>
    public static void Requantize(string source, string destination, LLamaFtype type)
    {
        EnsureLoaded();
        if (!LLamaQuantizer.Quantize(source, destination, type, nthread: 2, allowRequantize: true, quantizeOutputTensor: true))
            throw new InvalidOperationException($"llama.cpp could not re-encode {source} as {type}");
    }

    /// <returns>Logits [T, vocab], row-major, one row per input token.</returns>
    public static float[] Logits(string ggufPath, IReadOnlyList<int> tokens, int threads = 2)
    {
        EnsureLoaded();
        var parameters = new ModelParams(ggufPath)
        {
            ContextSize = (uint)Math.Max(tokens.Count, 8),
            BatchSize = (uint)tokens.Count,
            UBatchSize = (uint)tokens.Count,
            Threads = threads,
            BatchThreads = threads,
            TypeK = GGMLType.GGML_TYPE_F32,
            TypeV = GGMLType.GGML_TYPE_F32,
            FlashAttention = false,
        };
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        var batch = new LLamaBatch();
        for (int i = 0; i < tokens.Count; i++) batch.Add((LLamaToken)tokens[i], i, LLamaSeqId.Zero, logits: true);
        var result = context.Decode(batch);
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp decode failed: {result}");
        int vocab = weights.Vocab.Count;
        var logits = new float[tokens.Count * vocab];
        for (int i = 0; i < tokens.Count; i++) context.NativeHandle.GetLogitsIth(i).CopyTo(logits.AsSpan(i * vocab, vocab));
        return logits;
    }
}
