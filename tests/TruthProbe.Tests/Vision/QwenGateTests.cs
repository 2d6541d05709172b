using TruthProbe.Formats;
using TruthProbe.Gating;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Vision;
using static TruthProbe.Tests.Vision.QwenVisionTests;

namespace TruthProbe.Tests.Vision;

/// <summary>
/// Gates on a Qwen2.5-VL / Omni thinker at both sites, over image positions too: <c>generate --image</c> with gates is the
/// library's gated run, and <c>patch</c> folds them into the LM's o_proj only (the vision encoder's bytes and another
/// decoder in the file copied), the output loading back to the gated run's logits.
/// </summary>
public sealed class QwenGateTests
{
    private const int Pad = 70;
    private static readonly int[] Prompt = [1, 7, 71, Pad, 72, 13, 5, 22];

    private static float[,] Gates(QwenVLConfig c)
    {
        var gates = new float[c.Text.Layers, c.Text.Heads];
        for (int l = 0; l < c.Text.Layers; l++)
            for (int h = 0; h < c.Text.Heads; h++) gates[l, h] = 0.1f + 0.6f * ((l * 4 + h) % 3);
        return gates;
    }

    private static string WriteGates(TempDir tmp, float[,] gates)
    {
        string path = tmp.File("gates.npy");
        Npy.WriteFloat64(path, gates.Cast<float>().Select(g => (double)g).ToArray(), gates.GetLength(0), gates.GetLength(1));
        return path;
    }

    /// <summary>Adds an o_proj of another decoder (Omni's talker) to the folder's file: patch must leave it as it is.</summary>
    private static void AddTalker(string folder, QwenVLConfig c)
    {
        string path = Path.Combine(folder, "model.safetensors"), copy = path + ".old";
        File.Move(path, copy);
        using (var file = SafetensorsFile.Open(copy))
        {
            var tensors = file.Tensors.Values.Select(t => SafetensorToWrite.FromBytes(t.Name, t.DType, t.Shape, file.Bytes(t).ToArray())).ToList();
            float[] talker = [.. Enumerable.Range(0, c.Text.DModel * c.Text.DModel).Select(i => (float)Math.Sin(i))];
            tensors.Add(SafetensorToWrite.FromSingles("talker.model.layers.0.self_attn.o_proj.weight", [c.Text.DModel, c.Text.DModel], talker));
            SafetensorsWriter.Write(path, tensors, file.Metadata);
        }
        File.Delete(copy);
    }

    private static double MaxAbsDiff(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();

    [Theory]
    [InlineData("hub", "head")]
    [InlineData("hub", "o-proj-out")]
    [InlineData("thinker", "head")]
    [InlineData("thinker", "o-proj-out")]
    public void Patch_FoldsIntoTheLmOnly_AndLoadsBackAsTheGatedRun(string layoutName, string siteName)
    {
        using var tmp = new TempDir();
        var layout = QwenLayout.All.Single(l => l.Name == layoutName);
        var config = Tiny(omni: layout.SplitQkv);
        string folder = Write(tmp, config, layout), patched = tmp.File("patched");
        if (config.IsOmni) AddTalker(folder, config);
        var gates = Gates(config);
        var site = GateSites.Parse(siteName);
        var r = CliRunner.Run("patch", folder, "--gates", WriteGates(tmp, gates), "--site", siteName, "--out", patched);
        Assert.True(r.ExitCode == 0, r.Stderr);

        // Every tensor but the LM's o_proj (weights; the bias too at o-proj-out, Qwen2 has none) is byte for byte the input's.
        using (var before = SafetensorsFile.Open(Path.Combine(folder, "model.safetensors")))
        using (var after = SafetensorsFile.Open(Path.Combine(patched, "model.safetensors")))
        {
            Assert.Equal(before.Tensors.Keys.Order(), after.Tensors.Keys.Order());
            int changed = 0;
            foreach (var name in before.Tensors.Keys)
            {
                bool lmOProj = name.StartsWith(layout.Text.Body + "layers.", StringComparison.Ordinal) && name.Contains(".self_attn.o_proj.");
                bool same = before.Bytes(before.Get(name)).SequenceEqual(after.Bytes(after.Get(name)));
                Assert.True(lmOProj != same, $"{name}: {(same ? "unchanged" : "changed")}");
                if (lmOProj) changed++;
            }
            Assert.Equal(config.Text.Layers, changed);
            Assert.Contains(before.Tensors.Keys, n => n.StartsWith(layout.Vision, StringComparison.Ordinal));
        }

        using var original = QwenVLModel.Load(folder);
        using var folded = QwenVLModel.Load(patched);
        var image = new QwenImage(StillPixels(112, 84, 5), 1, 6, 8, 2);
        float[] gated = original.Forward(original.NewState(), Prompt, image, interventions: new Interventions(config.Text).Gate(gates, site)).ToArray();
        float[] vanilla = original.Forward(original.NewState(), Prompt, image).ToArray();
        float[] fromPatch = folded.Forward(folded.NewState(), Prompt, image).ToArray();
        Assert.True(MaxAbsDiff(gated, fromPatch) <= 1e-5, $"max |gated - patched| = {MaxAbsDiff(gated, fromPatch):E2}");
        Assert.True(MaxAbsDiff(gated, vanilla) > 1e-2, "the gates should change the logits, or the test proves nothing");
    }

    [Theory]
    [InlineData("head")]
    [InlineData("o-proj-out")]
    public void Generate_WithImageAndGates_IsTheLibrarysGatedRun(string siteName)
    {
        using var tmp = new TempDir();
        var config = Tiny();
        string folder = Write(tmp, config, QwenLayout.Hub);
        File.WriteAllText(Path.Combine(folder, QwenVLModel.PreprocessorFile), """
            {"min_pixels": 3136, "max_pixels": 12544, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
             "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
             "image_processor_type": "Qwen2VLImageProcessor", "resample": 3, "rescale_factor": 0.00392156862745098}
            """);
        string photo = tmp.File("a.png");
        var rng = new XorShiftRandom(9);
        File.WriteAllBytes(photo, TruthProbe.Tests.Imaging.PngBuilder.Png(TruthProbe.Tests.Imaging.PngBuilder.Ihdr(112, 84, 8, 2),
            TruthProbe.Tests.Imaging.PngBuilder.Filter([.. Enumerable.Range(0, 3 * 112 * 84).Select(_ => (byte)(rng.NextUInt64() >> 56))], 3 * 112, 3, 0)));
        var gates = Gates(config);
        var r = CliRunner.Run("generate", folder, "--token-ids", string.Join(",", Prompt), "--image", photo, "--gates", WriteGates(tmp, gates),
            "--site", siteName, "--max-new-tokens", "6", "--ids");
        Assert.True(r.ExitCode == 0, r.Stderr);

        using var model = QwenVLModel.Load(folder);
        var image = model.ImageProcessor().Preprocess(ImageFile.Load(photo));
        var options = new GenerationOptions { MaxNewTokens = 6 };
        var gated = model.Generate(model.NewState(), Prompt, image, options with { Interventions = new Interventions(config.Text).Gate(gates, GateSites.Parse(siteName)) });
        var line = r.Stdout.Split('\n').Single(l => l.StartsWith("new ids:", StringComparison.Ordinal));
        Assert.Equal(gated.NewIds, line["new ids:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse));
        Assert.NotEqual(gated.NewIds, model.Generate(model.NewState(), Prompt, image, options).NewIds);
    }
}
