using System.Text;
using TruthProbe.Common;

namespace TruthProbe.Tokenizers;

/// <summary>
/// Reads a SentencePiece <c>.model</c> (a protobuf <c>ModelProto</c>): the pieces with score and type, the trainer's
/// model type, byte_fallback and special ids, and the normaliser's add_dummy_prefix / remove_extra_whitespaces.
/// Only BPE models with the identity normaliser are supported (Llama-2 and llama2.c models are such).
/// </summary>
internal static class SentencePieceModelFile
{
    // Field numbers from sentencepiece_model.proto.
    private const int ModelPieces = 1, ModelTrainerSpec = 2, ModelNormalizerSpec = 3;
    private const int PiecePiece = 1, PieceScore = 2, PieceType = 3;
    private const int TrainerModelType = 3, TrainerTreatWhitespaceAsSuffix = 24, TrainerByteFallback = 35,
        TrainerUnkId = 40, TrainerBosId = 41, TrainerEosId = 42, TrainerPadId = 43;
    private const int NormalizerName = 1, NormalizerCharsMap = 2, NormalizerAddDummyPrefix = 3,
        NormalizerRemoveExtraWhitespaces = 4, NormalizerEscapeWhitespaces = 5;
    private const int ModelTypeBpe = 2;

    public static SentencePieceBpeTokenizer Load(string path)
    {
        byte[] data = TokenizerFiles.ReadAll(path);
        var tokens = new List<string>();
        var scores = new List<float>();
        var types = new List<int>();
        int modelType = 1; // proto default: UNIGRAM
        bool byteFallback = false, treatWhitespaceAsSuffix = false;
        int unkId = 0, bosId = 1, eosId = 2, padId = -1;
        string normalizerName = "identity";
        bool hasCharsMap = false, addDummyPrefix = true, removeExtraWhitespaces = true, escapeWhitespaces = true;
        try
        {
            var model = new ProtoReader(data);
            while (model.Next(out int field, out int wire))
            {
                switch (field)
                {
                    case ModelPieces:
                        var piece = new ProtoReader(model.Bytes());
                        string text = "";
                        float score = 0;
                        int type = TokenType.Normal;
                        while (piece.Next(out int f, out int w))
                        {
                            if (f == PiecePiece) text = Encoding.UTF8.GetString(piece.Bytes());
                            else if (f == PieceScore) score = piece.Float32();
                            else if (f == PieceType) type = (int)piece.Varint();
                            else piece.Skip(w);
                        }
                        tokens.Add(text);
                        scores.Add(score);
                        types.Add(type);
                        break;
                    case ModelTrainerSpec:
                        var trainer = new ProtoReader(model.Bytes());
                        while (trainer.Next(out int f, out int w))
                        {
                            switch (f)
                            {
                                case TrainerModelType: modelType = (int)trainer.Varint(); break;
                                case TrainerTreatWhitespaceAsSuffix: treatWhitespaceAsSuffix = trainer.Varint() != 0; break;
                                case TrainerByteFallback: byteFallback = trainer.Varint() != 0; break;
                                case TrainerUnkId: unkId = (int)trainer.Varint(); break;
                                case TrainerBosId: bosId = (int)trainer.Varint(); break;
                                case TrainerEosId: eosId = (int)trainer.Varint(); break;
                                case TrainerPadId: padId = (int)trainer.Varint(); break;
                                default: trainer.Skip(w); break;
                            }
                        }
                        break;
                    case ModelNormalizerSpec:
                        var normalizer = new ProtoReader(model.Bytes());
                        while (normalizer.Next(out int f, out int w))
                        {
                            switch (f)
                            {
                                case NormalizerName: normalizerName = Encoding.UTF8.GetString(normalizer.Bytes()); break;
                                case NormalizerCharsMap: hasCharsMap = normalizer.Bytes().Length > 0; break;
                                case NormalizerAddDummyPrefix: addDummyPrefix = normalizer.Varint() != 0; break;
                                case NormalizerRemoveExtraWhitespaces: removeExtraWhitespaces = normalizer.Varint() != 0; break;
                                case NormalizerEscapeWhitespaces: escapeWhitespaces = normalizer.Varint() != 0; break;
                                default: normalizer.Skip(w); break;
                            }
                        }
                        break;
                    default:
                        model.Skip(wire);
                        break;
                }
            }
        }
        catch (FormatException e)
        {
            throw new UserError($"{path}: not a valid SentencePiece model (protobuf ModelProto): {e.Message}");
        }

        if (tokens.Count == 0) throw new UserError($"{path}: SentencePiece model has no pieces; expected a ModelProto with a vocabulary");
        if (modelType != ModelTypeBpe)
            throw new UserError($"{path}: SentencePiece model type {modelType} is not supported; expected BPE (2), as Llama-2 and llama2.c models use");
        if (hasCharsMap || normalizerName != "identity")
            throw new UserError($"{path}: SentencePiece normaliser '{normalizerName}' is not supported; expected 'identity' with no character map");
        if (treatWhitespaceAsSuffix || !escapeWhitespaces)
            throw new UserError($"{path}: SentencePiece models with treat_whitespace_as_suffix or without escape_whitespaces are not supported");

        int? Id(int id) => id >= 0 && id < tokens.Count ? id : null;
        var vocab = new TokenizerVocabulary("llama", tokens.ToArray(), scores.ToArray(), types.ToArray(), [],
            Id(bosId), Id(eosId), Id(unkId), Id(padId), AddBos: true, PreTokenizer: "default",
            AddEos: false, AddSpacePrefix: addDummyPrefix, RemoveExtraWhitespaces: removeExtraWhitespaces);
        return SentencePieceVocabulary.Build(vocab, byteFallback, path);
    }

