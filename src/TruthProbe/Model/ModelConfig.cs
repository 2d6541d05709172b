using System.Text.Json;
using TruthProbe.Common;

namespace TruthProbe.Model;

/// <summary>
/// The shape and constants of a decoder-only transformer (Llama family: llama, mistral, qwen2), whatever
/// file it came from. Weights are always held in the Hugging Face layout (see <see cref="ModelWeights"/>).
/// </summary>
public sealed record ModelConfig
{
    /// <summary>"llama", "mistral" or "qwen2".</summary>
    public required string Architecture { get; init; }
    public required int Layers { get; init; }
    public required int DModel { get; init; }
    public required int Heads { get; init; }
    public required int KvHeads { get; init; }
    public required int HeadDim { get; init; }
    /// <summary>Hidden size of the SwiGLU MLP.</summary>
    public required int Ffn { get; init; }
    public required int Vocab { get; init; }
    /// <summary>Longest sequence (prompt + generated) the model accepts.</summary>
    public required int MaxContext { get; init; }
    public float RopeTheta { get; init; } = 10000f;
    /// <summary>Linear RoPE scaling ("rope_scaling": {"type": "linear"}): positions are divided by this.</summary>
    public float RopeLinearFactor { get; init; } = 1f;
    public float RmsEps { get; init; } = 1e-5f;
    public bool TiedEmbeddings { get; init; }
    /// <summary>q_proj, k_proj and v_proj carry biases (qwen2; llama with attention_bias).</summary>
    public bool QkvBias { get; init; }
    /// <summary>o_proj carries a bias (llama/mistral with attention_bias).</summary>
    public bool OProjBias { get; init; }
    /// <summary>A query sees only the last <c>SlidingWindow</c> keys, itself included (Mistral); null = all.</summary>
    public int? SlidingWindow { get; init; }
    public int? BosId { get; init; }
    public IReadOnlyList<int> EosIds { get; init; } = [];

    public int QDim => Heads * HeadDim;
    public int KvDim => KvHeads * HeadDim;

    /// <summary>Parameters the weights hold (a tied classifier counted once).</summary>
    public long ParameterCount()
    {
        long perLayer = 2L * DModel                                    // two RMSNorm weights
            + (long)QDim * DModel + 2L * KvDim * DModel + (long)DModel * QDim
            + (QkvBias ? QDim + 2L * KvDim : 0) + (OProjBias ? DModel : 0)
            + 3L * Ffn * DModel;
        return (long)Vocab * DModel * (TiedEmbeddings ? 1 : 2) + Layers * perLayer + DModel;
    }

    /// <summary>Checks the numbers fit together; <paramref name="source"/> names the file in the message.</summary>
    public void Validate(string source)
    {
        void Require(bool ok, string what) { if (!ok) throw new UserError($"{source}: {what}"); }
        Require(Layers > 0 && DModel > 0 && Heads > 0 && KvHeads > 0 && HeadDim > 0 && Ffn > 0 && Vocab > 0 && MaxContext > 0,
            $"layers, hidden size, heads, kv heads, head_dim, intermediate size, vocab and context must all be positive (got {Layers}, {DModel}, {Heads}, {KvHeads}, {HeadDim}, {Ffn}, {Vocab}, {MaxContext})");
        // Checked in long: heads x head_dim is a tensor dimension, and an int overflow would report a nonsense shape.
        Require((long)Heads * HeadDim <= int.MaxValue, $"num_attention_heads x head_dim ({Heads} x {HeadDim}) exceeds 2^31-1");
        Require(Heads % KvHeads == 0, $"num_attention_heads ({Heads}) must be a multiple of num_key_value_heads ({KvHeads})");
        Require(HeadDim % 2 == 0, $"head_dim ({HeadDim}) must be even for RoPE");
        Require(SlidingWindow is null or > 0, $"sliding_window must be positive (got {SlidingWindow})");
        Require(BosId is null || (BosId >= 0 && BosId < Vocab), $"bos_token_id {BosId} is outside the vocabulary [0, {Vocab})");
        foreach (int e in EosIds) Require(e >= 0 && e < Vocab, $"eos_token_id {e} is outside the vocabulary [0, {Vocab})");
        // A zero or negative epsilon or theta gives NaN activations or no rotation with no other symptom.
        Require(float.IsFinite(RmsEps) && RmsEps > 0, $"rms_norm_eps must be a positive finite number (got {RmsEps}); Llama models use 1e-5 or 1e-6");
        Require(float.IsFinite(RopeTheta) && RopeTheta > 0, $"rope_theta must be a positive finite number (got {RopeTheta}); Llama models use 10000 or 500000");
        Require(float.IsFinite(RopeLinearFactor) && RopeLinearFactor > 0, $"rope_scaling factor must be a positive finite number (got {RopeLinearFactor})");
    }

