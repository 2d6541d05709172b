using System.Buffers;
using System.Text;

namespace TruthProbe.Tokenizers;

/// <summary>
/// SentencePiece-style BPE over <c>▁</c>-escaped text with byte fallback (Llama-2, Vicuna, Mistral, llama2.c models).
/// Two merge orders, both exact: SentencePiece/llama2.c merge the adjacent pair whose joined piece has the highest
/// score; Hugging Face <c>tokenizer.json</c> merges the pair with the lowest rank in its <c>merges</c> list.
/// </summary>
public sealed class SentencePieceBpeTokenizer : ITokenizer
{
    internal const char Metaspace = '\u2581'; // ▁

    /// <summary>When a <c>▁</c> is put in front of a text segment.</summary>
    internal enum DummyPrefix
    {
        None,
        /// <summary>SentencePiece <c>add_dummy_prefix</c>, llama2.c, HF <c>Prepend("▁")</c>: always, even before a space.</summary>
        Always,
        /// <summary>HF Metaspace <c>prepend_scheme: always</c>: unless the segment already starts with a space.</summary>
        UnlessSpace,
        /// <summary>HF Metaspace <c>prepend_scheme: first</c>: only at the very start of the input, unless a space is there.</summary>
        FirstSegmentUnlessSpace,
    }

    internal sealed record Options(
        DummyPrefix Prefix,
        bool RemoveExtraWhitespaces,
        bool SplitAtMetaspace,
        bool MergeByRank,
        bool ByteFallback,
        bool FuseUnknown,
        bool IgnoreMerges = false);

    private readonly TokenizerVocabulary _vocab;
    private readonly Options _options;
    private readonly Dictionary<string, int> _ids;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _idOfSpan;
    private readonly Dictionary<long, (int Rank, int Id)> _merges = [];
    private readonly int[] _byteValue;      // id -> byte for <0xXX> pieces, else -1
    private readonly int[]? _idOfByte;      // byte -> id, when all 256 byte pieces exist
    private readonly AddedTokenSplitter _splitter;            // added tokens matched in raw text
    private readonly AddedTokenSplitter _normalizedSplitter;  // HF "normalized": true ones, matched after the normaliser
    private readonly AddedTokenSplitter.AddedToken[] _addedTokens;
    private readonly string _source;

    internal SentencePieceBpeTokenizer(TokenizerVocabulary vocab, Options options, IEnumerable<AddedTokenSplitter.AddedToken> addedTokens, string source)
    {
        _vocab = vocab;
        _options = options;
        _ids = new Dictionary<string, int>(vocab.Tokens.Length, StringComparer.Ordinal);
        for (int id = 0; id < vocab.Tokens.Length; id++) _ids.TryAdd(vocab.Tokens[id], id);
        _idOfSpan = _ids.GetAlternateLookup<ReadOnlySpan<char>>();

        _byteValue = new int[vocab.Tokens.Length];
        var idOfByte = new int[256];
        Array.Fill(idOfByte, -1);
        for (int id = 0; id < vocab.Tokens.Length; id++)
        {
            _byteValue[id] = vocab.TokenTypes[id] == TokenType.Byte && TryParseBytePiece(vocab.Tokens[id], out byte b) ? b : -1;
            if (_byteValue[id] >= 0 && idOfByte[_byteValue[id]] < 0) idOfByte[_byteValue[id]] = id;
        }
        _idOfByte = options.ByteFallback && idOfByte.All(id => id >= 0) ? idOfByte : null;

        if (options.MergeByRank)
            MergeTable.Build(vocab.Merges, _ids, _merges, source);
        _addedTokens = addedTokens.ToArray();
        _splitter = new AddedTokenSplitter(_addedTokens.Where(t => !t.Normalized));
        _normalizedSplitter = new AddedTokenSplitter(_addedTokens.Where(t => t.Normalized));
        _source = source;
    }

    /// <summary>The same tokenizer with other special-token settings (tokenizer_config.json beside a tokenizer.model).</summary>
    internal SentencePieceBpeTokenizer WithVocabulary(TokenizerVocabulary vocab) => new(vocab, _options, _addedTokens, _source);

    public string Kind => "sentencepiece-bpe";
    public int VocabSize => _vocab.Tokens.Length;
    public int? BosId => _vocab.BosId;
    public int? EosId => _vocab.EosId;
    public bool AddsBos => _vocab.AddBos && _vocab.BosId != null;
    public TokenizerVocabulary Vocabulary => _vocab;

    public string TokenText(int id) => _vocab.Tokens[id];

