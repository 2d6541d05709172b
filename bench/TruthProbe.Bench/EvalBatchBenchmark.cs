using System.Diagnostics;
using TruthProbe.Evaluation;
using TruthProbe.Formats;
using TruthProbe.Model;

namespace TruthProbe.Bench;

/// <summary>
/// HaluEval-shaped evaluation on a random bf16 model with Qwen2.5-0.5B shapes, built as `eval halueval` builds its
/// work: rows of a passage (knowledge and question, 60-170 token ids) with a right and a hallucinated answer (3-20 ids),
/// each prompt the same 45-id instruction, the passage, one answer and a 3-id closing (HaluEval-QA's reference prompts
/// average ~700 characters, ~160 Qwen tokens); each of the default seeds 1, 2, 3 shows every row with one answer
/// (<see cref="HaluEvalData.ShowsHallucinated"/>), and every distinct prompt is generated once, 7 greedy new tokens.
/// Items/s several ways, on the same weights in one process: ours one at a time (<see cref="Generator"/>), ours with
/// <see cref="BatchGenerator"/> at the default batch (prefixes reused) and without prefix reuse, ours one at a time with
/// the prefix reuse, and llama.cpp (LLamaSharp) one at a time as a user would script it: prefill, then one token per
/// decode call.
/// </summary>
public sealed class EvalBatchBenchmark : IBenchmark
{
    public string Name => "evalbatch";

    private const int DefaultBatch = BatchGenerator.DefaultBatchSize;
    private const int NewTokens = 7;

    /// <summary>The distinct prompts of a 3-seed run over <paramref name="rows"/> rows, in the order `eval halueval` hands them over.</summary>
    internal static int[][] HaluEvalPrompts(int rows, Random random)
    {
        int[] Ids(int count) => [.. Enumerable.Range(0, count).Select(_ => random.Next(256))];
        int[] instruction = Ids(45), closing = Ids(3);
        var passages = Enumerable.Range(0, rows).Select(_ => Ids(random.Next(60, 171))).ToArray();
        var answers = Enumerable.Range(0, rows).Select(_ => new[] { Ids(random.Next(3, 21)), Ids(random.Next(3, 21)) }).ToArray();
        var prompts = new List<int[]>();
        var seen = new HashSet<(int, bool)>();
        foreach (int seed in new[] { 1, 2, 3 })
            for (int r = 0; r < rows; r++)
            {
                bool hallucinated = HaluEvalData.ShowsHallucinated(seed, r);
                if (seen.Add((r, hallucinated))) prompts.Add([.. instruction, .. passages[r], .. answers[r][hallucinated ? 1 : 0], .. closing]);
            }
        return [.. prompts];
    }

