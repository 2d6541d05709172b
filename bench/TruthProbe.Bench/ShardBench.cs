using System.Diagnostics;
using TruthProbe.Cli;
using TruthProbe.Model;

namespace TruthProbe.Bench;

/// <summary>
/// <c>score</c> as 2 shards on this machine's cores (two processes at once, one core each, then <c>merge</c>) against
/// one process using every core, both through the CLI on the same rows of a random Qwen2.5-0.5B-shaped model (fewer
/// layers). Wall times include each process's start and model load, as a scheduler would see them.
/// </summary>
public sealed class ShardBench : IBenchmark
{
    public string Name => "shard";

    public void Run(BenchContext context)
    {
        var log = context.Log;
        string? shared = RepoPaths.Shared();
        string repo = RepoPaths.RepoRoot() ?? throw new InvalidOperationException("the benchmark runs from a checkout");
        string? tokenizer = shared == null ? null : Path.Combine(shared, "models", "stories260K", "tok512.model");
        if (tokenizer == null || !File.Exists(tokenizer))
        {
            log.WriteLine("shard_vs_single skipped: needs ../shared/models/stories260K/tok512.model for the prompts' tokens");
            return;
        }
        int cores = Environment.ProcessorCount, rows = context.Quick ? 60 : 240;
        // The 0.5B shape at a few layers, with the tokenizer's 512-token vocabulary so that real text tokenises.
        var config = EngineBenchmark.QwenHalfBShape(context.Quick ? 4 : 8) with { Vocab = 512, MaxContext = 2048 };
        string dir = BenchTemp.Create("truthprobe-bench-shard-");
        try
        {
            string model = Path.Combine(dir, "model");
            RandomModel.WriteHf(model, config, seed: 3, WeightDType.BF16);
            string[] common = ["score", model, "--tokenizer", tokenizer, "--data", Path.Combine(repo, "data", "tinystories_context_qa.jsonl"), "--samples", rows.ToString()];

            double single = Time(() => [Cli([.. common, "--out", Path.Combine(dir, "single")], cores)]);
            double shards = Time(() => Enumerable.Range(1, cores).Select(k =>
                Cli([.. common, "--shard", $"{k}/{cores}", "--out", Path.Combine(dir, $"part-{k}")], 1)).ToArray());
            double merge = Time(() => [Cli(["merge", .. Enumerable.Range(1, cores).Select(k => Path.Combine(dir, $"part-{k}")), "--out", Path.Combine(dir, "merged")], cores)]);
            bool same = File.ReadAllBytes(Path.Combine(dir, "single", "scores.npy")).SequenceEqual(File.ReadAllBytes(Path.Combine(dir, "merged", "scores.npy")));

            log.WriteLine($"score, {rows} rows, {config.Layers}-layer 0.5B-shaped bf16 model, {cores} cores (CPU {TruthProbe.Numerics.Provenance.Cpu}, {TruthProbe.Numerics.Provenance.VectorBits}-bit vectors):");
            log.WriteLine($"  one process, {cores} threads: {single:0.0} s = {rows / single:0.0} rows/s");
            log.WriteLine($"  {cores} shards at once, 1 thread each: {shards:0.0} s, then merge {merge:0.0} s = {rows / (shards + merge):0.0} rows/s; merged scores {(same ? "identical" : "DIFFER")}");
            if (!same) throw new InvalidOperationException("the merged scores differ from the single run's");
            context.Ratio("shard_vs_single", single / (shards + merge));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Starts the CLI (the build this benchmark references) with <paramref name="threads"/> worker threads.</summary>
    private static Process Cli(string[] args, int threads)
    {
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(typeof(CliMain).Assembly.Location);
        foreach (string a in args) start.ArgumentList.Add(a);
        start.Environment["DOTNET_PROCESSOR_COUNT"] = threads.ToString();
        return Process.Start(start)!;
    }

    /// <summary>Seconds until every process started by <paramref name="run"/> has exited (each must succeed).</summary>
    private static double Time(Func<Process[]> run)
    {
        var sw = Stopwatch.StartNew();
        var processes = run();
        var outputs = processes.Select(p => (p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync())).ToArray();
        foreach (var p in processes) p.WaitForExit();
        double seconds = sw.Elapsed.TotalSeconds;
        for (int i = 0; i < processes.Length; i++)
            if (processes[i].ExitCode != 0) throw new InvalidOperationException($"CLI exited {processes[i].ExitCode}: {outputs[i].Item2.Result}");
        return seconds;
    }
}
