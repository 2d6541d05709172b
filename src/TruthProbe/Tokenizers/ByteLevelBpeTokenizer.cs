using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using System.Text;
using TruthProbe.Common;

namespace TruthProbe.Tokenizers;

/// <summary>
/// Byte-level BPE (GPT-2, Qwen2): added tokens cut out, optional NFC, a regex pre-split into words, each word's
/// UTF-8 bytes as GPT-2's byte-to-unicode symbols, merged by rank as Hugging Face's BPE does. Words are cached.
/// </summary>
public sealed class ByteLevelBpeTokenizer : ITokenizer
{
    /// <summary>Pre-split patterns by their GGUF <c>tokenizer.ggml.pre</c> name.</summary>
    internal static readonly IReadOnlyDictionary<string, string> KnownPatterns = new Dictionary<string, string>
    {
        ["gpt2"] = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
        ["qwen2"] = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ["llama-bpe"] = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    };

    /// <summary>Pre-tokenizer names whose tokenizer.json applies NFC first.</summary>
    private static readonly HashSet<string> NfcPreTokenizers = ["qwen2"];

    private const int CacheLimit = 100_000;

    private readonly TokenizerVocabulary _vocab;
    private readonly PreTokenizerPatterns.Kind? _scanner; // known patterns, scanned over code points
    private readonly Regex? _split;                      // any other Split regex from a tokenizer.json
    private readonly bool _nfc, _addPrefixSpace, _ignoreMerges;
    private readonly Dictionary<string, int> _ids;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _idOfSpan;
    private readonly Dictionary<long, (int Rank, int Id)> _merges = [];
    private readonly int[] _idOfByte = new int[256];
    private readonly AddedTokenSplitter _splitter;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _cacheOfSpan;
    private int _cacheSize;
    private readonly string _source;

    internal ByteLevelBpeTokenizer(TokenizerVocabulary vocab, string pattern, bool nfc, bool addPrefixSpace, bool ignoreMerges,
        IEnumerable<AddedTokenSplitter.AddedToken> addedTokens, string source)
    {
        _vocab = vocab;
        _source = source;
        _nfc = nfc;
        _addPrefixSpace = addPrefixSpace;
        _ignoreMerges = ignoreMerges;
        _scanner = PreTokenizerPatterns.Recognise(pattern);
        if (_scanner == null)
        {
            try { _split = new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant); }
            catch (ArgumentException e) { throw new UserError($"{source}: pre-tokenizer regex is not valid: {e.Message}"); }
        }
        _ids = new Dictionary<string, int>(vocab.Tokens.Length, StringComparer.Ordinal);
        for (int id = 0; id < vocab.Tokens.Length; id++) _ids.TryAdd(vocab.Tokens[id], id);
        _idOfSpan = _ids.GetAlternateLookup<ReadOnlySpan<char>>();
        for (int b = 0; b < 256; b++)
            _idOfByte[b] = _ids.TryGetValue(ByteLevelAlphabet.CharOf[b].ToString(), out int id) ? id
                : throw new UserError($"{source}: the vocabulary lacks the byte-level token for byte 0x{b:X2} ('{ByteLevelAlphabet.CharOf[b]}'); expected all 256");
        MergeTable.Build(vocab.Merges, _ids, _merges, source);
        _splitter = new AddedTokenSplitter(addedTokens);
        _cacheOfSpan = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Rebuilds from a GGUF-style vocabulary: the pre-split comes from its <c>PreTokenizer</c> name; control and
    /// user-defined tokens are recognised in text.</summary>
    internal static ByteLevelBpeTokenizer FromVocabulary(TokenizerVocabulary v, string source)
    {
        string pre = v.PreTokenizer ?? "gpt2";
        if (pre == "default") pre = "gpt2";
        if (!KnownPatterns.TryGetValue(pre, out string? pattern))
            throw new UserError($"{source}: byte-level pre-tokenizer '{pre}' is not supported; expected one of {string.Join(", ", KnownPatterns.Keys)}");
        var added = Enumerable.Range(0, v.Tokens.Length)
            .Where(id => v.TokenTypes[id] is TokenType.Control or TokenType.UserDefined)
            .Select(id => new AddedTokenSplitter.AddedToken(v.Tokens[id], id));
        return new ByteLevelBpeTokenizer(v, pattern, NfcPreTokenizers.Contains(pre), addPrefixSpace: false, ignoreMerges: pre == "llama-bpe", added, source);
    }

