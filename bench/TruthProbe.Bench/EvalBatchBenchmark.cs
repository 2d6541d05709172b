using System.Diagnostics;
using TruthProbe.Formats;
using TruthProbe.Model;

namespace TruthProbe.Bench;

/// <summary>
/// HaluEval-shaped evaluation on a random bf16 model with Qwen2.5-0.5B shapes: prompts of 120-240 tokens
/// (HaluEval-QA's reference prompts average ~700 characters, ~160 Qwen tokens, the first ~45 the same
/// instruction), 7 greedy new tokens each. Items/s three ways, in one run on the same weights: ours one item
/// at a time (<see cref="Generator"/>), ours with <see cref="BatchGenerator"/> at the default batch, and
/// llama.cpp (LLamaSharp) one item at a time as a user would script it: prefill, then one token per decode call.
/// </summary>
public sealed class EvalBatchBenchmark : IBenchmark
{
    public string Name => "evalbatch";

    /// <summary>The default of <c>--batch</c> in <c>generate</c> and <c>eval halueval</c>.</summary>
    private const int DefaultBatch = 8;
    private const int NewTokens = 7;

    public void Run(BenchContext context)
    {
        var log = context.Log;
        var config = EngineBenchmark.QwenHalfBShape(context.Quick ? 4 : 24);
        int items = context.Quick ? 16 : 32;
        var random = new Random(5);
        int[] instruction = [.. Enumerable.Range(0, 45).Select(_ => random.Next(256))];
        int[][] prompts = [.. Enumerable.Range(0, items).Select(_ => (int[])[.. instruction, .. Enumerable.Range(0, random.Next(75, 196)).Select(_ => random.Next(256))])];
        log.WriteLine($"{items} prompts of {prompts.Min(p => p.Length)}-{prompts.Max(p => p.Length)} tokens (mean {prompts.Average(p => p.Length):0}), {NewTokens} new tokens each, {config.Layers} layers");

        string folder = Directory.CreateTempSubdirectory("truthprobe-bench-evalbatch-").FullName;
        try
        {
            string hf = Path.Combine(folder, "hf"), gguf = Path.Combine(folder, "model.gguf");
            RandomModel.WriteHf(hf, config, seed: 1, WeightDType.BF16);
            using var model = Transformer.Load(hf);
            GgufCheckpoint.Write(gguf, config, model.Weights, LlamaCppBenchmark.ByteVocabulary(), GgufTensorType.BF16, "random-qwen2.5-0.5b-shape");
            var options = new GenerationOptions { MaxNewTokens = NewTokens };
            int longest = prompts.Max(p => p.Length);
            using var llama = new LlamaCppBenchmark.LlamaCppRuntime(gguf, longest + NewTokens + 8, longest);

            // Warm-up: JIT, page-in of the mapped weights, llama.cpp's graph.
            BatchGenerator.Generate(model, prompts[..2], options, 2);
            Generator.Generate(model, prompts[0], options);
            llama.Prefill(prompts[0]);

            var state = model.NewState();
            var sw = Stopwatch.StartNew();
            foreach (var p in prompts) model.Forward(state, p.AsSpan(), null, null);
            double prefillOnly = sw.Elapsed.TotalSeconds;
            state.Reset();

            sw.Restart();
            var single = prompts.Select(p => Generator.Generate(model, p, options, state)).ToArray();
            double singleSeconds = sw.Elapsed.TotalSeconds;

            var batchSeconds = new Dictionary<int, double>();
            foreach (int b in context.Quick ? [DefaultBatch] : new[] { 4, DefaultBatch, 16 })
            {
                sw.Restart();
                var batched = BatchGenerator.Generate(model, prompts, options, b);
                batchSeconds[b] = sw.Elapsed.TotalSeconds;
                for (int i = 0; i < items; i++)
                    if (!batched[i].NewIds.SequenceEqual(single[i].NewIds)) throw new InvalidOperationException($"batch {b}: item {i} differs from one at a time");
            }

            int agreeing = 0;
            sw.Restart();
            for (int i = 0; i < items; i++)
            {
                var ids = new List<int>();
                llama.Prefill(prompts[i]);
                ids.Add(llama.Next);
                for (int t = 1; t < NewTokens; t++) { llama.Step(); ids.Add(llama.Next); }
                if (ids.SequenceEqual(single[i].NewIds)) agreeing++;
            }
            double llamaSeconds = sw.Elapsed.TotalSeconds;

            double Rate(double seconds) => items / seconds;
            log.WriteLine($"prefill alone (no decoding): {Rate(prefillOnly):0.00} items/s, {prompts.Sum(p => p.Length) / prefillOnly:0} tok/s");
            log.WriteLine($"ours one at a time: {Rate(singleSeconds):0.00} items/s ({singleSeconds:0.0} s)");
            foreach (var (b, seconds) in batchSeconds) log.WriteLine($"ours batch {b}: {Rate(seconds):0.00} items/s ({seconds:0.0} s), replies identical to one at a time");
            log.WriteLine($"llama.cpp one at a time: {Rate(llamaSeconds):0.00} items/s ({llamaSeconds:0.0} s); {agreeing}/{items} replies token-identical to ours");
            context.Ratio("eval_batch_vs_single", singleSeconds / batchSeconds[DefaultBatch]);
            context.Ratio("eval_vs_llamacpp", llamaSeconds / batchSeconds[DefaultBatch]);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
