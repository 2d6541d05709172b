using System.Numerics.Tensors;
using TruthProbe.Common;
using TruthProbe.Tokenizers;
using NumericsNonFinite = TruthProbe.Numerics.NonFinite;

namespace TruthProbe.Model;

/// <summary>
/// A loaded decoder-only transformer (llama, mistral, qwen2): its config, its weights (memory-mapped where
/// the file allows) and the forward pass. The model itself is immutable; each sequence keeps its cache in
/// a <see cref="RunState"/> from <see cref="NewState"/>.
/// </summary>
public sealed class Transformer : IDisposable
{
    private readonly IReadOnlyList<IDisposable> _resources;

    public ModelConfig Config { get; }
    public ModelWeights Weights { get; }
    /// <summary>The path it was loaded from.</summary>
    public string Source { get; }
    /// <summary>"hf-safetensors", "llama2c", "gguf" or "memory".</summary>
    public string Format { get; }
    /// <summary>Null when the model came without one: it still runs from token ids.</summary>
    public ITokenizer? Tokenizer { get; init; }
    /// <summary>
    /// Run even with NaN or infinite weights, logits or captured activations. Off by default: then the first forward
    /// checks the weights it reads in full (<see cref="FiniteWeights"/>), and every forward its embedding rows, its
    /// logits and the hooks it captures, failing where a non-finite value first shows.
    /// </summary>
    public bool AllowNonFinite { get; set; }
    private int _weightsChecked;

    public Transformer(ModelConfig config, ModelWeights weights, string source, string format, IReadOnlyList<IDisposable>? resources = null)
    {
        Config = config;
        Weights = weights;
        Source = source;
        Format = format;
        _resources = resources ?? [];
    }

    /// <summary>
    /// Loads a Hugging Face model folder, a GGUF file or a llama2.c <c>.bin</c> checkpoint, with its tokenizer:
    /// the one given, else the folder's own or the GGUF's metadata, else (for a <c>.bin</c>) one beside it (<c>*.model</c>,
    /// <c>tokenizer.bin</c>, <c>tok*.bin</c>, <c>*.vocab</c>, in that order). The SentencePiece <c>.model</c> comes first because
    /// it carries the normaliser the model was trained with (runs of spaces collapsed), which llama2.c's
    /// <c>tokenizer.bin</c> cannot express.
    /// </summary>
    public static Transformer Load(string path, string? tokenizerPath = null)
    {
        Transformer model;
        if (Directory.Exists(path))
        {
            var (config, weights, files) = HfCheckpoint.Load(path);
            var tokenizer = LoadTokenizerOrRelease(files, () => tokenizerPath != null ? TokenizerLoader.FromFile(tokenizerPath) : TokenizerLoader.FromModelDirectory(path));
            model = new Transformer(config, weights, path, "hf-safetensors", files) { Tokenizer = tokenizer };
        }
        else if (!File.Exists(path)) throw new UserError($"{path}: no such model folder or file");
        else if (path.EndsWith(".bin", StringComparison.OrdinalIgnoreCase))
        {
            var (config, weights, file) = Llama2cCheckpoint.Load(path);
            string? found = tokenizerPath ?? TokenizerBeside(path);
            var tokenizer = LoadTokenizerOrRelease([file], () => found == null ? null : TokenizerLoader.FromFile(found));
            model = new Transformer(config, weights, path, "llama2c", [file]) { Tokenizer = tokenizer };
            // run.c reads exactly vocab_size tokens from tokenizer.bin: fewer is a truncated or foreign file, whose
            // missing ids would only fail when generation first produces one.
            if (tokenizer != null && tokenizer.VocabSize < config.Vocab && found!.EndsWith(".bin", StringComparison.OrdinalIgnoreCase))
            {
                model.Dispose();
                throw new UserError($"{found}: the llama2.c tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {config.Vocab} (ids {tokenizer.VocabSize}..{config.Vocab - 1} have no text); the file is truncated or belongs to another model") { Field = "tokenizer" };
            }
        }
        else if (path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
        {
            var (config, weights, vocabulary, file) = GgufCheckpoint.Load(path);
            var tokenizer = LoadTokenizerOrRelease([file], () => tokenizerPath != null ? TokenizerLoader.FromFile(tokenizerPath) : vocabulary == null ? null : TokenizerLoader.FromVocabulary(vocabulary));
            model = new Transformer(config, weights, path, "gguf", [file]) { Tokenizer = tokenizer };
        }
        else throw new UserError($"{path}: unknown model format (expected a Hugging Face folder with config.json, a .gguf or a llama2.c .bin)");

        if (model.Tokenizer is { } t && t.VocabSize > model.Config.Vocab)
        {
            model.Dispose();
            throw new UserError($"{tokenizerPath ?? path}: the tokenizer has {t.VocabSize} tokens but the model only {model.Config.Vocab}; give the model's own tokenizer") { Field = "tokenizer" };
        }
        return model;
    }

    /// <summary>A tokenizer that fails to load must not leave the weight files mapped.</summary>
    private static ITokenizer? LoadTokenizerOrRelease(IEnumerable<IDisposable> files, Func<ITokenizer?> load)
    {
        try { return load(); }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    private static string? TokenizerBeside(string checkpoint)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(checkpoint))!;
        string self = Path.GetFileName(checkpoint);
        string[] Matching(string pattern) => Directory.GetFiles(dir, pattern).Where(f => Path.GetFileName(f) != self).Order(StringComparer.Ordinal).ToArray();
        return Matching("*.model").Concat(Matching("tokenizer.bin")).Concat(Matching("tok*.bin")).Concat(Matching("*.vocab")).FirstOrDefault();
    }