    /// <summary>"&lt;0x41&gt;" -> 0x41: SentencePiece's byte-fallback pieces.</summary>
    internal static bool TryParseBytePiece(string piece, out byte value)
    {
        value = 0;
        return piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
            && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out value);
    }

    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var work = new Workspace();
        return _vocab.EncodeWithSpecialTokens(addSpecialTokens, text.Length / 3 + 4, ids =>
            _splitter.Encode(text, ids, (start, length) => EncodeSegment(text.AsSpan(start, length), start == 0, ids, work)));
    }

    private sealed class Workspace
    {
        public readonly BpeMerger Merger = new();
        public BpeSymbol[] Symbols = new BpeSymbol[64];
        public char[] Normalized = new char[64];
    }

    private void EncodeSegment(ReadOnlySpan<char> raw, bool atInputStart, List<int> ids, Workspace work)
    {
        int length = Normalize(raw, atInputStart, work);
        _normalizedSplitter.Encode(work.Normalized.AsSpan(0, length), ids, (start, count) => EncodeWords(work.Normalized.AsSpan(start, count), ids, work));
    }

    private void EncodeWords(ReadOnlySpan<char> normalized, List<int> ids, Workspace work)
    {
        if (!_options.SplitAtMetaspace)
        {
            EncodeWord(normalized, ids, work);
            return;
        }
        // HF Metaspace split=true: every ▁ starts a new word (MergedWithNext).
        int start = 0;
        for (int i = 1; i <= normalized.Length; i++)
        {
            if (i < normalized.Length && normalized[i] != Metaspace) continue;
            EncodeWord(normalized[start..i], ids, work);
            start = i;
        }
    }

    /// <summary>Spaces to ▁ and the dummy prefix, as SentencePiece's identity normaliser (or HF's equivalent) does;
    /// with remove_extra_whitespaces, spaces are trimmed and runs of them collapsed first. Only ' ' counts.</summary>
    private int Normalize(ReadOnlySpan<char> raw, bool atInputStart, Workspace work)
    {
        if (_options.RemoveExtraWhitespaces) raw = raw.Trim(' ');
        if (raw.IsEmpty) return 0;
        bool startsWithSpace = raw[0] == ' ' || raw[0] == Metaspace;
        bool prefix = _options.Prefix switch
        {
            DummyPrefix.Always => true,
            DummyPrefix.UnlessSpace => !startsWithSpace,
            DummyPrefix.FirstSegmentUnlessSpace => atInputStart && !startsWithSpace,
            _ => false,
        };
        if (work.Normalized.Length < raw.Length + 1) work.Normalized = new char[raw.Length * 2 + 1];
        var output = work.Normalized;
        int n = 0;
        if (prefix) output[n++] = Metaspace;
        bool previousWasSpace = false;
        foreach (char c in raw)
        {
            bool isSpace = c == ' ';
            if (isSpace && previousWasSpace && _options.RemoveExtraWhitespaces) continue;
            output[n++] = isSpace ? Metaspace : c;
            previousWasSpace = isSpace;
        }
        return n;
    }

    private void EncodeWord(ReadOnlySpan<char> word, List<int> ids, Workspace work)
    {
        if (word.IsEmpty) return;
        if (_options.IgnoreMerges && _idOfSpan.TryGetValue(word, out int whole))
        {
            ids.Add(whole);
            return;
        }
        int count = _options.MergeByRank ? InitialSymbolsByRank(word, work) : InitialSymbolsByScore(word, work);
        var symbols = work.Symbols.AsSpan(0, count);
        BpeMerger.Link(symbols);
        if (_options.MergeByRank) work.Merger.Merge(word, symbols, new RankRule(_merges));
        else work.Merger.Merge(word, symbols, new ScoreRule(this));

        bool previousWasUnknown = false;
        for (int i = 0; i >= 0; i = symbols[i].Next)
        {
            ref var symbol = ref symbols[i];
            if (symbol.Id >= 0)
            {
                ids.Add(symbol.Id);
                previousWasUnknown = false;
            }
            else if (_idOfByte != null)
                AddBytes(word.Slice(symbol.Start, symbol.Length), ids);
            else
            {
                // SentencePiece merges a run of unknown pieces into one <unk>.
                if (!previousWasUnknown) ids.Add(UnknownIdOrThrow());
                previousWasUnknown = true;
            }
        }
    }

    private int UnknownIdOrThrow() => _vocab.UnknownId ?? throw new Common.UserError(
        "the text has characters this tokenizer's vocabulary cannot represent (no byte fallback and no unknown token)");

    private void AddBytes(ReadOnlySpan<char> text, List<int> ids)
    {
        Span<byte> bytes = stackalloc byte[Encoding.UTF8.GetMaxByteCount(text.Length)];
        int n = Encoding.UTF8.GetBytes(text, bytes);
        foreach (byte b in bytes[..n]) ids.Add(_idOfByte![b]);
    }

    private static BpeSymbol[] Grow(Workspace work, int needed)
    {
        if (work.Symbols.Length < needed) work.Symbols = new BpeSymbol[Math.Max(needed, work.Symbols.Length * 2)];
        return work.Symbols;
    }

    /// <summary>SentencePiece: one symbol per character; characters with no piece stay unknown (-1) until the end.</summary>
    private int InitialSymbolsByScore(ReadOnlySpan<char> word, Workspace work)
    {
        var symbols = Grow(work, word.Length);
        int count = 0;
        for (int i = 0; i < word.Length;)
        {
            int length = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            int id = _idOfSpan.TryGetValue(word.Slice(i, length), out int found) && IsMergeable(found) ? found : -1;
            symbols[count++] = new BpeSymbol { Start = i, Length = length, Id = id };
            i += length;
        }
        return count;
    }

    /// <summary>Hugging Face BPE: one symbol per character; a character with no token becomes its UTF-8 byte tokens
    /// (byte_fallback) or the unknown token, consecutive unknowns fused when fuse_unk is set.</summary>
    private int InitialSymbolsByRank(ReadOnlySpan<char> word, Workspace work)
    {
        var symbols = Grow(work, word.Length * 4);
        Span<byte> utf8 = stackalloc byte[4];
        int count = 0;
        for (int i = 0; i < word.Length;)
        {
            int length = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            var character = word.Slice(i, length);
            if (_idOfSpan.TryGetValue(character, out int id))
                symbols[count++] = new BpeSymbol { Start = i, Length = length, Id = id };
            else if (_idOfByte != null)
            {
                int n = Encoding.UTF8.GetBytes(character, utf8);
                for (int b = 0; b < n; b++) symbols[count++] = new BpeSymbol { Start = i, Length = length, Id = _idOfByte[utf8[b]] };
            }
            else
            {
                int unk = UnknownIdOrThrow();
                if (_options.FuseUnknown && count > 0 && symbols[count - 1].Id == unk) symbols[count - 1].Length += length;
                else symbols[count++] = new BpeSymbol { Start = i, Length = length, Id = unk };
            }
            i += length;
        }
        return count;
    }

    private bool IsMergeable(int id) => _vocab.TokenTypes[id] is TokenType.Normal or TokenType.UserDefined;

    private readonly struct ScoreRule(SentencePieceBpeTokenizer tokenizer) : IBpePairRule
    {
        public bool TryMerge(ReadOnlySpan<char> text, in BpeSymbol left, in BpeSymbol right, out float priority, out int mergedId)
        {
            priority = 0;
            if (left.Id >= 0 && right.Id >= 0
                && tokenizer._idOfSpan.TryGetValue(text.Slice(left.Start, left.Length + right.Length), out mergedId)
                && tokenizer.IsMergeable(mergedId))
            {
                priority = -tokenizer._vocab.Scores[mergedId];
                return true;
            }
            mergedId = -1;
            return false;
        }
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        var bytes = new ArrayBufferWriter<byte>(ids.Length * 4 + 16);
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)VocabSize) throw TokenizerVocabulary.IdOutsideVocabulary(_source, id, VocabSize);
            if (_vocab.TokenTypes[id] == TokenType.Control) continue;
            if (_byteValue[id] >= 0)
            {
                bytes.GetSpan(1)[0] = (byte)_byteValue[id];
                bytes.Advance(1);
                continue;
            }
            string piece = _vocab.Tokens[id].Replace(Metaspace, ' ');
            bytes.Advance(Encoding.UTF8.GetBytes(piece, bytes.GetSpan(Encoding.UTF8.GetMaxByteCount(piece.Length))));
        }
        string text = Encoding.UTF8.GetString(bytes.WrittenSpan);
        return _options.Prefix != DummyPrefix.None && text.StartsWith(' ') ? text[1..] : text;
    }
}