    public void Run(BenchContext context)
    {
        var log = context.Log;
        var config = EngineBenchmark.QwenHalfBShape(context.Quick ? 4 : 24);
        int rows = context.Quick ? 10 : 20;
        int[][] prompts = HaluEvalPrompts(rows, new Random(5));
        int items = prompts.Length;
        log.WriteLine($"{rows} rows x 3 seeds: {items} distinct prompts of {prompts.Min(p => p.Length)}-{prompts.Max(p => p.Length)} tokens (mean {prompts.Average(p => p.Length):0}), {NewTokens} new tokens each, {config.Layers} layers");

        string folder = BenchTemp.Create("truthprobe-bench-evalbatch-");
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
            BatchGenerator.Generate(model, prompts[..3], options, 2);
            Generator.Generate(model, prompts[0], options);
            llama.Prefill(prompts[0]);

            // Every way runs over all the prompts at once (as `eval halueval` hands them over: reuse needs the pairs
            // together), in rounds whose order alternates, so that a shared machine's load weighs on each alike;
            // wall-clock seconds make the ratios, process CPU seconds (less disturbed by other jobs) are printed beside.
            var state = model.NewState();
            var single = new GenerationResult[items];
            int agreeing = 0;
            string[] ways = ["prefill alone, whole prompts (no decoding)", "prefill alone, shared prefixes reused", "ours one at a time",
                             "ours one at a time, prefixes reused", $"ours, batch {DefaultBatch}, prefixes reused (default)", $"ours, batch {DefaultBatch}, no reuse",
                             "llama.cpp one at a time"];
            var wall = new double[ways.Length];
            var cpu = new double[ways.Length];
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
            void Same(GenerationResult[] got, string way)
            {
                for (int i = 0; i < items; i++)
                    if (!got[i].NewIds.SequenceEqual(single[i].NewIds)) throw new InvalidOperationException($"prompt {i}: {way} differs from one at a time");
            }
            var prefillOnly = options with { MaxNewTokens = 0 };
            var run = new Action[]
            {
                () => { foreach (var p in prompts) { state.Reset(); model.Forward(state, p.AsSpan(), null, null); } },
                () => BatchGenerator.Generate(model, prompts, prefillOnly, DefaultBatch),
                () => { for (int i = 0; i < items; i++) single[i] = Generator.Generate(model, prompts[i], options, state); },
                () => Same(OneAtATimeReusing(model, prompts, options), ways[3]),
                () => Same(BatchGenerator.Generate(model, prompts, options, DefaultBatch), ways[4]),
                () => Same(BatchGenerator.Generate(model, prompts, options, DefaultBatch, reusePrefixes: false), ways[5]),
                () =>
                {
                    agreeing = 0;
                    for (int i = 0; i < items; i++)
                    {
                        var ids = new List<int>();
                        llama.Prefill(prompts[i]);
                        ids.Add(llama.Next);
                        for (int t = 1; t < NewTokens; t++) { llama.Step(); ids.Add(llama.Next); }
                        if (ids.SequenceEqual(single[i].NewIds)) agreeing++;
                    }
                },
            };
            int rounds = context.Quick ? 1 : 2;
            for (int round = 0; round < rounds; round++)
            {
                // One at a time first in every round: the others are checked against its replies.
                Timed(2, run[2]);
                int[] rest = round % 2 == 0 ? [0, 1, 3, 4, 5, 6] : [6, 5, 4, 3, 1, 0];
                foreach (int way in rest) Timed(way, run[way]);
            }

            for (int w = 0; w < ways.Length; w++)
                log.WriteLine($"{ways[w]}: {rounds * items / wall[w]:0.00} items/s ({wall[w]:0.0} s wall, {cpu[w]:0.0} s CPU)");
            log.WriteLine($"replies identical to one at a time: batched with and without reuse, one at a time with reuse, {items}/{items}; llama.cpp's token-identical to ours: {agreeing}/{items}");
            log.WriteLine($"CPU seconds: prefill is {cpu[0] / cpu[2]:0.00} of one at a time, {cpu[1] / cpu[4]:0.00} of the default batch's; " +
                          $"ceiling of decode batching alone {cpu[2] / cpu[0]:0.00}, with prefix reuse {cpu[2] / cpu[1]:0.00}");
            log.WriteLine($"decomposition (CPU): decode batching {cpu[2] / cpu[5]:0.00} x prefix reuse in the batch {cpu[5] / cpu[4]:0.00} = {cpu[2] / cpu[4]:0.00}; " +
                          $"one at a time with reuse {cpu[2] / cpu[3]:0.00}, the default batch over that {cpu[3] / cpu[4]:0.00}");
            log.WriteLine($"batch over one at a time in CPU seconds: {cpu[2] / cpu[4]:0.00}; over llama.cpp: {cpu[6] / cpu[4]:0.00} (ggml's threads poll while idle, which counts as CPU)");
            context.Ratio("eval_batch_vs_single", wall[2] / wall[4]);
            context.Ratio("eval_vs_llamacpp", wall[6] / wall[4]);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>One at a time with the batch's prefix reuse: prompts in token order, each continuing from what it shares
    /// with the previous one (what a single-sequence path with the same reuse would cost).</summary>
    private static GenerationResult[] OneAtATimeReusing(Transformer model, int[][] prompts, GenerationOptions options)
    {
        var results = new GenerationResult[prompts.Length];
        var order = Enumerable.Range(0, prompts.Length).OrderBy(i => prompts[i], Comparer<int[]>.Create((a, b) => a.AsSpan().SequenceCompareTo(b))).ToArray();
        var state = model.NewState();
        for (int k = 0; k < order.Length; k++)
        {
            var prompt = prompts[order[k]];
            int shared = k == 0 ? 0 : PrefixReuse.SharedPositions(model.Config, prompts[order[k - 1]], prompt);
            if (shared > 0) PrefixReuse.CopyPrefix(model.Config, state, state, shared);
            else state.Reset();
            results[order[k]] = Generator.Continue(model, prompt, options, state);
        }
        return results;
    }
}