    /// <summary>The id generation starts from when there is no prompt: the tokenizer's BOS, else config's.</summary>
    public int? BosId => Tokenizer?.BosId ?? Config.BosId;

    /// <summary>Ids that end a generation: config's EOS ids and the tokenizer's.</summary>
    public IReadOnlyList<int> EosIds => Tokenizer?.EosId is int e && !Config.EosIds.Contains(e) ? [.. Config.EosIds, e] : Config.EosIds;

    /// <summary>Text to ids with the tokenizer's default special tokens (BOS where the model's tokenizer adds one).</summary>
    public int[] Encode(string text) =>
        (Tokenizer ?? throw new UserError($"{Source}: the model has no tokenizer; give one or pass token ids") { Field = "tokenizer" }).Encode(text, addSpecialTokens: true);

    /// <summary>How the states from <see cref="NewState"/> store keys and values: float32 by default (exact); 16 bits
    /// halve the cache, and attention then reads the keys and values rounded to bf16 or fp16.</summary>
    public KvCacheType KvCache { get; set; }

    public RunState NewState() => new(Config, KvCache);

    /// <summary>
    /// Runs <paramref name="tokens"/> at the next positions of <paramref name="state"/> (a batched prefill
    /// when there are several, one decoding step when there is one), appending their keys and values to the
    /// cache. Returns the logits of the last token (valid until the next call on this state). Interventions
    /// edit activations as they flow; the capture keeps the hooks it asks for.
    /// </summary>
    public ReadOnlySpan<float> Forward(RunState state, scoped ReadOnlySpan<int> tokens, ActivationCapture? capture = null, Interventions? interventions = null,
        System.Buffers.SpanAction<float, int>? replaceEmbeddings = null)
    {
        var c = Config;
        int T = tokens.Length, p0 = state.Position, total = p0 + T;
        CheckTokens(tokens, p0);
        state.EnsureCapacity(T, total);
        capture?.Begin(T);
        int d = c.DModel, qDim = c.QDim, kvDim = c.KvDim;
        var x = state.Residual.AsSpan(0, T * d);
        var xb = state.Normed.AsSpan(0, T * d);
        var q = state.Q.AsSpan(0, T * qDim);
        var k = state.K.AsSpan(0, T * kvDim);
        var v = state.V.AsSpan(0, T * kvDim);
        var z = state.Z.AsSpan(0, T * qDim);
        var attnOut = state.AttnOut.AsSpan(0, T * d);
        var hidden = state.Hidden.AsSpan(0, T * c.Ffn);
        var hiddenUp = state.HiddenUp.AsSpan(0, T * c.Ffn);
        var mlpOut = state.MlpOut.AsSpan(0, T * d);

        if (!AllowNonFinite && Volatile.Read(ref _weightsChecked) == 0)
        {
            FiniteWeights.Require(Config, Weights, Source);
            Volatile.Write(ref _weightsChecked, 1);
        }
        for (int t = 0; t < T; t++) Weights.TokenEmbedding.ReadRow(tokens[t], x.Slice(t * d, d));
        if (!AllowNonFinite) FiniteWeights.RequireRows(x, tokens, d, Source);
        replaceEmbeddings?.Invoke(x, p0); // rows [T, d_model] of positions p0..: another encoder's outputs (image features) overwrite some
        Hook(HookKind.Embed, 0, x, T, capture, interventions);
        if (state.Rotary is { } rotary) rotary.Fill(p0, T, state.RopeCos, state.RopeSin);   // M-RoPE: the caller's position ids
        else RopeTables.Fill(p0, T, c.HeadDim, c.RopeTheta, c.RopeLinearFactor, state.RopeCos, state.RopeSin);

        for (int l = 0; l < c.Layers; l++)
        {
            var layer = Weights.Layers[l];
            Hook(HookKind.ResidPre, l, x, T, capture, interventions);

            // Attention: q, k, v of the normed residual; RoPE on q and k; keys and values join the cache.
            RmsNormRows(x, layer.InputNorm, xb, T);
            Kernels.MatMul(layer.Q, xb, q, T);
            Kernels.MatMul(layer.K, xb, k, T);
            Kernels.MatMul(layer.V, xb, v, T);
            AddBias(q, layer.QBias, T);
            AddBias(k, layer.KBias, T);
            AddBias(v, layer.VBias, T);
            Hook(HookKind.Q, l, q, T, capture, interventions);
            Hook(HookKind.K, l, k, T, capture, interventions);
            Hook(HookKind.V, l, v, T, capture, interventions);
            Kernels.RopeRows(q, qDim, k, kvDim, c.HeadDim, state.RopeCos, state.RopeSin, T);
            Hook(HookKind.RotQ, l, q, T, capture, interventions);
            Hook(HookKind.RotK, l, k, T, capture, interventions);
            state.StoreKeysValues(l, p0, k, v);

            // The kernel writes the maps only when they are captured, from the numbers that make z.
            var scores = state.AttentionMap(HookKind.AttnScores, capture?.Wants(HookKind.AttnScores, l) == true, T, total);
            var pattern = state.AttentionMap(HookKind.Pattern, capture?.Wants(HookKind.Pattern, l) == true, T, total);
            state.Attend(l, q, z, T, p0, scores, pattern);
            if (!scores.IsEmpty) capture!.RecordAttentionMap(HookKind.AttnScores, l, scores, T, total);
            if (!pattern.IsEmpty) capture!.RecordAttentionMap(HookKind.Pattern, l, pattern, T, total);
            Hook(HookKind.Z, l, z, T, capture, interventions);

            Kernels.MatMul(layer.O, z, attnOut, T);
            AddBias(attnOut, layer.OBias, T);
            Hook(HookKind.AttnOut, l, attnOut, T, capture, interventions);
            Kernels.AddRows(x, attnOut, T, d);
            Hook(HookKind.ResidMid, l, x, T, capture, interventions);

            // MLP: down(silu(gate(xn)) * up(xn)) of the normed residual.
            RmsNormRows(x, layer.PostAttentionNorm, xb, T);
            Kernels.MatMul(layer.Gate, xb, hidden, T);
            Kernels.MatMul(layer.Up, xb, hiddenUp, T);
            Hook(HookKind.MlpPre, l, hidden, T, capture, interventions);
            Hook(HookKind.MlpPreLinear, l, hiddenUp, T, capture, interventions);
            Kernels.SwiGluRows(hidden, hiddenUp, T, c.Ffn);
            Hook(HookKind.MlpPost, l, hidden, T, capture, interventions);
            Kernels.MatMul(layer.Down, hidden, mlpOut, T);
            Hook(HookKind.MlpOut, l, mlpOut, T, capture, interventions);
            Kernels.AddRows(x, mlpOut, T, d);
            Hook(HookKind.ResidPost, l, x, T, capture, interventions);
        }

        // Final norm and classifier: every position when logits are captured, else the last one only. The last
        // row always takes the one-row product, so capturing the logits leaves the returned ones bit-identical.
        bool allLogits = capture?.Wants(HookKind.Logits, 0) == true;
        int first = allLogits ? 0 : T - 1, rows = T - first, vocab = c.Vocab;
        RmsNormRows(x[(first * d)..], Weights.FinalNorm, xb, rows);
        var logits = state.LogitsBuffer(rows);
        if (rows > 1) Kernels.MatMul(Weights.Classifier, xb, logits, rows - 1);
        Kernels.MatMul(Weights.Classifier, xb[((rows - 1) * d)..], logits[((rows - 1) * vocab)..], 1);
        if (!AllowNonFinite) RequireFinite(logits, "logits", p0 + first, vocab);
        Hook(HookKind.Logits, 0, logits, rows, capture, interventions);

        state.Position = total;
        return logits[((rows - 1) * vocab)..];
    }

