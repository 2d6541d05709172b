using System.Diagnostics;
using TruthProbe.Model;
using TruthProbe.Vision;

namespace TruthProbe.Bench;

/// <summary>
/// Model-driven POPE's image-prefix reuse: questions/s when each image's shared prefix (system text, 576 image
/// positions, the text before the question) is prefilled once per arm and every question continues from the rewound
/// cache, over questions/s when every prompt is prefilled from position 0, in the same run on the same model. LLaVA-1.5
/// shapes at reduced depth (CLIP-L/14-336, 2 layers run; a decoder of Vicuna-7B's width, 4096 x 32 heads, ffn 11008,
/// vocabulary 32064, with one layer; fp16 weights), random weights, POPE's prompt through the real template, vanilla
/// and gated arms, 2 new tokens per reply (yes/no and EOS). The image encoding is the same in both and not timed.
/// </summary>
public sealed class PopePrefixBench : IBenchmark
{
    public string Name => "pope_prefix_reuse";

    public void Run(BenchContext context)
    {
        var log = context.Log;
        var config = new LlavaConfig
        {
            Architecture = "llava",
            Vision = new ClipVisionConfig
            {
                Hidden = 1024, Intermediate = 4096, Layers = 3, Heads = 16, Channels = 3, ImageSize = 336, PatchSize = 14,
                HiddenAct = "quick_gelu", LayerNormEps = 1e-5f,
            },
            Text = new ModelConfig
            {
                Architecture = "llama", Layers = 1, DModel = 4096, Heads = 32, KvHeads = 32, HeadDim = 128, Ffn = 11008, Vocab = 32064,
                MaxContext = 4096, RmsEps = 1e-5f, BosId = 1, EosIds = [2],
            },
            ImageTokenId = 32000,
            FeatureLayer = -2,
            Select = FeatureSelect.Default,
            ProjectorBias = true,
        };
        string folder = BenchTemp.Create("truthprobe-bench-pope-");
        try
        {
            LlavaCheckpoint.WriteRandom(folder, config, LlavaLayout.Hub, seed: 5, WeightDType.F16);
            using var model = LlavaModel.Load(folder);
            // About the token counts the Llama-2 tokenizer gives LLaVA's POPE prompt: BOS, 37 ids of system text and "USER:",
            // the image, 5 ids shared by every question ("\nIs there a"), then the object and 20 more (the rest of the
            // question, the short-answer instruction, "ASSISTANT:"). The ids themselves are random.
            var rng = new Random(6);
            int[] head = [1, .. Enumerable.Range(0, 37).Select(_ => rng.Next(3, 32000)), config.ImageTokenId, 29871, 13, 3624, 727, 263];
            int[] tail = [.. Enumerable.Range(0, 20).Select(_ => rng.Next(3, 32000))];
            int questionsPerImage = 6;   // POPE: 3 objects present, 3 absent per image and split
            var prompts = Enumerable.Range(0, questionsPerImage)
                .Select(q => model.ExpandImageTokens([.. head, 3 + q, .. tail])).ToList();
            var pixels = new float[3 * 336 * 336];
            for (int i = 0; i < pixels.Length; i++) pixels[i] = (float)(rng.NextDouble() * 3.9 - 1.8);
            var gates = new float[1, 32];
            for (int h = 0; h < 32; h++) gates[0, h] = 0.5f + h % 3 * 0.5f;
            Interventions?[] arms = [null, new Interventions(config.Text).Gate(gates, GateSite.Head)];
            var options = new GenerationOptions { MaxNewTokens = 2, StopAtEos = false };

            // Wall and CPU seconds of one image's replies: the machine is shared, so the ratio is taken from CPU time
            // (work done, whichever other processes ran meanwhile); wall time is printed beside it.
            (double Wall, double Cpu) Seconds(ImagePrefixCache cache)
            {
                cache.SetImage(pixels, prompts);
                using var self = Process.GetCurrentProcess();
                var cpu = self.TotalProcessorTime;
                var clock = Stopwatch.StartNew();
                foreach (var prompt in prompts)
                    for (int a = 0; a < arms.Length; a++) cache.Generate(a, prompt, options);
                self.Refresh();
                return (clock.Elapsed.TotalSeconds, (self.TotalProcessorTime - cpu).TotalSeconds);
            }
            var reuse = new ImagePrefixCache(model, arms);
            var scratch = new ImagePrefixCache(model, arms, reusePrefix: false);
            Seconds(reuse);   // warm-up: JIT, page-in, buffers
            (double Wall, double Cpu) bestReuse = (double.MaxValue, double.MaxValue), bestScratch = bestReuse;
            for (int round = 0; round < (context.Quick ? 1 : 3); round++)
            {
                var s = Seconds(scratch);
                bestScratch = (Math.Min(bestScratch.Wall, s.Wall), Math.Min(bestScratch.Cpu, s.Cpu));
                var r = Seconds(reuse);
                bestReuse = (Math.Min(bestReuse.Wall, r.Wall), Math.Min(bestReuse.Cpu, r.Cpu));
            }
            int replies = prompts.Count * arms.Length;
            log.WriteLine($"POPE image of {questionsPerImage} questions x 2 arms, prompts of {prompts[0].Length} positions, shared prefix {reuse.PrefixLength}, " +
                $"{Environment.ProcessorCount} threads: prefix reused {bestReuse.Cpu:0.00} CPU s ({bestReuse.Wall:0.00} s wall), " +
                $"from scratch {bestScratch.Cpu:0.00} CPU s ({bestScratch.Wall:0.00} s wall) per image; " +
                $"{replies / bestReuse.Cpu:0.000} vs {replies / bestScratch.Cpu:0.000} replies per CPU second");
            context.Ratio("pope_prefix_reuse", bestScratch.Cpu / bestReuse.Cpu);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
