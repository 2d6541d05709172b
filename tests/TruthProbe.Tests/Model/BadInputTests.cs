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
}