    /// <summary>The one place per-position activations meet interventions and capture (shapes from <see cref="HookNames.Table"/>).</summary>
    internal void Hook(HookKind kind, int layer, Span<float> data, int tokens, ActivationCapture? capture, Interventions? interventions)
    {
        interventions?.Apply(kind, layer, data, tokens, HookNames.Point(kind).Width(Config));
        if (capture == null || !capture.Wants(kind, layer)) return;
        if (!AllowNonFinite) RequireFinite(data, HookNames.Name(kind, layer), -1, data.Length / tokens);
        capture.Record(kind, layer, data);
    }

    /// <summary>
    /// With finite weights (checked before), a non-finite activation is an overflow: float32 tops out near 3.4e38, and
    /// large gates or an extreme config value get there. <paramref name="firstPosition"/> -1: the hook knows rows of this call, not positions.
    /// </summary>
    private void RequireFinite(ReadOnlySpan<float> values, string what, int firstPosition, int width)
    {
        int at = NumericsNonFinite.IndexOf(values);
        if (at < 0) return;
        string where = firstPosition >= 0 ? $"position {firstPosition + at / width}" : $"token {at / width} of the call";
        throw new UserError($"{Source}: {what} is {values[at].ToString(System.Globalization.CultureInfo.InvariantCulture)} at {where}, index {at % width}, although the weights are finite: an activation overflowed float32 (gates with a large lambda, or an extreme config value)") { Field = FiniteWeights.AllowField };
    }

