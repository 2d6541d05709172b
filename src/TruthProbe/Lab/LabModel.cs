using TruthProbe.Lineage;
using TruthProbe.Model;
using TruthProbe.Tokenizers;

namespace TruthProbe.Lab;

/// <summary>
/// A lab checkpoint as the engine runs it, with its own word-level tokenizer attached: the engine's
/// tokenizer loaders read BPE tokenizer.json files only (docs/lab.md, known gaps), so the lab supplies
/// the tokenizer it wrote, and every probing and evaluation path of the engine then works unchanged.
/// </summary>
public static class LabModel
{
    public static Transformer Load(string dir)
    {
        var words = WordTokenizer.Load(dir);
        var model = WeightDrift.LoadWeights(dir);
        return new Transformer(model.Config, model.Weights, model.Source, model.Format, [model]) { Tokenizer = new LabTokenizer(words) };
    }
}

/// <summary>
/// <see cref="WordTokenizer"/> behind the engine's tokenizer interface: BOS added, no EOS, words joined by
/// single spaces when decoding (the lab's punctuation is separate words).
/// </summary>
public sealed class LabTokenizer(WordTokenizer words) : ITokenizer
{
    public string Kind => "word-level";
    public int VocabSize => words.VocabSize;
    public int? BosId => WordTokenizer.BosId;
    public int? EosId => WordTokenizer.EosId;
    public bool AddsBos => true;

    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        try
        {
            int[] ids = words.Encode(text);
            return addSpecialTokens ? ids : ids[1..];
        }
        catch (ArgumentException e)
        {
            throw new Common.UserError($"lab tokenizer: {e.Message}; lab models read only the synthetic world's words");
        }
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        var parts = new List<string>();
        foreach (int id in ids)
            if (id > WordTokenizer.EosId) parts.Add(words.Word(id));
        return string.Join(' ', parts);
    }

    public string TokenText(int id) => words.Word(id);

    public TokenizerVocabulary Vocabulary
    {
        get
        {
            var tokens = Enumerable.Range(0, VocabSize).Select(words.Word).ToArray();
            var types = tokens.Select((_, i) => i == WordTokenizer.UnknownId ? TokenType.Unknown : i <= WordTokenizer.EosId ? TokenType.Control : TokenType.Normal).ToArray();
            return new TokenizerVocabulary("word-level", tokens, new float[tokens.Length], types, [], BosId, EosId, WordTokenizer.UnknownId, null,
                AddBos: true, PreTokenizer: "whitespace", AddSpacePrefix: false);
        }
    }
}
