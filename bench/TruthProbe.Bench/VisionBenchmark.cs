using System.Diagnostics;
using TruthProbe.Model;
using TruthProbe.Numerics;
using TruthProbe.Vision;

namespace TruthProbe.Bench;

/// <summary>
/// The LLaVA-1.5 vision tower against the machine: the six GEMMs of one CLIP ViT-L/14-336 encoder layer (577 rows;
/// q, k, v, out 1024 x 1024, fc1 4096 x 1024, fc2 1024 x 4096; fp16 weights as llava-hf ships them), and a whole
/// encoding (patch GEMM, two layers with attention, LayerNorms and quick-GELU, projector) at those shapes, each
/// against the fp32 FMA peak measured in the same run, alternating so both see the same machine.
/// </summary>
public sealed class VisionBenchmark : IBenchmark
{
    public string Name => "vision";

    public void Run(BenchContext context)
    {
        var log = context.Log;
        var config = ClipL336(visionLayers: 3);   // layer -2 of 3: two layers run
        string folder = BenchTemp.Create("truthprobe-bench-vision-");
        try
        {
            LlavaCheckpoint.WriteRandom(folder, config, LlavaLayout.Hub, seed: 3, WeightDType.F16);
            using var model = LlavaModel.Load(folder);
            var state = model.NewState();
            var pixels = new float[3 * 336 * 336];
            var rng = new Random(4);
            for (int i = 0; i < pixels.Length; i++) pixels[i] = (float)(rng.NextDouble() * 3.9 - 1.8);
            var layer = model.Vision.Layers[0];
            WeightMatrix[] gemms = [layer.Q, layer.K, layer.V, layer.O, layer.Fc1, layer.Fc2];
            int n = config.Vision.Positions;
            var x = new float[n * config.Vision.Intermediate];
            var y = new float[n * config.Vision.Intermediate];
            for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
            double gemmFlop = gemms.Sum(w => 2.0 * n * w.Rows * w.Cols);
            model.EncodeImage(state, pixels);                           // warm-up: JIT, page-in

            double peak = 0, bestGemms = double.MaxValue, bestEncode = double.MaxValue;
            for (int round = 0; round < (context.Quick ? 2 : 5); round++)
            {
                peak = Math.Max(peak, FmaPeak.Measure(TimeSpan.FromSeconds(0.3)));
                var sw = Stopwatch.StartNew();
                foreach (var w in gemms) Kernels.MatMul(w, x, y, n);
                bestGemms = Math.Min(bestGemms, sw.Elapsed.TotalSeconds);
                sw.Restart();
                model.EncodeImage(state, pixels);
                bestEncode = Math.Min(bestEncode, sw.Elapsed.TotalSeconds);
            }
            double encodeFlop = EncodeFlop(config);
            log.WriteLine($"fp32 FMA peak {peak / 1e9:0.0} GFLOP/s on {Environment.ProcessorCount} threads ({SimdWidth.Current})");
            log.WriteLine($"CLIP-L/14-336 layer GEMMs (M={n}, fp16 weights): {bestGemms * 1e3:0.0} ms = {gemmFlop / bestGemms / 1e9:0.0} GFLOP/s");
            log.WriteLine($"encode 336x336, {config.VisionLayersRun} of CLIP-L's layers + projector: {bestEncode * 1e3:0.0} ms = {encodeFlop / bestEncode / 1e9:0.0} GFLOP/s " +
                $"(LLaVA-1.5-7B's 23 layers and 4096-wide projector at this rate: {EncodeFlop(Llava15) / (encodeFlop / bestEncode):0.0} s per image)");
            context.Ratio("vision_layer_gemms_vs_peak", gemmFlop / bestGemms / peak);
            context.Ratio("vision_encode_vs_peak", encodeFlop / bestEncode / peak);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Multiply-adds x 2 of one encoding: patch GEMM, per layer the six GEMMs and attention's two products, the projector.</summary>
    private static double EncodeFlop(LlavaConfig c)
    {
        var v = c.Vision;
        double n = v.Positions, d = v.Hidden;
        double layer = 2 * n * (4 * d * d + 2 * d * v.Intermediate) + 2 * 2 * n * n * d;
        double projector = 2.0 * c.ImageTokens * c.Text.DModel * (d + c.Text.DModel);
        return 2.0 * v.Patches * d * v.PatchValues + c.VisionLayersRun * layer + projector;
    }

    private static readonly LlavaConfig Llava15 = ClipL336(24) with { Text = ClipL336(24).Text with { DModel = 4096 } };

    /// <summary>CLIP ViT-L/14 at 336 with <paramref name="visionLayers"/> layers and a 64-wide two-layer decoder (its cost is not measured here).</summary>
    private static LlavaConfig ClipL336(int visionLayers) => new()
    {
        Architecture = "llava",
        Vision = new ClipVisionConfig
        {
            Hidden = 1024, Intermediate = 4096, Layers = visionLayers, Heads = 16, Channels = 3, ImageSize = 336, PatchSize = 14,
            HiddenAct = "quick_gelu", LayerNormEps = 1e-5f,
        },
        Text = new ModelConfig { Architecture = "llama", Layers = 2, DModel = 64, Heads = 4, KvHeads = 4, HeadDim = 16, Ffn = 128, Vocab = 64, MaxContext = 1024 },
        ImageTokenId = 63,
        FeatureLayer = -2,
        Select = FeatureSelect.Default,
        ProjectorBias = true,
    };
}
