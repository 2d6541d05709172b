using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using TruthProbe.Formats;
using TruthProbe.Model;

namespace TruthProbe.Bench;

/// <summary>
/// A 7B-shaped bf16 model (llama: d_model 4096, 32 heads, FFN 11008, vocab 32000; 32 layers, 4 under --quick)
/// written with random weights into a temp folder, its pages dropped from the page cache, then loaded by a child
/// process that prefills 512 tokens cold (time to first token), prefills them again warm between two FMA-peak
/// measurements (`prefill_7b_vs_peak`: model FLOPs over the peak; every layer has the full shapes, so 4 layers
/// measure the same kernels), and reports its peak resident memory (VmHWM). The weights are memory-mapped and
/// never widened as a whole, so the peak should be the weight bytes plus activations: `rss_vs_weights_7b`, peak
/// RSS / weight bytes (target <= 1.05), the one ratio where lower is better, reported for the 32-layer model.
/// The same weights are then written as a Q8_0 GGUF and measured the same way (`prefill_7b_q8_vs_peak`,
/// `rss_vs_weights_7b_q8` against the file's bytes). Each model runs twice, with the float32 KV cache and with the
/// fp16 one (`--kv-cache f16`, the `_kv16` ratios), each in its own child so that each has its own peak.
/// </summary>
public sealed class RssBenchmark : IBenchmark
{
    public const string ChildFlag = "--prefill-child";
    private const int PrefillTokens = 512;

    public string Name => "rss7b";

    private static ModelConfig SevenB(int layers) => new()
    {
        Architecture = "llama", Layers = layers, DModel = 4096, Heads = 32, KvHeads = 32, HeadDim = 128, Ffn = 11008,
        Vocab = 32000, MaxContext = 4096, RopeTheta = 10000f, RmsEps = 1e-5f, TiedEmbeddings = false,
    };

