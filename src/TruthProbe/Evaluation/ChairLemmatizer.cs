namespace TruthProbe.Evaluation;

/// <summary>
/// The lemma CHAIR's reference gives a lower-cased word, for the words that matter to CHAIR (the COCO
/// vocabulary and the parts of its two-word phrases). The reference (OPERA / "Less is More" chair.py) tags
/// each word with NLTK's perceptron POS tagger and lemmatises it with WordNet's <c>morphy</c> for that part
/// of speech, taking the shortest candidate WordNet knows; words with no candidate stay as they are.
/// <para>
/// Nouns: morphy's exception list and suffix rules are applied here with "WordNet knows it" replaced by
/// "it is a vocabulary word WordNet 3.0 lists as a noun" - the only lemmas that can change a CHAIR result.
/// Vocabulary words WordNet lacks (<see cref="NotWordNetNouns"/>) therefore match only as written, as in
/// the reference ("bikers" and "smartphones" are not objects there).
/// </para>
/// <para>
/// Verbs: without the tagger, verb forms whose verb lemma is a vocabulary word are looked up in
/// <see cref="VerbForms"/> ("seated" -> seat -> chair, "skiing" -> ski -> skis, "tied" -> tie). An "-ing"
/// form is taken as a noun, as the tagger usually decides, directly after a determiner or possessive ("the
/// skiing", "a seating area") and when it modifies the word after it ("skiing equipment", "snowboarding
/// outfit"): that is, when the next word is no punctuation, preposition, particle, conjunction or adverb
/// ("skiing down", "skiing together"). What stays different: the tagger's other context-dependent choices;
/// see docs/evaluation.md.
/// </para>
/// </summary>
public sealed class ChairLemmatizer
{
    /// <summary>WordNet 3.0 noun suffix rules (morphy), in WordNet's order.</summary>
    private static readonly (string Suffix, string Ending)[] NounRules =
    [
        ("s", ""), ("ses", "s"), ("ves", "f"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"), ("ies", "y"),
    ];

    /// <summary>WordNet 3.0 noun.exc entries whose lemma is a CHAIR vocabulary word.</summary>
    private static readonly Dictionary<string, string> NounExceptions = new(StringComparer.Ordinal)
    {
        ["buffaloes"] = "buffalo", ["busses"] = "bus", ["calves"] = "calf", ["children"] = "child",
        ["flamingoes"] = "flamingo", ["geese"] = "goose", ["grandchildren"] = "grandchild", ["knives"] = "knife",
        ["men"] = "man", ["mice"] = "mouse", ["oxen"] = "ox", ["pocketknives"] = "pocketknife", ["taxies"] = "taxi",
        ["thieves"] = "thief",
    };

    /// <summary>Vocabulary words (or phrase parts) that WordNet 3.0 has no noun entry for.</summary>
    private static readonly HashSet<string> NotWordNetNouns = new(StringComparer.Ordinal)
    {
        "biker", "bluejay", "brindle", "children", "coworker", "firetruck", "glas", "hairdryer", "hot", "iphone",
        "knive", "lenovo", "longboard", "macbook", "netbook", "paddleboat", "pitbull", "potted", "riverboat",
        "sailboard", "shortboard", "skimboard", "skis", "smartphone", "solider", "sports", "stovetop", "teddybear",
        "televison",
    };

    /// <summary>
    /// WordNet 3.0 nouns outside the vocabulary that morphy prefers to a vocabulary lemma: "men" is itself a
    /// noun there (so "men" is no person in the reference), "vases" -> "vas", "sports" -> "sport".
    /// </summary>
    private static readonly HashSet<string> OtherWordNetNouns = new(StringComparer.Ordinal) { "men", "vas", "sport" };

    /// <summary>Verb forms the tagger marks as verbs whose WordNet verb lemma is a vocabulary word.</summary>
    private static readonly Dictionary<string, string> VerbForms = new(StringComparer.Ordinal)
    {
        ["seated"] = "seat", ["skiing"] = "ski", ["skied"] = "ski", ["tied"] = "tie", ["tying"] = "tie",
        ["biking"] = "bike", ["biked"] = "bike", ["skateboarding"] = "skateboard", ["skateboarded"] = "skateboard",
        ["snowboarding"] = "snowboard", ["snowboarded"] = "snowboard", ["kayaking"] = "kayak", ["kayaked"] = "kayak",
        ["canoeing"] = "canoe", ["canoed"] = "canoe", ["boating"] = "boat", ["groomed"] = "groom", ["grooming"] = "groom",
        ["bowed"] = "bow", ["bowing"] = "bow", ["manned"] = "man", ["manning"] = "man", ["sandwiched"] = "sandwich",
        ["sank"] = "sink", ["sunk"] = "sink", ["sinking"] = "sink", ["bore"] = "bear", ["borne"] = "bear", ["bearing"] = "bear",
        ["bowling"] = "bowl",
        ["trained"] = "train", ["ferried"] = "ferry", ["ferrying"] = "ferry", ["shipped"] = "ship",
        ["phoned"] = "phone", ["phoning"] = "phone", ["monitored"] = "monitor", ["booked"] = "book",
        ["microwaved"] = "microwave", ["bottled"] = "bottle", ["cupped"] = "cup", ["kidding"] = "kid",
    };

    private static readonly HashSet<string> NounIntroducers = new(StringComparer.Ordinal)
    {
        "a", "an", "the", "this", "that", "these", "those", "his", "her", "their", "its", "our", "my", "your", "some", "any",
    };

    /// <summary>Words after which an "-ing" form still reads as a verb (it does not modify them).</summary>
    private static readonly HashSet<string> VerbContinuations = new(StringComparer.Ordinal)
    {
        "about", "across", "after", "against", "along", "alongside", "and", "around", "as", "at", "away", "back",
        "before", "behind", "below", "beneath", "beside", "between", "but", "by", "closer", "down", "downhill",
        "during", "for", "from", "here", "in", "inside", "into", "like", "more", "near", "nearby", "next", "nor",
        "of", "off", "on", "onto", "or", "out", "outside", "over", "past", "there", "through", "to", "together",
        "toward", "towards", "under", "up", "uphill", "while", "with", "within", "without",
    };

    private readonly HashSet<string> _wordNetNouns;

    /// <param name="vocabulary">the single words CHAIR looks for: synonyms and parts of two-word phrases.</param>
    public ChairLemmatizer(IEnumerable<string> vocabulary)
    {
        _wordNetNouns = new HashSet<string>(vocabulary.Where(w => !NotWordNetNouns.Contains(w)).Concat(OtherWordNetNouns), StringComparer.Ordinal);
    }

    /// <param name="word">lower-cased token.</param>
    /// <param name="previous">the token before it (lower-cased), or null at the start.</param>
    /// <param name="next">the token after it (lower-cased), or null at the end.</param>
    public string Lemma(string word, string? previous, string? next)
    {
        if (VerbForms.TryGetValue(word, out string? verb) && !(word.EndsWith("ing", StringComparison.Ordinal) && ReadsAsNoun(previous, next)))
            return verb;
        return NounLemma(word);
    }

    private static bool ReadsAsNoun(string? previous, string? next) =>
        (previous != null && NounIntroducers.Contains(previous)) ||
        (next != null && char.IsLetter(next[0]) && !next.EndsWith("ly", StringComparison.Ordinal) && !VerbContinuations.Contains(next));

    /// <summary>WordNet morphy for nouns, restricted to vocabulary lemmas; the word itself when none applies.</summary>
    public string NounLemma(string word)
    {
        if (NounExceptions.TryGetValue(word, out string? exception))
            return Shortest(_wordNetNouns.Contains(word) ? word : null, _wordNetNouns.Contains(exception) ? exception : null) ?? word;
        string? best = _wordNetNouns.Contains(word) ? word : null;
        foreach (var (suffix, ending) in NounRules)
        {
            if (!word.EndsWith(suffix, StringComparison.Ordinal)) continue;
            string candidate = string.Concat(word.AsSpan(0, word.Length - suffix.Length), ending);
            if (_wordNetNouns.Contains(candidate)) best = Shortest(best, candidate);
        }
        return best ?? word;
    }

    private static string? Shortest(string? a, string? b) =>
        a == null ? b : b == null ? a : b.Length < a.Length ? b : a;
}