    public static readonly IReadOnlyDictionary<string, string> SupportedArchitectures = new Dictionary<string, string>
    {
        ["LlamaForCausalLM"] = "llama",
        ["MistralForCausalLM"] = "mistral",
        ["Qwen2ForCausalLM"] = "qwen2",
    };

    /// <summary>Reads a Hugging Face <c>config.json</c>, with the traps of docs/design.md §7 handled.</summary>
    public static ModelConfig FromHfConfig(string path)
    {
        if (!File.Exists(path)) throw new UserError($"{path}: file not found (a Hugging Face model folder needs config.json)");
        JsonDocument doc;
        // Bytes, not text: File.ReadAllText would turn invalid UTF-8 into U+FFFD without a word.
        byte[] bytes = File.ReadAllBytes(path);
        int bom = bytes.AsSpan().StartsWith(System.Text.Encoding.UTF8.Preamble) ? System.Text.Encoding.UTF8.Preamble.Length : 0;
        try { doc = JsonDocument.Parse(bytes.AsMemory(bom)); }
        catch (JsonException e) { throw new UserError($"{path}: not valid JSON ({e.Message})"); }
        using (JsonText.WithValidStrings(doc, path)) return FromHfJson(doc.RootElement, path);
    }

    /// <summary>
    /// The same from a parsed object (a whole <c>config.json</c>, or a multimodal model's completed <c>text_config</c>);
    /// <paramref name="path"/> names it in messages.
    /// </summary>
    public static ModelConfig FromHfJson(JsonElement root, string path)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new UserError($"{path}: expected a JSON object");
        string[] archs = JsonFields.TryGet(root, "architectures", out var a)
            ? JsonFields.Array(a, $"{path}: field 'architectures'").EnumerateArray().Select(x => JsonFields.String(x, $"{path}: field 'architectures'")).ToArray() : [];
        string? known = archs.Select(x => SupportedArchitectures.GetValueOrDefault(x)).FirstOrDefault(x => x != null);
        // Read by transformers' AutoConfig, not by us (architectures decides), but a non-string is a broken file.
        if (JsonFields.TryGet(root, "model_type", out var modelType)) JsonFields.String(modelType, $"{path}: field 'model_type'");
        // The decoder's MLP is SwiGLU; a config naming another activation would run silently wrong.
        if (JsonFields.TryGet(root, "hidden_act", out var act) && JsonFields.String(act, $"{path}: field 'hidden_act'") is not ("silu" or "swish"))
            throw new UserError($"{path}: field 'hidden_act' is '{act.GetString()}'; supported: silu (Llama, Mistral and Qwen2 use it)");
        if (known == null)
            throw new UserError($"{path}: field 'architectures' is [{string.Join(", ", archs)}]; supported: {string.Join(", ", SupportedArchitectures.Keys)}");

        // Absent or null fields take the Hugging Face default; present ones must have the right type.
        int Int(string field, int? fallback = null) =>
            JsonFields.TryGet(root, field, out var v) ? JsonFields.Int32(v, $"{path}: field '{field}'")
                : fallback ?? throw new UserError($"{path}: missing field '{field}'");
        float Float(JsonElement obj, string field, float fallback) =>
            JsonFields.TryGet(obj, field, out var v) ? (float)JsonFields.Number(v, $"{path}: field '{field}'") : fallback;
        bool Bool(string field, bool fallback) =>
            JsonFields.TryGet(root, field, out var v) ? JsonFields.Bool(v, $"{path}: field '{field}'") : fallback;

        int d = Int("hidden_size"), heads = Int("num_attention_heads");
        int kvHeads = Int("num_key_value_heads", heads);
        int headDim = Int("head_dim", heads > 0 ? d / heads : 0);
        bool attentionBias = Bool("attention_bias", false);
        if (Bool("mlp_bias", false)) throw new UserError($"{path}: field 'mlp_bias' is true; MLP biases are not supported");

