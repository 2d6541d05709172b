using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Model;

/// <summary>Each kind of bad model input fails with one UserError naming the file or field, and exit code 2 from the CLI.</summary>
public class BadInputTests
{
    private static string Folder(TempDir tmp) => TinyModels.Write(tmp, TinyModels.Qwen2);

    private static void EditConfig(string folder, Action<JsonObject> edit)
    {
        string path = Path.Combine(folder, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
    }

    private static string LoadFails(string path)
    {
        var error = Assert.Throws<UserError>(() => Transformer.Load(path).Dispose());
        var cli = CliRunner.Run("inspect", path);
        Assert.Equal(UserError.ExitCode, cli.ExitCode);
        Assert.Contains(error.Message, cli.Stderr);
        return error.Message;
    }

    [Fact]
    public void MissingModel_NamesThePath()
    {
        using var tmp = new TempDir();
        Assert.Contains("no such model", LoadFails(tmp.File("nope")));
    }

    [Fact]
    public void FolderWithoutWeights_SaysWhatIsMissing()
    {
        using var tmp = new TempDir();
        string folder = Folder(tmp);
        File.Delete(Path.Combine(folder, HfCheckpoint.SingleFile));
        Assert.Contains("no model.safetensors or model.safetensors.index.json", LoadFails(folder));
        File.Delete(Path.Combine(folder, "config.json"));
        Assert.Contains("config.json", LoadFails(folder));
    }

    [Fact]
    public void TruncatedSafetensors_NamesFileAndTensor()
    {
        using var tmp = new TempDir();
        string folder = Folder(tmp), file = Path.Combine(folder, HfCheckpoint.SingleFile);
        byte[] bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(file, bytes[..(bytes.Length - 100)]);
        string message = LoadFails(folder);
        Assert.Contains(file, message);
        Assert.Contains("truncated", message);
    }

    [Fact]
    public void UnknownArchitecture_ListsSupportedOnes()
    {
        using var tmp = new TempDir();
        string folder = Folder(tmp);
        EditConfig(folder, j => j["architectures"] = new JsonArray("GPTNeoXForCausalLM"));
        string message = LoadFails(folder);
        Assert.Contains("'architectures'", message);
        Assert.Contains("GPTNeoXForCausalLM", message);
        Assert.Contains("Qwen2ForCausalLM", message);
    }

    [Fact]
    public void ShapeMismatchAgainstConfig_NamesTensorAndBothShapes()
    {
        using var tmp = new TempDir();
        string folder = Folder(tmp);
        EditConfig(folder, j => j["intermediate_size"] = 50);
        string message = LoadFails(folder);
        Assert.Contains("'model.layers.0.mlp.gate_proj.weight'", message);
        Assert.Contains("[48, 32]", message);
        Assert.Contains("[50, 32]", message);
    }

    [Fact]
    public void MissingTensor_IsNamed()
    {
        using var tmp = new TempDir();
        string folder = Folder(tmp);
        EditConfig(folder, j => j["tie_word_embeddings"] = false);
        Assert.Contains("'lm_head.weight' is missing", LoadFails(folder));
    }

    [Fact]
    public void IntegerWeightMatrix_IsRejectedWithItsDtype()
    {
        using var tmp = new TempDir();
        string folder = tmp.File("int");
        Directory.CreateDirectory(folder);
        var c = TinyModels.Qwen2;
        File.WriteAllText(Path.Combine(folder, "config.json"), c.ToHfConfigJson());
        SafetensorsWriter.Write(Path.Combine(folder, HfCheckpoint.SingleFile),
            [SafetensorToWrite.FromBytes("model.embed_tokens.weight", TensorDType.I32, [c.Vocab, c.DModel], new byte[c.Vocab * c.DModel * 4])]);
        string message = LoadFails(folder);
        Assert.Contains("'model.embed_tokens.weight' is I32", message);
    }

    [Fact]
    public void UnknownSafetensorsDtype_IsRejected()
    {
        using var tmp = new TempDir();
        string folder = Folder(tmp), file = Path.Combine(folder, HfCheckpoint.SingleFile);
        byte[] bytes = File.ReadAllBytes(file);
        // Same length, so the header stays valid JSON with one dtype the format does not know.
        int at = System.Text.Encoding.ASCII.GetString(bytes, 8, 2000).IndexOf("\"F32\"", StringComparison.Ordinal) + 8;
        "\"F99\""u8.CopyTo(bytes.AsSpan(at));
        File.WriteAllBytes(file, bytes);
        Assert.Contains("unsupported tensor dtype 'F99'", LoadFails(folder));
    }

    [Fact]
    public void ConfigTraps_AreCheckedAndNamed()
    {
        using var tmp = new TempDir();
        string folder = Folder(tmp);
        EditConfig(folder, j => j["num_key_value_heads"] = 3);
        Assert.Contains("multiple of num_key_value_heads (3)", LoadFails(folder));
        EditConfig(folder, j => { j["num_key_value_heads"] = 2; j["rope_scaling"] = new JsonObject { ["rope_type"] = "yarn", ["factor"] = 4 }; });
        Assert.Contains("'rope_scaling' has type 'yarn'", LoadFails(folder));
        EditConfig(folder, j => { j.Remove("rope_scaling"); j.Remove("hidden_size"); });
        Assert.Contains("missing field 'hidden_size'", LoadFails(folder));
    }

    [SkippableFact]
    public void TruncatedLlama2cCheckpoint_SaysExpectedSize()
    {
        string bin = SharedData.Path("models", "stories260K", "stories260K.bin");
        using var tmp = new TempDir();
        string copy = tmp.File("stories260K.bin");
        File.WriteAllBytes(copy, File.ReadAllBytes(bin)[..500_000]);
        string message = LoadFails(copy);
        Assert.Contains("implies 1056540 bytes, but the file has 500000 (truncated)", message);
    }

    [SkippableTheory]
    [InlineData(5, int.MinValue, "vocab -2147483648")]
    [InlineData(2, int.MaxValue, "layers 2147483647")]
    [InlineData(0, 1 << 30, "more than 2^63 bytes")]
    [InlineData(6, 1 << 30, "seq_len 1073741824")]
    public void Llama2cHeaderExtremes_AreUserErrors(int field, int value, string expected)
    {
        // Header int32 fields: dim, hidden, layers, heads, kv_heads, vocab, seq_len.
        byte[] bytes = File.ReadAllBytes(SharedData.Path("models", "stories260K", "stories260K.bin"));
        BitConverter.TryWriteBytes(bytes.AsSpan(field * 4, 4), value);
        using var tmp = new TempDir();
        string copy = tmp.File("stories260K.bin");
        File.WriteAllBytes(copy, bytes);
        Assert.Contains(expected, LoadFails(copy));
    }

    [Fact]
    public void TokenIdsOutOfRange_AreUserErrors()
    {
        using var tmp = new TempDir();
        string folder = Folder(tmp);
        using var model = Transformer.Load(folder);
        Assert.Contains("token id 64", Assert.Throws<UserError>(() => model.Forward(model.NewState(), [1, 64])).Message);
        Assert.Throws<UserError>(() => model.Forward(model.NewState(), [-1]));
        var cli = CliRunner.Run("generate", folder, "--token-ids", "1,99", "--max-new-tokens", "2");
        Assert.Equal(UserError.ExitCode, cli.ExitCode);
        Assert.Contains("outside the vocabulary [0, 64)", cli.Stderr);
    }

    [Fact]
    public void PromptLongerThanContext_FailsAndWritesNothing()
    {
        using var tmp = new TempDir();
        string folder = Folder(tmp);
        using var model = Transformer.Load(folder);
        int[] tooLong = Enumerable.Range(0, 65).Select(i => i % 60).ToArray();
        Assert.Contains("context is 64", Assert.Throws<UserError>(() => Generator.Generate(model, tooLong, new GenerationOptions())).Message);
        Assert.Contains("exceed the model's context of 64", Assert.Throws<UserError>(() => model.Forward(model.NewState(), tooLong)).Message);
        string output = tmp.File("trace.safetensors");
        var cli = CliRunner.Run("trace", folder, "--token-ids", string.Join(',', tooLong), "--hooks", "logits", "--out", output);
        Assert.Equal(UserError.ExitCode, cli.ExitCode);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void PromptTextWithoutTokenizer_AsksForOne()
    {
        using var tmp = new TempDir();
        var cli = CliRunner.Run("generate", Folder(tmp), "--prompt", "hello");
        Assert.Equal(UserError.ExitCode, cli.ExitCode);
        Assert.Contains("no tokenizer", cli.Stderr);
    }

    /// <summary>The tiny model split into two shards plus an index, written by hand from the sharding convention.</summary>
    private static string Sharded(TempDir tmp, out string index)
    {
        string folder = Folder(tmp), single = Path.Combine(folder, HfCheckpoint.SingleFile);
        using (var f = SafetensorsFile.Open(single))
        {
            var names = f.Tensors.Keys.Order(StringComparer.Ordinal).ToList();
            for (int shard = 0; shard < 2; shard++)
                SafetensorsWriter.Write(Path.Combine(folder, $"s{shard}.safetensors"), names.Where((_, i) => i % 2 == shard).Select(n =>
                    SafetensorToWrite.FromBytes(n, f.Get(n).DType, f.Get(n).Shape, f.Bytes(f.Get(n)).ToArray())).ToList());
            index = Path.Combine(folder, HfCheckpoint.IndexFile);
            File.WriteAllText(index, new JsonObject { ["weight_map"] = new JsonObject(names.Select((n, i) => KeyValuePair.Create(n, (JsonNode?)$"s{i % 2}.safetensors"))) }.ToJsonString());
        }
        File.Delete(single);
        return folder;
    }

    [Theory]
    [InlineData("""{"weight_map":null}""", "'weight_map' is missing")]
    [InlineData("""{}""", "'weight_map' is missing")]
    [InlineData("""[]""", "must be a JSON object")]
    [InlineData("""{"weight_map":[1]}""", "'weight_map' must be a JSON object")]
    [InlineData("""{"weight_map":{"a":5}}""", "entry 'a' must be a string")]
    [InlineData("""{"weight_map":""", "not valid JSON")]
    public void BadShardIndex_IsOneErrorNamingTheField(string json, string expected)
    {
        using var tmp = new TempDir();
        string folder = Sharded(tmp, out string index);
        Transformer.Load(folder).Dispose();
        File.WriteAllText(index, json);
        string message = LoadFails(folder);
        Assert.Contains(index, message);
        Assert.Contains(expected, message);
    }

    [Fact]
    public void SameTensorInTwoShards_IsRejected()
    {
        using var tmp = new TempDir();
        string folder = Sharded(tmp, out _), s0 = Path.Combine(folder, "s0.safetensors"), s1 = Path.Combine(folder, "s1.safetensors");
        using (var f = SafetensorsFile.Open(s0))
        {
            var t = f.Tensors.Values.First();
            var extra = f.Tensors.Values.Select(x => SafetensorToWrite.FromBytes(x.Name, x.DType, x.Shape, f.Bytes(x).ToArray())).ToList();
            using var g = SafetensorsFile.Open(s1);
            extra.AddRange(g.Tensors.Values.Select(x => SafetensorToWrite.FromBytes(x.Name, x.DType, x.Shape, g.Bytes(x).ToArray())));
            SafetensorsWriter.Write(tmp.File("both.safetensors"), extra);
        }
        File.Move(tmp.File("both.safetensors"), s1, overwrite: true);
        string message = LoadFails(folder);
        Assert.Contains("in both", message);
        Assert.Contains(s0, message);
        Assert.Contains(s1, message);
    }

    [Theory]
    [InlineData("num_hidden_layers", "\"2\"", "'num_hidden_layers' must be an integer")]
    [InlineData("num_hidden_layers", "2.5", "'num_hidden_layers' must be an integer")]
    [InlineData("num_hidden_layers", "2.0e40", "'num_hidden_layers' must be an integer")]
    [InlineData("tie_word_embeddings", "\"false\"", "'tie_word_embeddings' must be true or false")]
    [InlineData("attention_bias", "1", "'attention_bias' must be true or false")]
    [InlineData("rms_norm_eps", "\"1e-6\"", "'rms_norm_eps' must be a finite number")]
    [InlineData("rms_norm_eps", "-1", "rms_norm_eps must be a positive finite number (got -1)")]
    [InlineData("rms_norm_eps", "0", "rms_norm_eps must be a positive finite number (got 0)")]
    [InlineData("rms_norm_eps", "1e300", "rms_norm_eps must be a positive finite number (got")]
    [InlineData("rope_theta", "0", "rope_theta must be a positive finite number (got 0)")]
    [InlineData("rope_theta", "[10000]", "'rope_theta' must be a finite number")]
    [InlineData("rope_scaling", "{\"type\":\"linear\"}", "'rope_scaling' has type 'linear' but no 'factor'")]
    [InlineData("rope_scaling", "{\"type\":\"linear\",\"factor\":-2}", "rope_scaling factor must be a positive finite number")]
    [InlineData("rope_scaling", "{\"type\":5}", "'rope_scaling' type must be a string")]
    [InlineData("rope_scaling", "\"linear\"", "'rope_scaling' must be a JSON object")]
    [InlineData("bos_token_id", "1.5", "'bos_token_id' must be an integer")]
    [InlineData("eos_token_id", "[1, \"2\"]", "'eos_token_id' must be an integer")]
    [InlineData("eos_token_id", "1e10", "'eos_token_id' must be an integer")]
    [InlineData("architectures", "[5]", "'architectures' must be a string")]
    [InlineData("head_dim", "1073741824", "num_attention_heads x head_dim (4 x 1073741824) exceeds 2^31-1")]
    public void WrongTypedOrOutOfRangeConfigField_IsNamedNotDefaulted(string field, string value, string expected)
    {
        using var tmp = new TempDir();
        string folder = Folder(tmp);
        EditConfig(folder, j => j[field] = JsonNode.Parse(value));
        string message = LoadFails(folder);
        Assert.Contains(Path.Combine(folder, "config.json"), message);
        Assert.Contains(expected, message);
    }

    [Theory]
    [InlineData(int.MaxValue, "num_hidden_layers = 2147483647, but the weights hold 2 layers")]
    [InlineData(1, "num_hidden_layers = 1, but the weights hold 2 layers")]
    public void LayerCountDisagreeingWithWeights_NamesBothNumbers(int layers, string expected)
    {
        using var tmp = new TempDir();
        string folder = Folder(tmp);
        EditConfig(folder, j => j["num_hidden_layers"] = layers);
        Assert.Contains(expected, LoadFails(folder));
    }
}
