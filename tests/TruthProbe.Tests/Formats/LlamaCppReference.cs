using LLama;
using LLama.Common;
using LLama.Native;

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

    /// <summary>Routes llama.cpp's log to nowhere (it is chatty on stderr) once per process, before the native library loads.</summary>
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

    /// <returns>logits[position][token], one row per input token.</returns>
    public static float[][] Logits(string ggufPath, IReadOnlyList<int> tokens, int threads = 2)
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
        var logits = new float[tokens.Count][];
        for (int i = 0; i < tokens.Count; i++) logits[i] = context.NativeHandle.GetLogitsIth(i).ToArray();
        return logits;
    }
}
