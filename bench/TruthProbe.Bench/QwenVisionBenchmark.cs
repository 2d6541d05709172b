using System.Diagnostics;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Numerics;
using TruthProbe.Vision;

namespace TruthProbe.Bench;

/// <summary>
/// The Qwen2.5-VL vision encoder at its real widths (hidden 1280, 16 heads of 80, SwiGLU 3420, windows of 112 px, merger
/// 5120 -> 3584; bf16 weights as the hub ships them) on a 640 x 480 image (644 x 476: 1,564 patches, 391 tokens),
/// against the fp32 FMA peak measured in the same run, alternating: one block's seven GEMMs, a four-block encoding
/// (block 3 attends over the whole image, as 7, 15, 23, 31 do), and one block with windowed against whole-image attention.
/// </summary>
public sealed class QwenVisionBenchmark : IBenchmark
{
    public string Name => "qwen-vision";

    public void Run(BenchContext context)
    {
        var log = context.Log;
        var config = Qwen25VL(depth: 4);
        string folder = BenchTemp.Create("truthprobe-bench-qwen-");
        try
        {
            QwenCheckpoint.WriteRandom(folder, config, QwenLayout.Hub, seed: 3, WeightDType.BF16);
            using var model = QwenVLModel.Load(folder);
            var v = model.Config.Vision;
            var rng = new Random(4);
            var (height, width) = QwenImageProcessor.SmartResize(480, 640, 28, 3136, 16384 * 28 * 28);
            var chw = new float[3 * height * width];
            for (int i = 0; i < chw.Length; i++) chw[i] = (float)(rng.NextDouble() * 3.9 - 1.8);
            int gridH = height / 14, gridW = width / 14, n = gridH * gridW, tokens = n / 4;
            var pixels = new float[n * v.PatchValues];
            QwenImageProcessor.Patchify(chw, height, width, new QwenImageConfig(), pixels);
            var state = new QwenVisionState();
            var block = model.Vision.Blocks[0];
            WeightMatrix[] gemms = [block.Q, block.K, block.V, block.Proj, block.Gate, block.Up, block.Down];
            var x = new float[n * v.Intermediate];
            var y = new float[n * v.Intermediate];
            for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
            double gemmFlop = gemms.Sum(w => 2.0 * n * w.Rows * w.Cols);
            var windowed = v with { Depth = 1, FullAttentionBlocks = [] };
            var whole = v with { Depth = 1, FullAttentionBlocks = [0] };
            QwenVision.Encode(v, model.Vision, state, pixels, gridH, gridW);        // warm-up: JIT, page-in, workspaces
            QwenVision.Encode(whole, model.Vision, state, pixels, gridH, gridW);

            double peak = 0, bestGemms = double.MaxValue, bestEncode = double.MaxValue, bestWindowed = double.MaxValue, bestWhole = double.MaxValue;
            for (int round = 0; round < (context.Quick ? 2 : 4); round++)
            {
                peak = Math.Max(peak, FmaPeak.Measure(TimeSpan.FromSeconds(0.3)));
                var sw = Stopwatch.StartNew();
                foreach (var w in gemms) Kernels.MatMul(w, x, y, n);
                bestGemms = Math.Min(bestGemms, sw.Elapsed.TotalSeconds);
                sw.Restart();
                QwenVision.Encode(v, model.Vision, state, pixels, gridH, gridW);
                bestEncode = Math.Min(bestEncode, sw.Elapsed.TotalSeconds);
                sw.Restart();
                QwenVision.Encode(windowed, model.Vision, state, pixels, gridH, gridW);
                bestWindowed = Math.Min(bestWindowed, sw.Elapsed.TotalSeconds);
                sw.Restart();
                QwenVision.Encode(whole, model.Vision, state, pixels, gridH, gridW);
                bestWhole = Math.Min(bestWhole, sw.Elapsed.TotalSeconds);
            }
            double encodeFlop = EncodeFlop(v, n, windowRows: 64);
            double real = EncodeFlop(Qwen25VL(32).Vision, n, 64);
            log.WriteLine($"fp32 FMA peak {peak / 1e9:0.0} GFLOP/s on {Environment.ProcessorCount} threads ({SimdWidth.Current})");
            log.WriteLine($"Qwen2.5-VL vision block GEMMs (M={n}, bf16 weights): {bestGemms * 1e3:0.0} ms = {gemmFlop / bestGemms / 1e9:0.0} GFLOP/s");
            log.WriteLine($"encode {width}x{height} ({n} patches, {tokens} tokens), {v.Depth} blocks + merger: {bestEncode * 1e3:0.0} ms = {encodeFlop / bestEncode / 1e9:0.0} GFLOP/s " +
                $"(the real 32 blocks at this rate: {real / (encodeFlop / bestEncode):0.0} s per image, {tokens / (real / (encodeFlop / bestEncode)):0.0} image tokens/s)");
            log.WriteLine($"one block + merger, windowed attention {bestWindowed * 1e3:0.0} ms, whole-image attention {bestWhole * 1e3:0.0} ms");
            context.Ratio("qwen_vision_block_gemms_vs_peak", gemmFlop / bestGemms / peak);
            context.Ratio("qwen_vision_encode_vs_peak", encodeFlop / bestEncode / peak);
            context.Ratio("qwen_vision_windowed_vs_whole_block", bestWhole / bestWindowed);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// Multiply-adds x 2 of one encoding of <paramref name="n"/> patches: the frame-folded patch GEMM, per block the seven
    /// GEMMs and attention's two products (over the whole image in full-attention blocks, over about
    /// <paramref name="windowRows"/> rows elsewhere), the merger.
    /// </summary>
    private static double EncodeFlop(QwenVisionConfig v, double n, double windowRows)
    {
        double d = v.Hidden, merged = 4 * d;
        double gemms = 2 * n * (4 * d * d + 3 * d * v.Intermediate);
        double attention = v.Depth * gemms + v.FullAttentionBlocks.Count * 4 * n * n * d + (v.Depth - v.FullAttentionBlocks.Count) * 4 * n * windowRows * d;
        return 2 * n * d * 3 * 14 * 14 + attention + 2 * (n / 4) * merged * (merged + v.OutHidden);
    }

    /// <summary>The vision encoder of Qwen2.5-VL-7B with <paramref name="depth"/> blocks (the last attending over the whole image) and a one-layer LM of its width (not measured).</summary>
    private static QwenVLConfig Qwen25VL(int depth) => new()
    {
        Architecture = "qwen2_5_vl",
        Vision = new QwenVisionConfig
        {
            Depth = depth, Hidden = 1280, Intermediate = 3420, Heads = 16, PatchSize = 14, TemporalPatchSize = 2, MergeSize = 2,
            WindowSize = 112, OutHidden = 3584, FullAttentionBlocks = depth == 32 ? [7, 15, 23, 31] : [depth - 1],
        },
        Text = new ModelConfig
        {
            Architecture = "qwen2", Layers = 1, DModel = 3584, Heads = 28, KvHeads = 4, HeadDim = 128, Ffn = 64, Vocab = 64,
            MaxContext = 1024, RmsEps = 1e-6f, RopeTheta = 1000000f, QkvBias = true,
        },
        ImageTokenId = 60,
        VisionStartTokenId = 61,
        VisionEndTokenId = 62,
        MropeSection = [16, 24, 24],
    };
}
