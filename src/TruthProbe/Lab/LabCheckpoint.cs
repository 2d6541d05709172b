using System.Text.Json.Nodes;
using System.Text.Json;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Training;

namespace TruthProbe.Lab;

/// <summary>
/// A lab model as a Hugging Face folder: config.json (LlamaForCausalLM), model.safetensors (F32, HF tensor
/// names), tokenizer.json + tokenizer_config.json, and lab.json (how it was grown: recipe, seed, data hash,
/// steps, accuracy, code version). LoRA adapters are merged before saving, so every reader sees plain weights.
/// </summary>
public static class LabCheckpoint
{
    public const string MetadataFile = "lab.json";
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    internal static void Save(string directory, TrainableLlama model, WordTokenizer tokenizer, JsonObject labMetadata)
    {
        Directory.CreateDirectory(directory);
        var plain = model.MergeLora();
        var tensors = plain.Parameters.Tensors
            .Select(t => SafetensorToWrite.FromSingles(t.Name, t.Shape.Select(d => (long)d).ToArray(), plain.Parameters.Values.AsSpan(t.Offset, t.Length).ToArray()))
            .ToList();
        SafetensorsWriter.Write(Path.Combine(directory, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        AtomicFile.WriteAllText(Path.Combine(directory, "config.json"), model.Config.ToHfConfigJson());
        tokenizer.Save(directory);
        // Written last: a folder with lab.json is complete.
        AtomicFile.WriteAllText(Path.Combine(directory, MetadataFile), labMetadata.ToJsonString(Indented));
    }

    internal static (TrainableLlama Model, WordTokenizer Tokenizer, JsonObject Metadata) Load(string directory)
    {
        if (!Directory.Exists(directory)) throw new UserError($"{directory}: no such folder (expected a model written by 'truthprobe lab pretrain')");
        string configPath = Path.Combine(directory, "config.json"), weightsPath = Path.Combine(directory, "model.safetensors"), labPath = Path.Combine(directory, MetadataFile);
        foreach (var required in new[] { configPath, weightsPath, labPath })
            if (!File.Exists(required)) throw new UserError($"{required}: missing (a lab model folder has config.json, model.safetensors, tokenizer.json and lab.json)");
        var config = ModelConfig.FromHfConfig(configPath);
        var metadata = ParseJson(labPath) as JsonObject ?? throw new UserError($"{labPath}: expected a JSON object");
        var parameters = new ParameterSet();
        var model = new TrainableLlama(config); // lays out the expected tensors
        using var file = SafetensorsFile.Open(weightsPath);
        foreach (var t in model.Parameters.Tensors)
        {
            var info = file.Get(t.Name);
            if (!info.Shape.Select(d => (int)d).SequenceEqual(t.Shape))
                throw new UserError($"{weightsPath}: tensor '{t.Name}' has shape [{string.Join(", ", info.Shape)}], config.json implies [{string.Join(", ", t.Shape)}]");
            int i = parameters.Add(t.Name, t.Shape);
            file.ReadSingles(info).CopyTo(parameters.Value(i));
        }
        return (new TrainableLlama(config, parameters), WordTokenizer.Load(directory), metadata);
    }

    private static JsonNode ParseJson(string path)
    {
        try { return JsonNode.Parse(File.ReadAllText(path)) ?? throw new UserError($"{path}: empty JSON"); }
        catch (JsonException e) { throw new UserError($"{path}: not valid JSON ({e.Message})"); }
    }
}
