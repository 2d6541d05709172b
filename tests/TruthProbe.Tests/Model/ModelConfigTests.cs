using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Model;

/// <summary>config.json files as the real checkpoints ship them (docs/design.md §7 traps).</summary>
public class ModelConfigTests
{
    private static ModelConfig Parse(string json)
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.File("config.json"), json);
        return ModelConfig.FromHfConfig(tmp.File("config.json"));
    }

    [Fact]
    public void Qwen25_05B_Config_HasBiasesTiedEmbeddingsGqaAndNoWindow()
    {
        var c = Parse("""
            {"architectures":["Qwen2ForCausalLM"],"attention_dropout":0.0,"bos_token_id":151643,"eos_token_id":151643,"hidden_act":"silu",
             "hidden_size":896,"initializer_range":0.02,"intermediate_size":4864,"max_position_embeddings":32768,"max_window_layers":24,
             "model_type":"qwen2","num_attention_heads":14,"num_hidden_layers":24,"num_key_value_heads":2,"rms_norm_eps":1e-06,
             "rope_theta":1000000.0,"sliding_window":32768,"tie_word_embeddings":true,"torch_dtype":"bfloat16","use_cache":true,
             "use_sliding_window":false,"vocab_size":151936}
            """);
        Assert.Equal(("qwen2", 24, 896, 14, 2, 64, 4864, 151936), (c.Architecture, c.Layers, c.DModel, c.Heads, c.KvHeads, c.HeadDim, c.Ffn, c.Vocab));
        Assert.True(c.QkvBias);
        Assert.False(c.OProjBias);
        Assert.True(c.TiedEmbeddings);
        Assert.Null(c.SlidingWindow);
        Assert.Equal(1e6f, c.RopeTheta);
        Assert.Equal(1e-6f, c.RmsEps);
        Assert.Equal([151643], c.EosIds);
        // Qwen2.5-0.5B's published size: 494M parameters (tied embeddings counted once).
        Assert.InRange(c.ParameterCount(), 494_000_000, 494_100_000);
    }

    [Fact]
    public void Llama2_7B_Config_KvHeadsDefaultAndNullRopeScaling()
    {
        var c = Parse("""
            {"architectures":["LlamaForCausalLM"],"bos_token_id":1,"eos_token_id":2,"hidden_act":"silu","hidden_size":4096,
             "intermediate_size":11008,"max_position_embeddings":4096,"model_type":"llama","num_attention_heads":32,
             "num_hidden_layers":32,"pretraining_tp":1,"rms_norm_eps":1e-05,"rope_scaling":null,"tie_word_embeddings":false,
             "torch_dtype":"float16","vocab_size":32000}
            """);
        Assert.Equal(32, c.KvHeads);
        Assert.Equal(128, c.HeadDim);
        Assert.False(c.QkvBias || c.OProjBias || c.TiedEmbeddings);
        Assert.Equal(10000f, c.RopeTheta);
        Assert.Equal(1, c.BosId);
        // Llama-2-7B: 6.74B parameters.
        Assert.InRange(c.ParameterCount(), 6_738_000_000, 6_739_000_000);
    }

    [Fact]
    public void Mistral_SlidingWindow_IsKept_AndNullMeansNone()
    {
        const string body = """
            "hidden_size":4096,"intermediate_size":14336,"max_position_embeddings":32768,"num_attention_heads":32,"num_hidden_layers":32,
            "num_key_value_heads":8,"rms_norm_eps":1e-05,"rope_theta":10000.0,"vocab_size":32000
            """;
        var v01 = Parse($$"""{"architectures":["MistralForCausalLM"],"sliding_window":4096,{{body}}}""");
        Assert.Equal(4096, v01.SlidingWindow);
        Assert.Equal(8, v01.KvHeads);
        var v02 = Parse($$"""{"architectures":["MistralForCausalLM"],"sliding_window":null,{{body}}}""");
        Assert.Null(v02.SlidingWindow);
    }

    [Fact]
    public void ExplicitHeadDim_RopeParameters_AndEosList_AreRead()
    {
        var c = Parse("""
            {"architectures":["LlamaForCausalLM"],"hidden_size":48,"intermediate_size":64,"max_position_embeddings":64,
             "num_attention_heads":4,"num_key_value_heads":2,"head_dim":16,"num_hidden_layers":1,"vocab_size":80,
             "rope_parameters":{"rope_type":"linear","factor":2.0,"rope_theta":500000.0},"eos_token_id":[2,7],"attention_bias":true}
            """);
        Assert.Equal(16, c.HeadDim);
        Assert.Equal(64, c.QDim);
        Assert.Equal(500000f, c.RopeTheta);
        Assert.Equal(2f, c.RopeLinearFactor);
        Assert.Equal([2, 7], c.EosIds);
        Assert.True(c.QkvBias && c.OProjBias);
    }

    [Fact]
    public void HfConfigJson_RoundTrips()
    {
        foreach (var config in new[] { TinyModels.Qwen2, TinyModels.LlamaGqa, TinyModels.MistralWindow })
        {
            var back = Parse(config.ToHfConfigJson());
            Assert.Equal(config with { EosIds = [] }, back with { EosIds = [] });
            Assert.Equal(config.EosIds, back.EosIds);
        }
    }
}
