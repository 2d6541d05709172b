using System.Text.Json.Nodes;
using TruthProbe.Common;

namespace TruthProbe.Lab;

/// <summary>Shape of a lab-grown Llama-style decoder; written as (and read from) a Hugging Face config.json.</summary>
public sealed record LabModelConfig(
    int Vocab, int Dim, int Layers, int Heads, int KvHeads, int HeadDim, int Hidden, int MaxPositions,
    double RopeTheta = 10000, float RmsEps = 1e-5f, bool TieEmbeddings = true, int BosId = 1, int EosId = 2)
{
    /// <summary>The named sizes of <c>lab pretrain --size</c>. Head size 16 (DESIGN.md §9: 8 did not learn retrieval).</summary>
    public static LabModelConfig ForSize(string size, int vocab, int maxPositions, int bosId, int eosId) => size switch
    {
        "tiny" => new(vocab, Dim: 64, Layers: 4, Heads: 4, KvHeads: 2, HeadDim: 16, Hidden: 192, maxPositions, BosId: bosId, EosId: eosId),
        "small" => new(vocab, Dim: 128, Layers: 4, Heads: 8, KvHeads: 4, HeadDim: 16, Hidden: 384, maxPositions, BosId: bosId, EosId: eosId),
        _ => throw new UserError($"lab model size must be tiny or small, got '{size}'") { Field = "size" },
    };

    public int QWidth => Heads * HeadDim;
    public int KvWidth => KvHeads * HeadDim;

    public long ParameterCount =>
        (long)Vocab * Dim * (TieEmbeddings ? 1 : 2) + Dim
        + (long)Layers * (2L * Dim + (long)Dim * QWidth * 2 + 2L * Dim * KvWidth + 3L * Dim * Hidden);

    public void Validate(string source)
    {
        if (Vocab < 2 || Dim < 1 || Layers < 1 || Heads < 1 || KvHeads < 1 || HeadDim < 2 || Hidden < 1 || MaxPositions < 1)
            throw new UserError($"{source}: every size in the config must be positive");
        if (Heads % KvHeads != 0) throw new UserError($"{source}: num_attention_heads ({Heads}) must be a multiple of num_key_value_heads ({KvHeads})");
        if (HeadDim % 2 != 0) throw new UserError($"{source}: head_dim ({HeadDim}) must be even for RoPE");
    }

    public JsonObject ToHuggingFace() => new()
    {
        ["architectures"] = new JsonArray("LlamaForCausalLM"),
        ["model_type"] = "llama",
        ["vocab_size"] = Vocab,
        ["hidden_size"] = Dim,
        ["intermediate_size"] = Hidden,
        ["num_hidden_layers"] = Layers,
        ["num_attention_heads"] = Heads,
        ["num_key_value_heads"] = KvHeads,
        ["head_dim"] = HeadDim,
        ["hidden_act"] = "silu",
        ["max_position_embeddings"] = MaxPositions,
        ["rope_theta"] = RopeTheta,
        ["rms_norm_eps"] = RmsEps,
        ["tie_word_embeddings"] = TieEmbeddings,
        ["attention_bias"] = false,
        ["mlp_bias"] = false,
        ["bos_token_id"] = BosId,
        ["eos_token_id"] = EosId,
        ["torch_dtype"] = "float32",
    };

    public static LabModelConfig FromHuggingFace(JsonNode json, string source)
    {
        int Int(string name, int? fallback = null)
        {
            var node = json[name];
            if (node == null) return fallback ?? throw new UserError($"{source}: missing field '{name}'");
            try { return node.GetValue<int>(); }
            catch (Exception e) when (e is FormatException or InvalidOperationException) { throw new UserError($"{source}: field '{name}' must be an integer"); }
        }
        int heads = Int("num_attention_heads"), dim = Int("hidden_size");
        var config = new LabModelConfig(
            Int("vocab_size"), dim, Int("num_hidden_layers"), heads, Int("num_key_value_heads", heads), Int("head_dim", dim / heads),
            Int("intermediate_size"), Int("max_position_embeddings"),
            json["rope_theta"]?.GetValue<double>() ?? 10000, (float)(json["rms_norm_eps"]?.GetValue<double>() ?? 1e-6),
            json["tie_word_embeddings"]?.GetValue<bool>() ?? false, Int("bos_token_id", 1), Int("eos_token_id", 2));
        config.Validate(source);
        return config;
    }
}