    public void Run(BenchContext context)
    {
        var log = context.Log;
        var config = SevenB(context.Quick ? 4 : 32);
        long weightBytes = config.ParameterCount() * 2;
        // bf16, then Q8_0 (34 bytes per 32 values) beside it.
        long needed = weightBytes + weightBytes * 17 / 32;
        string temp = Path.GetTempPath();
        long free = new DriveInfo(Path.GetPathRoot(Path.GetFullPath(temp))!).AvailableFreeSpace;
        if (free < needed + (2L << 30))
        {
            log.WriteLine($"7B benchmark skipped: {temp} has {free / 1e9:0.0} GB free, the {config.Layers}-layer model needs {needed / 1e9:0.0} GB in bf16 and Q8_0");
            return;
        }
        string folder = BenchTemp.Create("truthprobe-bench-7b-");
        try
        {
            var sw = Stopwatch.StartNew();
            RandomModel.WriteHf(folder, config, seed: 7, WeightDType.BF16);
            bool cold = DropFromPageCache(Path.Combine(folder, HfCheckpoint.SingleFile));
            log.WriteLine($"random bf16 7B-shaped model, {config.Layers} of 32 layers ({config.ParameterCount() / 1e9:0.00} B parameters, {weightBytes / 1e9:0.0} GB) " +
                $"written in {sw.Elapsed.TotalSeconds:0} s; {(cold ? "its pages dropped from the page cache" : "page cache not dropped (posix_fadvise unavailable)")}");
            Measure(context, folder, "bf16", weightBytes, config, cold, "prefill_7b_vs_peak", "rss_vs_weights_7b");
            Measure(context, folder, "bf16, f16 KV cache", weightBytes, config, DropFromPageCache(Path.Combine(folder, HfCheckpoint.SingleFile)),
                "prefill_7b_kv16_vs_peak", "rss_vs_weights_7b_kv16", KvCacheType.F16);

            // The same weights as Q8_0 in a GGUF (norms stay f32, as llama.cpp's converter writes them).
            string gguf = Path.Combine(folder, "model-q8_0.gguf");
            sw.Restart();
            using (var source = Transformer.Load(folder))
                GgufCheckpoint.Write(gguf, config, source.Weights, vocabulary: null, GgufTensorType.Q8_0, "random-7b-shape-q8_0");
            cold = DropFromPageCache(gguf);
            long q8Bytes = new FileInfo(gguf).Length;
            log.WriteLine($"the same weights as Q8_0 GGUF ({q8Bytes / 1e9:0.00} GB) written in {sw.Elapsed.TotalSeconds:0} s");
            Measure(context, gguf, "Q8_0", q8Bytes, config, cold, "prefill_7b_q8_vs_peak", "rss_vs_weights_7b_q8");
            Measure(context, gguf, "Q8_0, f16 KV cache", q8Bytes, config, DropFromPageCache(gguf), "prefill_7b_q8_kv16_vs_peak", "rss_vs_weights_7b_q8_kv16", KvCacheType.F16);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>One child run on <paramref name="model"/> (a folder or a .gguf): its prefill against the FMA peak and
    /// its peak RSS against <paramref name="weightBytes"/>, reported under the two ratio names.</summary>
    private static void Measure(BenchContext context, string model, string label, long weightBytes, ModelConfig config, bool cold, string prefillRatio, string rssRatio,
        KvCacheType kvCache = KvCacheType.F32)
    {
        var log = context.Log;
        var fields = RunChild(model, kvCache);
        double flops = PrefillFlops(config, PrefillTokens), seconds = fields["prefill_s"], peak = fields["peak_flops"];
        double perCpu = flops / fields["prefill_cpu_s"], corePeak = fields["core_peak_flops"];
        double peakBytes = fields["vmhwm_kb"] * 1024;
        log.WriteLine($"{label}: load {fields["load_s"]:0.00} s; time to first token ({PrefillTokens}-token prompt, {(cold ? "cold" : "warm")} cache) {fields["ttft_s"]:0.0} s; " +
            $"warm prefill {seconds:0.00} s = {PrefillTokens / seconds:0.0} tok/s, {flops / seconds / 1e9:0.0} GFLOP/s against an FMA peak of {peak / 1e9:0.0} " +
            $"({flops / 1e12:0.00} TFLOP: GEMMs and causal attention); per CPU-second {perCpu / 1e9:0.0} against {corePeak / 1e9:0.0} GFLOP/s = {perCpu / corePeak:0.000}");
        log.WriteLine($"{label}: peak RSS {peakBytes / 1e9:0.00} GB = {peakBytes / weightBytes:0.000} x weight bytes (target <= 1.05 for 32 layers); " +
            $"at the end {fields["rss_file_kb"] * 1024 / 1e9:0.00} GB of mapped file pages and {fields["rss_anon_kb"] * 1024 / 1e9:0.00} GB of heap (activations, KV cache, copies)");
        context.Ratio(prefillRatio, flops / seconds / peak);
        if (config.Layers == 32) context.Ratio(rssRatio, peakBytes / weightBytes);
    }

    /// <summary>Multiply-adds x 2 of one prefill: every projection for every token, the causal attention products
    /// QKᵀ and PV (position t attends to t + 1 keys), and the classifier for the last token.</summary>
    private static double PrefillFlops(ModelConfig c, int tokens)
    {
        double perToken = 2.0 * c.Layers * ((double)c.DModel * c.QDim + 2.0 * c.DModel * c.KvDim + (double)c.QDim * c.DModel + 3.0 * c.DModel * c.Ffn);
        double attention = c.Layers * 4.0 * c.QDim * tokens * (tokens + 1) / 2;
        return perToken * tokens + attention + 2.0 * c.DModel * c.Vocab;
    }

    private static Dictionary<string, double> RunChild(string model, KvCacheType kvCache)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        // Under `dotnet Bench.dll` the process is dotnet itself: pass the assembly first.
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") start.ArgumentList.Add(typeof(RssBenchmark).Assembly.Location);
        start.ArgumentList.Add(ChildFlag);
        start.ArgumentList.Add(model);
        start.ArgumentList.Add(kvCache.Name());
        using var child = Process.Start(start)!;
        string output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        if (child.ExitCode != 0) throw new InvalidOperationException($"7B child exited with {child.ExitCode}: {output}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')).Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => double.Parse(p[1], CultureInfo.InvariantCulture));
    }

    /// <summary>Writes the file's dirty pages to disk and drops its pages (only its own) from the page cache, so the
    /// child's first prefill reads the weights from disk as a fresh start would. False where the OS has no fadvise.</summary>
    private static bool DropFromPageCache(string path)
    {
        if (!OperatingSystem.IsLinux()) return false;
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.Flush(flushToDisk: true);
        const int DontNeed = 4;
        return PosixFadvise((int)file.SafeFileHandle.DangerousGetHandle(), 0, 0, DontNeed) == 0;
    }

    [DllImport("libc", EntryPoint = "posix_fadvise")]
    private static extern int PosixFadvise(int fd, long offset, long length, int advice);

    /// <summary>The child: load, a cold prefill (time to first token: load + prefill + the argmax), a warm prefill
    /// between two FMA-peak measurements; prints `name value` lines, the resident memory's mapped and heap parts and VmHWM last.</summary>
    public static int Child(string path, string kvCache)
    {
        var sw = Stopwatch.StartNew();
        using var model = Transformer.Load(path);
        model.KvCache = KvCacheTypes.Parse(kvCache, "kv_cache");
        double load = sw.Elapsed.TotalSeconds;
        int[] ids = Enumerable.Range(0, PrefillTokens).Select(i => (i * 7919 + 1) % model.Config.Vocab).ToArray();
        var state = model.NewState();
        var logits = model.Forward(state, ids);
        int first = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[first]) first = i;
        double ttft = sw.Elapsed.TotalSeconds;
        double peak = FmaPeak.Measure(TimeSpan.FromSeconds(0.5)), corePeak = FmaPeak.PerCoreCpuSecond();
        state.Reset();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        sw.Restart();
        model.Forward(state, ids);
        double prefill = sw.Elapsed.TotalSeconds, prefillCpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
        peak = Math.Max(peak, FmaPeak.Measure(TimeSpan.FromSeconds(0.5)));
        corePeak = Math.Max(corePeak, FmaPeak.PerCoreCpuSecond());
        var status = File.ReadLines("/proc/self/status").ToArray();
        long Kb(string field) => long.Parse(status.First(l => l.StartsWith(field, StringComparison.Ordinal))[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"first_token {first}\nload_s {load}\nttft_s {ttft}\nprefill_s {prefill}\nprefill_cpu_s {prefillCpu}\npeak_flops {peak}\ncore_peak_flops {corePeak}\n" +
            $"rss_file_kb {Kb("RssFile:")}\nrss_anon_kb {Kb("RssAnon:")}\nvmhwm_kb {Kb("VmHWM:")}"));
        return 0;
    }
}