    internal void CheckTokens(ReadOnlySpan<int> tokens, int firstPosition)
    {
        if (tokens.IsEmpty) throw new ArgumentException("forward needs at least one token");
        if (firstPosition + tokens.Length > Config.MaxContext)
            throw new UserError($"{Source}: {firstPosition + tokens.Length} tokens exceed the model's context of {Config.MaxContext} ({tokens.Length} new after {firstPosition}); shorten the prompt");
        for (int t = 0; t < tokens.Length; t++)
            if ((uint)tokens[t] >= (uint)Config.Vocab)
                throw new UserError($"{Source}: token id {tokens[t]} (position {firstPosition + t}) is outside the vocabulary [0, {Config.Vocab})");
    }

    internal void RmsNormRows(ReadOnlySpan<float> x, float[] weight, Span<float> y, int rows) => Kernels.RmsNormRows(x, weight, Config.RmsEps, y, rows);

    internal static void AddBias(Span<float> y, float[]? bias, int rows)
    {
        if (bias == null) return;
        for (int t = 0; t < rows; t++) TensorPrimitives.Add(y.Slice(t * bias.Length, bias.Length), bias, y.Slice(t * bias.Length, bias.Length));
    }

    public void Dispose()
    {
        foreach (var r in _resources) r.Dispose();
    }
}
