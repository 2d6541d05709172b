using System.Text.Json;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Training;
using TruthProbe.Vision;

namespace TruthProbe.Lab;

/// <summary>
/// A lab LLaVA as the llava-hf hub folders are laid out: config.json (<c>LlavaForConditionalGeneration</c> with its
/// CLIP vision and Llama text configs), preprocessor_config.json (CLIPImageProcessor at the scene size, CLIP's mean and
/// std), tokenizer.json with <c>&lt;image&gt;</c> as an added special token, model.safetensors (F32; the tower's,
/// <c>post_layernorm</c> included, under <c>vision_tower.vision_model.</c>, the projector under
/// <c>multi_modal_projector.</c>, the LM under <c>language_model.</c>) and lab.json (how it was grown).
/// </summary>
public static class LabVlmFolder
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>CLIPImageProcessor settings for square scenes of <paramref name="size"/>: shortest edge and centre crop at the size, bicubic, CLIP's mean and std.</summary>
    public static ClipConfig Preprocessor(int size) =>
        new(size, 0, 0, size, size, ResampleFilter.Bicubic, ClipConfig.ClipMean, ClipConfig.ClipStd, 1 / 255.0, true, true, true, true);

    internal static LlavaConfig Config(TrainableLlama lm, TrainableClip clip, VlmText text)
    {
        var s = clip.Shape;
        return new LlavaConfig
        {
            Architecture = "llava",
            Vision = new ClipVisionConfig
            {
                Hidden = s.Hidden, Intermediate = s.Intermediate, Layers = s.Layers, Heads = s.Heads, Channels = s.Channels,
                ImageSize = s.ImageSize, PatchSize = s.PatchSize, HiddenAct = "quick_gelu", LayerNormEps = s.Eps,
            },
            Text = lm.Config,
            ImageTokenId = text.ImageId,
            // The last layer's output: every layer of the small tower works for the features (LLaVA-1.5's -2 would leave one unused).
            FeatureLayer = -1,
            Select = FeatureSelect.Default,
            ProjectorBias = true,
        };
    }

    internal static void Write(string directory, TrainableLlama lm, TrainableClip clip, VlmText text, JsonObject labMetadata)
    {
        Directory.CreateDirectory(directory);
        var config = Config(lm, clip, text);
        var tensors = new List<SafetensorToWrite>();
        var prefix = LlavaLayout.Hub.Text;
        foreach (var t in lm.Parameters.Tensors)
            tensors.Add(Tensor(t.Name.StartsWith(HfPrefix.Decoder.Body, StringComparison.Ordinal) ? prefix.Body + t.Name[HfPrefix.Decoder.Body.Length..] : prefix.Head + t.Name, t, lm.Parameters));
        // The engine's own tables name what a llava-hf tower and projector hold: a name the trainer lacks throws here.
        var names = LlavaCheckpoint.VisionTensors(config).Select(v => LlavaLayout.Hub.Vision + v.Name)
            .Concat([TrainableClip.Tower + "post_layernorm.weight", TrainableClip.Tower + "post_layernorm.bias"])
            .Concat(LlavaCheckpoint.ProjectorTensors(config).Select(p => LlavaLayout.Hub.Projector + p.Name));
        foreach (string name in names) tensors.Add(Tensor(name, clip.Parameters.Tensors[clip.Parameters.IndexOf(name)], clip.Parameters));
        SafetensorsWriter.Write(Path.Combine(directory, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        AtomicFile.WriteAllText(Path.Combine(directory, "config.json"), LlavaCheckpoint.ConfigJson(config));
        AtomicFile.WriteAllText(Path.Combine(directory, LlavaModel.PreprocessorFile), PreprocessorJson(clip.Shape.ImageSize));
        WriteTokenizer(directory, text);
        // Written last: a folder with lab.json is complete.
        AtomicFile.WriteAllText(Path.Combine(directory, LabCheckpoint.MetadataFile), labMetadata.ToJsonString(Indented));
    }

    private static SafetensorToWrite Tensor(string name, ParameterTensor t, ParameterSet parameters) =>
        SafetensorToWrite.FromSingles(name, t.Shape.Select(d => (long)d).ToArray(), parameters.Value(t.Name).ToArray());

    private static string PreprocessorJson(int size)
    {
        var c = Preprocessor(size);
        return new JsonObject
        {
            ["image_processor_type"] = "CLIPImageProcessor",
            ["processor_class"] = "LlavaProcessor",
            ["size"] = new JsonObject { ["shortest_edge"] = size },
            ["crop_size"] = new JsonObject { ["height"] = size, ["width"] = size },
            ["do_resize"] = c.DoResize, ["do_center_crop"] = c.DoCenterCrop, ["do_rescale"] = c.DoRescale, ["do_normalize"] = c.DoNormalize,
            ["do_convert_rgb"] = true,
            ["resample"] = 3,
            ["rescale_factor"] = c.RescaleFactor,
            ["image_mean"] = new JsonArray(c.Mean.Select(m => (JsonNode)m).ToArray()),
            ["image_std"] = new JsonArray(c.Std.Select(m => (JsonNode)m).ToArray()),
        }.ToJsonString(Indented);
    }

    /// <summary>The grown word-level tokenizer, with <c>&lt;image&gt;</c> added as a special token so it is split off before the pre-tokenizer.</summary>
    private static void WriteTokenizer(string directory, VlmText text)
    {
        text.Tokenizer.Save(directory);
        string path = Path.Combine(directory, "tokenizer.json");
        var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        root["added_tokens"]!.AsArray().Add(new JsonObject
        {
            ["id"] = text.ImageId, ["content"] = VlmText.ImageToken, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
            ["normalized"] = false, ["special"] = true,
        });
        AtomicFile.WriteAllText(path, root.ToJsonString(Indented));
    }
}