/// <summary>Merge-rank BPE as Hugging Face does it: pair (left id, right id) -> (rank, merged id).</summary>
internal readonly struct RankRule(Dictionary<long, (int Rank, int Id)> merges) : IBpePairRule
{
    public static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    public bool TryMerge(ReadOnlySpan<char> text, in BpeSymbol left, in BpeSymbol right, out float priority, out int mergedId)
    {
        if (merges.TryGetValue(Key(left.Id, right.Id), out var merge))
        {
            priority = merge.Rank;
            mergedId = merge.Id;
            return true;
        }
        priority = 0;
        mergedId = -1;
        return false;
    }
}

internal static class MergeTable
{
    /// <summary>Parses "left right" merge lines (rank = line index) into the pair table; the first rank of a pair wins.</summary>
    public static void Build(string[] merges, Dictionary<string, int> ids, Dictionary<long, (int Rank, int Id)> table, string source)
    {
        for (int rank = 0; rank < merges.Length; rank++)
        {
            string line = merges[rank];
            int space = line.IndexOf(' ', 1);
            if (space < 0) throw new Common.UserError($"{source}: merges[{rank}] \"{line}\" is not two tokens separated by a space");
            string left = line[..space], right = line[(space + 1)..];
            if (!ids.TryGetValue(left, out int leftId) || !ids.TryGetValue(right, out int rightId) || !ids.TryGetValue(left + right, out int mergedId))
                throw new Common.UserError($"{source}: merges[{rank}] \"{line}\" uses or makes a token that is not in the vocabulary");
            table.TryAdd(RankRule.Key(leftId, rightId), (rank, mergedId));
        }
    }
}
