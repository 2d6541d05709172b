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

    private const int DefaultBatch = BatchGenerator.DefaultBatchSize;
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

            // The four runs take turns over slices of the items, so that a shared machine's load weighs on each alike;
            // wall-clock seconds make the ratios, process CPU seconds (less disturbed by other jobs) are printed beside.
            var state = model.NewState();
            var single = new GenerationResult[items];
            int agreeing = 0;
            var wall = new double[6];
            var cpu = new double[6];
            void Timed(int way, Action action)
            {
                var process = Process.GetCurrentProcess();
                var cpu0 = process.TotalProcessorTime;
                var sw = Stopwatch.StartNew();
                action();
                wall[way] += sw.Elapsed.TotalSeconds;
                process.Refresh();
                cpu[way] += (process.TotalProcessorTime - cpu0).TotalSeconds;
            }
            const int Slice = 2 * DefaultBatch;
            for (int s0 = 0; s0 < items; s0 += Slice)
            {
                var slice = prompts[s0..Math.Min(items, s0 + Slice)];
                Timed(0, () => { foreach (var p in slice) { state.Reset(); model.Forward(state, p.AsSpan(), null, null); } });
                Timed(1, () => { for (int i = 0; i < slice.Length; i++) single[s0 + i] = Generator.Generate(model, slice[i], options, state); });
                GenerationResult[] batched = [];
                Timed(2, () => batched = BatchGenerator.Generate(model, slice, options, DefaultBatch));
                for (int i = 0; i < slice.Length; i++)
                    if (!batched[i].NewIds.SequenceEqual(single[s0 + i].NewIds)) throw new InvalidOperationException($"item {s0 + i}: the batched reply differs from one at a time");
                Timed(3, () =>
                {
                    for (int i = 0; i < slice.Length; i++)
                    {
                        var ids = new List<int>();
                        llama.Prefill(slice[i]);
                        ids.Add(llama.Next);
                        for (int t = 1; t < NewTokens; t++) { llama.Step(); ids.Add(llama.Next); }
                        if (ids.SequenceEqual(single[s0 + i].NewIds)) agreeing++;
                    }
                });
            }

            // Other batch sizes, for the choice of the default (each over all the items at once).
            Timed(4, () => BatchGenerator.Generate(model, prompts, options, 4));
            Timed(5, () => BatchGenerator.Generate(model, prompts, options, 16));

            string[] ways = ["prefill alone (no decoding)", "ours one at a time", $"ours, batch {DefaultBatch}", "llama.cpp one at a time", "ours, batch 4", "ours, batch 16"];
            for (int w = 0; w < ways.Length; w++)
                log.WriteLine($"{ways[w]}: {items / wall[w]:0.00} items/s ({wall[w]:0.0} s wall, {cpu[w]:0.0} s CPU)");
            log.WriteLine($"batched replies identical to one at a time: {items}/{items}; llama.cpp's token-identical to ours: {agreeing}/{items}");
            log.WriteLine($"ceiling of decode batching here (one at a time over prefill alone): {wall[1] / wall[0]:0.00} wall, {cpu[1] / cpu[0]:0.00} CPU");
            log.WriteLine($"batch over one at a time in CPU seconds: {cpu[1] / cpu[2]:0.00}; over llama.cpp: {cpu[3] / cpu[2]:0.00} (ggml's threads poll while idle, which counts as CPU)");
            context.Ratio("eval_batch_vs_single", wall[1] / wall[2]);
            context.Ratio("eval_vs_llamacpp", wall[3] / wall[2]);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
