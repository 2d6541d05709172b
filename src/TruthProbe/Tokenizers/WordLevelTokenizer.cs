using System.Text.RegularExpressions;
using System.Text;
using TruthProbe.Common;

namespace TruthProbe.Tokenizers;

/// <summary>
/// Hugging Face's WordLevel model: each pre-token is looked up whole in the vocabulary (unknown ones become the
/// unk token). Pre-tokenizers: <c>Whitespace</c> (<c>\w+|[^\w\s]+</c>) and <c>WhitespaceSplit</c>. Decoding joins
/// tokens with spaces, as HF does without a decoder, or follows the <c>WordPiece</c> decoder (a "##" piece
/// continues the previous word; cleanup removes the space before punctuation and contractions).
/// The lab's models (<c>truthprobe lab pretrain</c>) are written with such a tokenizer.
/// </summary>
public sealed partial class WordLevelTokenizer : ITokenizer
{
    /// <summary>How ids become text again: HF's default (space-joined) or its WordPiece decoder.</summary>
    public sealed record DecoderSpec(bool WordPiece, string Prefix = "##", bool Cleanup = true);

    private readonly Dictionary<string, int> _ids;
    private readonly bool _splitPunctuation;
    private readonly DecoderSpec _decoder;
    private readonly AddedTokenSplitter _splitter;
    private readonly string _source;

    internal WordLevelTokenizer(TokenizerVocabulary vocabulary, bool splitPunctuation, DecoderSpec decoder,
        IEnumerable<AddedTokenSplitter.AddedToken> addedTokens, string source)
    {
        Vocabulary = vocabulary;
        _splitPunctuation = splitPunctuation;
        _decoder = decoder;
        _splitter = new AddedTokenSplitter(addedTokens);
        _source = source;
        _ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < vocabulary.Tokens.Length; id++) _ids.TryAdd(vocabulary.Tokens[id], id);
    }

    public string Kind => "word-level";
    public int VocabSize => Vocabulary.Tokens.Length;
    public int? BosId => Vocabulary.BosId;
    public int? EosId => Vocabulary.EosId;
    public bool AddsBos => Vocabulary.AddBos && Vocabulary.BosId != null;
    public TokenizerVocabulary Vocabulary { get; }

    [GeneratedRegex(@"\w+|[^\w\s]+")]
    private static partial Regex WhitespacePreTokenizer();

    [GeneratedRegex(@"\S+")]
    private static partial Regex WhitespaceSplitPreTokenizer();

    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        var pattern = _splitPunctuation ? WhitespacePreTokenizer() : WhitespaceSplitPreTokenizer();
        return Vocabulary.EncodeWithSpecialTokens(addSpecialTokens, text.Length / 4 + 4, ids => _splitter.Encode(text, ids, (start, length) =>
        {
            foreach (Match word in pattern.Matches(text.Substring(start, length)))
                ids.Add(_ids.TryGetValue(word.Value, out int id) ? id
                    : Vocabulary.UnknownId ?? throw new UserError($"{_source}: '{word.Value}' is not in the vocabulary and the model has no unk_token"));
        }));
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        var words = new List<string>();
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)VocabSize) throw TokenizerVocabulary.IdOutsideVocabulary(_source, id, VocabSize);
            if (Vocabulary.TokenTypes[id] != TokenType.Control) words.Add(Vocabulary.Tokens[id]);
        }
        if (!_decoder.WordPiece) return string.Join(' ', words);
        var text = new StringBuilder();
        for (int i = 0; i < words.Count; i++)
        {
            string w = words[i];
            if (i > 0 && w.StartsWith(_decoder.Prefix, StringComparison.Ordinal)) text.Append(w, _decoder.Prefix.Length, w.Length - _decoder.Prefix.Length);
            else text.Append(i > 0 ? " " : "").Append(w);
        }
        return _decoder.Cleanup ? CleanUp(text.ToString()) : text.ToString();
    }

    /// <summary>The WordPiece decoder's clean-up, rule for rule as Hugging Face applies it.</summary>
    private static string CleanUp(string s) => s
        .Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
        .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" do not", " don't").Replace(" 's", "'s")
        .Replace(" 've", "'ve").Replace(" 're", "'re");

    public string TokenText(int id) => Vocabulary.Tokens[id];
}