        int? window = null;
        if (known == "mistral" && JsonFields.TryGet(root, "sliding_window", out _))
            window = Int("sliding_window");
        if (known == "qwen2" && Bool("use_sliding_window", false))
            throw new UserError($"{path}: field 'use_sliding_window' is true; Qwen2 sliding-window layers are not supported");

        float theta = Float(root, "rope_theta", 10000f);
        float linear = 1f;
        foreach (string field in new[] { "rope_scaling", "rope_parameters" })
        {
            if (!JsonFields.TryGet(root, field, out var rs)) continue;
            JsonFields.Object(rs, $"{path}: field '{field}'");
            string type = JsonFields.TryGet(rs, "rope_type", out var t) || JsonFields.TryGet(rs, "type", out t)
                ? JsonFields.String(t, $"{path}: field '{field}' type") : "default";
            theta = Float(rs, "rope_theta", theta);
            if (type == "linear")
                linear = JsonFields.TryGet(rs, "factor", out var factor) ? (float)JsonFields.Number(factor, $"{path}: field '{field}' factor")
                    : throw new UserError($"{path}: field '{field}' has type 'linear' but no 'factor' (positions are divided by it)");
            else if (type != "default")
                throw new UserError($"{path}: field '{field}' has type '{type}'; supported: default, linear");
        }

        var config = new ModelConfig
        {
            Architecture = known,
            Layers = Int("num_hidden_layers"),
            DModel = d,
            Heads = heads,
            KvHeads = kvHeads,
            HeadDim = headDim,
            Ffn = Int("intermediate_size"),
            Vocab = Int("vocab_size"),
            MaxContext = Int("max_position_embeddings"),
            RopeTheta = theta,
            RopeLinearFactor = linear,
            RmsEps = Float(root, "rms_norm_eps", 1e-6f),
            TiedEmbeddings = Bool("tie_word_embeddings", false),
            QkvBias = known == "qwen2" || attentionBias,
            OProjBias = known != "qwen2" && attentionBias,
            SlidingWindow = window,
            BosId = JsonFields.TryGet(root, "bos_token_id", out _) ? Int("bos_token_id") : null,
            EosIds = IdList(root, "eos_token_id", path),
        };
        config.Validate(path);
        return config;
    }

    private static int[] IdList(JsonElement root, string field, string path)
    {
        if (!JsonFields.TryGet(root, field, out var v)) return [];
        string where = $"{path}: field '{field}'";
        return v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray().Select(x => JsonFields.Int32(x, where)).ToArray()
            : [JsonFields.Int32(v, where)];
    }

    /// <summary>The <c>config.json</c> a Hugging Face loader expects for this model.</summary>
    public string ToHfConfigJson()
    {
        string archName = SupportedArchitectures.First(kv => kv.Value == Architecture).Key;
        var fields = new Dictionary<string, object?>
        {
            ["architectures"] = new[] { archName },
            ["model_type"] = Architecture,
            ["hidden_size"] = DModel,
            ["intermediate_size"] = Ffn,
            ["num_hidden_layers"] = Layers,
            ["num_attention_heads"] = Heads,
            ["num_key_value_heads"] = KvHeads,
            ["head_dim"] = HeadDim,
            ["vocab_size"] = Vocab,
            ["max_position_embeddings"] = MaxContext,
            ["rope_theta"] = RopeTheta,
            ["rms_norm_eps"] = RmsEps,
            ["tie_word_embeddings"] = TiedEmbeddings,
            ["hidden_act"] = "silu",
            ["torch_dtype"] = "float32",
        };
        if (Architecture != "qwen2") fields["attention_bias"] = OProjBias;
        if (Architecture == "mistral") fields["sliding_window"] = SlidingWindow;
        if (RopeLinearFactor != 1f) fields["rope_scaling"] = new Dictionary<string, object> { ["type"] = "linear", ["factor"] = RopeLinearFactor };
        if (BosId != null) fields["bos_token_id"] = BosId;
        if (EosIds.Count == 1) fields["eos_token_id"] = EosIds[0];
        else if (EosIds.Count > 1) fields["eos_token_id"] = EosIds;
        return JsonSerializer.Serialize(fields, new JsonSerializerOptions { WriteIndented = true });
    }
}