    public string Kind => "byte-level-bpe";
    public int VocabSize => _vocab.Tokens.Length;
    public int? BosId => _vocab.BosId;
    public int? EosId => _vocab.EosId;
    public bool AddsBos => _vocab.AddBos && _vocab.BosId != null;
    public TokenizerVocabulary Vocabulary => _vocab;
    public string TokenText(int id) => _vocab.Tokens[id];

    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var work = new Workspace();
        return _vocab.EncodeWithSpecialTokens(addSpecialTokens, text.Length / 3 + 4, ids =>
            _splitter.Encode(text, ids, (start, length) => EncodeSegment(text.Substring(start, length), ids, work)));
    }

    private sealed class Workspace
    {
        public readonly BpeMerger Merger = new();
        public BpeSymbol[] Symbols = new BpeSymbol[64];
        public byte[] Utf8 = new byte[64];
    }

    private void EncodeSegment(string segment, List<int> ids, Workspace work)
    {
        if (_nfc) segment = Nfc.Normalize(segment);
        if (_addPrefixSpace && !segment.StartsWith(' ')) segment = " " + segment;
        if (_scanner is { } kind)
        {
            for (int start = 0, stop; start < segment.Length; start = stop)
            {
                stop = PreTokenizerPatterns.NextWordEnd(kind, segment, start);
                EncodeWord(segment.AsSpan(start, stop - start), ids, work);
            }
            return;
        }
        int end = 0;
        foreach (var match in _split!.EnumerateMatches(segment))
        {
            // Split behaviour "Isolated": text between matches is a word of its own.
            if (match.Index > end) EncodeWord(segment.AsSpan(end, match.Index - end), ids, work);
            if (match.Length > 0) EncodeWord(segment.AsSpan(match.Index, match.Length), ids, work);
            end = match.Index + match.Length;
        }
        if (end < segment.Length) EncodeWord(segment.AsSpan(end), ids, work);
    }

    private void EncodeWord(ReadOnlySpan<char> word, List<int> ids, Workspace work)
    {
        if (_cacheOfSpan.TryGetValue(word, out int[]? cached))
        {
            ids.AddRange(cached);
            return;
        }
        int byteCount = Encoding.UTF8.GetMaxByteCount(word.Length);
        if (work.Utf8.Length < byteCount) work.Utf8 = new byte[byteCount * 2];
        var bytes = work.Utf8.AsSpan(0, Encoding.UTF8.GetBytes(word, work.Utf8));
        int[] result = _ignoreMerges && TryWholeWord(bytes, out int whole) ? [whole] : MergeBytes(bytes, work);
        ids.AddRange(result);
        // A counter, not _cache.Count, which takes every lock of the dictionary.
        if (Interlocked.Increment(ref _cacheSize) > CacheLimit)
        {
            _cache.Clear();
            Interlocked.Exchange(ref _cacheSize, 0);
        }
        _cacheOfSpan.TryAdd(word, result);
    }

    private bool TryWholeWord(ReadOnlySpan<byte> bytes, out int id)
    {
        Span<char> chars = bytes.Length <= 256 ? stackalloc char[bytes.Length] : new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteLevelAlphabet.CharOf[bytes[i]];
        return _idOfSpan.TryGetValue(chars, out id);
    }

    private int[] MergeBytes(ReadOnlySpan<byte> bytes, Workspace work)
    {
        if (work.Symbols.Length < bytes.Length) work.Symbols = new BpeSymbol[bytes.Length * 2];
        var symbols = work.Symbols.AsSpan(0, bytes.Length);
        for (int i = 0; i < bytes.Length; i++) symbols[i] = new BpeSymbol { Start = i, Length = 1, Id = _idOfByte[bytes[i]] };
        BpeMerger.Link(symbols);
        work.Merger.Merge(default, symbols, new RankRule(_merges));
        int count = 0;
        for (int i = 0; i >= 0; i = symbols[i].Next) count++;
        var result = new int[count];
        count = 0;
        for (int i = 0; i >= 0; i = symbols[i].Next) result[count++] = symbols[i].Id;
        return result;
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        var bytes = new List<byte>(ids.Length * 4);
        Span<byte> utf8 = stackalloc byte[4];
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)VocabSize) throw TokenizerVocabulary.IdOutsideVocabulary(_source, id, VocabSize);
            if (_vocab.TokenTypes[id] == TokenType.Control) continue;
            foreach (var rune in _vocab.Tokens[id].EnumerateRunes())
            {
                int b = rune.Value < ByteLevelAlphabet.ByteOf.Length ? ByteLevelAlphabet.ByteOf[rune.Value] : -1;
                if (b >= 0) bytes.Add((byte)b);
                else bytes.AddRange(utf8[..rune.EncodeToUtf8(utf8)]);
            }
        }
        return Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
    }
}

/// <summary>GPT-2's reversible byte-to-unicode map: printable Latin-1 bytes stand for themselves, the other 68 bytes
/// take the code points from U+0100 up, in byte order (so ' ' is 'Ġ' and '\n' is 'Ċ').</summary>
internal static class ByteLevelAlphabet
{
    public static readonly char[] CharOf = BuildCharOf();
    public static readonly int[] ByteOf = BuildByteOf();

    private static bool StandsForItself(int b) => b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;

    private static char[] BuildCharOf()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++) map[b] = StandsForItself(b) ? (char)b : (char)next++;
        return map;
    }

    private static int[] BuildByteOf()
    {
        var inverse = new int[256 + 68];
        Array.Fill(inverse, -1);
        for (int b = 0; b < 256; b++) inverse[CharOf[b]] = b;
        return inverse;
    }
}