    /// <summary>Just enough protobuf: varints, 32-bit floats, length-delimited fields; anything malformed throws FormatException.</summary>
    private ref struct ProtoReader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _at;

        public bool Next(out int field, out int wire)
        {
            field = wire = 0;
            if (_at >= _data.Length) return false;
            ulong key = Varint();
            field = (int)(key >> 3);
            wire = (int)(key & 7);
            if (field == 0) throw new FormatException($"field number 0 at byte {_at}");
            return true;
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_at >= _data.Length) throw new FormatException("file ends inside a varint");
                byte b = _data[_at++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return value;
            }
            throw new FormatException("varint longer than 10 bytes");
        }

        public float Float32() => BitConverter.Int32BitsToSingle(System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(Take(4)));

        public ReadOnlySpan<byte> Bytes()
        {
            ulong length = Varint();
            if (length > (ulong)(_data.Length - _at)) throw new FormatException($"a field of {length} bytes runs past the end at byte {_at}");
            return Take((int)length);
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: Take(8); break;
                case 2: Bytes(); break;
                case 5: Take(4); break;
                default: throw new FormatException($"unsupported protobuf wire type {wire} at byte {_at}");
            }
        }

        private ReadOnlySpan<byte> Take(int n)
        {
            if (n > _data.Length - _at) throw new FormatException($"file ends inside a field at byte {_at}");
            var span = _data.Slice(_at, n);
            _at += n;
            return span;
        }
    }
}

/// <summary>Builds SentencePiece tokenizers from plain vocabularies (the .model, tokenizer.bin, .vocab and GGUF paths).</summary>
internal static class SentencePieceVocabulary
{
    public static SentencePieceBpeTokenizer Build(TokenizerVocabulary vocab, bool byteFallback, string source)
    {
        if (vocab.Tokens.Length != vocab.Scores.Length || vocab.Tokens.Length != vocab.TokenTypes.Length)
            throw new UserError($"{source}: tokens, scores and token types differ in length ({vocab.Tokens.Length}, {vocab.Scores.Length}, {vocab.TokenTypes.Length})");
        var options = new SentencePieceBpeTokenizer.Options(
            vocab.AddSpacePrefix ? SentencePieceBpeTokenizer.DummyPrefix.Always : SentencePieceBpeTokenizer.DummyPrefix.None,
            vocab.RemoveExtraWhitespaces, SplitAtMetaspace: false, MergeByRank: vocab.Merges.Length > 0,
            ByteFallback: byteFallback, FuseUnknown: true);
        // SentencePiece matches user-defined pieces in the text as whole symbols and control pieces never; a
        // vocabulary with merges came from Hugging Face, which also recognises its special (control) tokens in text.
        bool fromHuggingFace = vocab.Merges.Length > 0;
        var matched = Enumerable.Range(0, vocab.Tokens.Length)
            .Where(id => vocab.TokenTypes[id] == TokenType.UserDefined || (fromHuggingFace && vocab.TokenTypes[id] == TokenType.Control))
            .Select(id => new AddedTokenSplitter.AddedToken(vocab.Tokens[id], id));
        return new SentencePieceBpeTokenizer(vocab, options, matched, source);
    }

    /// <summary>Token types for vocabularies that carry none (llama2.c tokenizer.bin, .vocab): SentencePiece's layout,
    /// id 0 unknown, 1-2 control (BOS/EOS), &lt;0xXX&gt; byte pieces, the rest normal.</summary>
    public static int[] InferTypes(string[] tokens)
    {
        var types = new int[tokens.Length];
        for (int id = 0; id < tokens.Length; id++)
            types[id] = id == 0 ? TokenType.Unknown
                : id <= 2 ? TokenType.Control
                : SentencePieceBpeTokenizer.TryParseBytePiece(tokens[id], out _) ? TokenType.Byte
                : TokenType.Normal;
        return types;
    }
}
