using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Tokenizers;

namespace TruthProbe.Tests.Formats;

/// <summary>
/// Random models for GGUF tests, written as HF folders by the engine's <see cref="RandomModel"/> and loaded
/// back, each with a synthetic vocabulary of its architecture's kind so that llama.cpp accepts the GGUF:
/// SentencePiece (specials, 256 byte pieces, made-up pieces) for llama, byte-level BPE (256 byte characters,
/// two-letter merges, an end-of-text control token) for qwen2. Rows are multiples of 32 so Q8_0 fits.
/// </summary>
internal static class GgufModels
{
    /// <summary>GQA 4:2, untied, head_dim 32 with 4 heads in d_model 64 (so key_length is written), q/k/v/o biases.</summary>
    public static readonly ModelConfig Llama = new()
    {
        Architecture = "llama", Layers = 2, DModel = 64, Heads = 4, KvHeads = 2, HeadDim = 32, Ffn = 96, Vocab = 300,
        MaxContext = 64, RopeTheta = 10000f, RmsEps = 1e-5f, QkvBias = true, OProjBias = true, BosId = 1, EosIds = [2],
    };

    /// <summary>Qwen2 traps: q/k/v biases, tied embeddings, GQA 4:2, rope theta 1e6.</summary>
    public static readonly ModelConfig Qwen2 = new()
    {
        Architecture = "qwen2", Layers = 2, DModel = 64, Heads = 4, KvHeads = 2, HeadDim = 16, Ffn = 96, Vocab = 300,
        MaxContext = 64, RopeTheta = 1_000_000f, RmsEps = 1e-6f, TiedEmbeddings = true, QkvBias = true, EosIds = [256],
    };

    public static ModelConfig Of(string arch) => arch == "llama" ? Llama : Qwen2;

    public static Transformer Random(TempDir tmp, ModelConfig config, ulong seed)
    {
        string folder = tmp.File($"{config.Architecture}-hf-{seed}");
        RandomModel.WriteHf(folder, config, seed, WeightDType.F32);
        return Transformer.Load(folder);
    }

    public static TokenizerVocabulary VocabularyFor(ModelConfig c) => c.Architecture == "qwen2" ? ByteLevel(c.Vocab) : SentencePiece(c.Vocab);

    private static TokenizerVocabulary SentencePiece(int size)
    {
        var tokens = new List<string> { "<unk>", "<s>", "</s>" };
        var types = new List<int> { TokenType.Unknown, TokenType.Control, TokenType.Control };
        for (int b = 0; b < 256; b++) { tokens.Add($"<0x{b:X2}>"); types.Add(TokenType.Byte); }
        for (int i = 0; tokens.Count < size; i++) { tokens.Add($"▁w{i}"); types.Add(TokenType.Normal); }
        var scores = Enumerable.Range(0, size).Select(i => types[i] == TokenType.Normal ? -i : 0f).ToArray();
        return new TokenizerVocabulary("llama", [.. tokens], scores, [.. types], [], BosId: 1, EosId: 2, UnknownId: 0,
            PaddingId: null, AddBos: true, PreTokenizer: null);
    }

    private static TokenizerVocabulary ByteLevel(int size)
    {
        var tokens = Enumerable.Range(0, 256).Select(b => ByteLevelAlphabet.CharOf[b].ToString()).ToList();
        tokens.Add("<|endoftext|>");
        var merges = new List<string>();
        for (char a = 'a'; a <= 'z' && tokens.Count < size; a++)
            for (char b = 'a'; b <= 'z' && tokens.Count < size; b++)
            {
                merges.Add($"{a} {b}");
                tokens.Add($"{a}{b}");
            }
        var types = tokens.Select(t => t == "<|endoftext|>" ? TokenType.Control : TokenType.Normal).ToArray();
        return new TokenizerVocabulary("gpt2", [.. tokens], new float[tokens.Count], types, [.. merges], BosId: null, EosId: 256,
            UnknownId: null, PaddingId: null, AddBos: false, PreTokenizer: "qwen2");
    }

    public static int[] RandomTokens(int count, int vocab, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(vocab)).ToArray();
    }
}
