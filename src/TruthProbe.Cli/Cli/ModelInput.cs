using System.CommandLine;
using TruthProbe.Common;
using TruthProbe.Gating;
using TruthProbe.Model;
using TruthProbe.Vision;

namespace TruthProbe.Cli;

/// <summary>
/// The one way verbs load a model: <c>&lt;model&gt; [--tokenizer FILE]</c>, plus the gating options on the
/// verbs that run a gated model, and <c>--prompt TEXT</c> / <c>--token-ids 1,2,3</c> on those that take a prompt
/// (with <c>--image FILE</c> on those that run LLaVA on an image). A llava-hf folder loads as a <see cref="LlavaModel"/>
/// whose decoder is the verb's model.
/// </summary>
public sealed class ModelInput
{
    public readonly Argument<string> Model = new("model")
    {
        Description = "a Hugging Face folder (config.json + safetensors; a llava-hf folder too), a .gguf, or a llama2.c .bin",
    };
    public readonly Option<string?> Tokenizer = Opt.Text("--tokenizer", "FILE",
        "tokenizer.json, SentencePiece .model/.vocab or llama2.c tokenizer.bin (default: found with the model)");
    public readonly Option<bool> AllowNonFinite = Opt.Flag("--allow-nonfinite",
        "run even if weights, logits or captured activations hold NaN or infinity (by default the first one found is an error naming the tensor)");
    /// <summary>On the verbs that run the model: how its KV cache stores keys and values.</summary>
    public readonly Option<string>? KvCache;
    public readonly GatingOptions.Group? Gating;
    public readonly ImageOptions? Image;
    private readonly Option<string?>? _prompt;
    private readonly Option<int[]?>? _tokenIds;
    // --vision-tower on a verb that reads images its own way (score, attention, the eval verbs) or none (inspect).
    private readonly Option<string?>? _visionTower;

    /// <param name="gating">the verb runs a gated model: it takes the gating options.</param>
    /// <param name="prompt">the verb takes --prompt / --token-ids.</param>
    /// <param name="image">the verb takes --image / --image-aspect.</param>
    /// <param name="optional">the model may be left out (a verb that also scores replies made elsewhere).</param>
    /// <param name="visionTower">the verb takes --vision-tower without --image (implied by <paramref name="image"/>).</param>
    /// <param name="runs">the verb runs the model (not only reads or rewrites its weights): it takes --kv-cache.</param>
    public ModelInput(bool gating, bool prompt = false, string promptDefault = "", bool image = false, bool optional = false, bool visionTower = false, bool runs = true)
    {
        if (runs) KvCache = Opt.Choice("--kv-cache", "f32", "how the KV cache stores keys and values: f32 (exact), or bf16 / f16 (half the memory; " +
            "attention reads them rounded to 16 bits, as llama.cpp's --cache-type-k/v)", KvCacheTypes.Names);
        if (optional) Model.Arity = ArgumentArity.ZeroOrOne;
        if (gating) Gating = new GatingOptions.Group();
        if (image) Image = new ImageOptions();
        _visionTower = Image?.VisionTower ?? (visionTower ? ImageOptions.VisionTowerOption() : null);
        if (prompt)
        {
            _prompt = Opt.Text("--prompt", "TEXT", "text to run the model on" + promptDefault);
            _tokenIds = Opt.Ints("--token-ids", "LIST", "the prompt as token ids instead of text");
        }
    }

    public IEnumerable<Symbol> Symbols =>
        new Symbol?[] { Model, Tokenizer, _prompt, _tokenIds, AllowNonFinite, KvCache, Image == null ? _visionTower : null }.OfType<Symbol>().Concat(Image?.Symbols ?? []).Concat(Gating?.Symbols ?? []);

    /// <summary>
    /// Reads the gating options (failing before the slow load when they are inconsistent), loads the model
    /// and, unless the verb chooses lambda itself, builds its gates.
    /// </summary>
    /// <param name="requireGates">the verb exists to apply gates: running without them is an error.</param>
    public LoadedModel Load(ParseResult args, string verb, bool requireTokenizer = false, bool lambdaFromVerb = false, bool requireGates = false)
    {
        var gating = Gating?.Read(args, verb, lambdaFromVerb) ?? new GatingOptions();
        if (requireGates && !gating.Enabled)
            throw new UserError($"{verb}: give the gates to fold: --scores MAP --mode M --lambda L, or --gates FILE");
        string path = args.GetValue(Model)!;
        string? tokenizer = args.GetValue(Tokenizer);
        string? visionTower = _visionTower == null ? null : args.GetValue(_visionTower);
        var llava = Directory.Exists(path) && LlavaCheckpoint.IsLlavaFolder(path) ? LlavaModel.Load(path, tokenizer, visionTower) : null;
        if (llava == null && visionTower != null) throw new UserError($"{verb}: --vision-tower applies to an original-layout LLaVA checkpoint (LlavaLlamaForCausalLM); {path} is not a LLaVA folder");
        var qwen = llava == null && Directory.Exists(path) && QwenCheckpoint.IsQwenVLFolder(path) ? QwenVLModel.Load(path, tokenizer) : null;
        var model = llava?.Language ?? qwen?.Language ?? Transformer.Load(path, tokenizer);
        model.AllowNonFinite = args.GetValue(AllowNonFinite);
        if (KvCache != null) model.KvCache = KvCacheTypes.Parse(args.GetValue(KvCache)!, "kv_cache");
        try
        {
            if (requireTokenizer && model.Tokenizer == null)
                throw new UserError($"{path}: no tokenizer found with the model; give one with --tokenizer FILE");
            return new LoadedModel(model, gating, lambdaFromVerb ? null : gating.For(model)) { Llava = llava, Qwen = qwen };
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public string? PromptText(ParseResult args) => _prompt == null ? null : args.GetValue(_prompt);

    /// <summary>The prompt's ids, or null when neither option was given; a LLaVA model's text is tokenized as its checkpoint's code does it.</summary>
    public int[]? PromptIds(ParseResult args, string verb, Transformer model, LlavaModel? llava = null)
    {
        string? prompt = PromptText(args);
        int[]? ids = _tokenIds == null ? null : args.Given(_tokenIds);
        if (prompt != null && ids != null) throw new UserError($"{verb}: give --prompt or --token-ids, not both");
        if (ids != null && ids.Length == 0) throw new UserError($"{verb}: --token-ids is empty");
        return ids ?? (prompt == null ? null : llava != null ? llava.EncodePrompt(prompt) : model.Encode(prompt));
    }
}

/// <summary>
/// A loaded model, the gating options it was loaded with, and its gates when they were asked for. For a LLaVA folder
/// <see cref="Model"/> is its decoder and <see cref="Llava"/> the whole model (sharing the decoder and its files).
/// </summary>
public sealed record LoadedModel(Transformer Model, GatingOptions Gating, (Interventions Interventions, GateTable Table)? Gates) : IDisposable
{
    public LlavaModel? Llava { get; init; }
    /// <summary>A Qwen2.5-VL or Omni folder's whole model (its LM is <see cref="Model"/>).</summary>
    public QwenVLModel? Qwen { get; init; }

    public void Dispose() => Model.Dispose();
}
