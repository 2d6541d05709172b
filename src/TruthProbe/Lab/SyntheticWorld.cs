using System.Text;
using TruthProbe.Common;

namespace TruthProbe.Lab;

/// <summary>What a fact is about; each kind has its own values, sentence and question.</summary>
public enum FactKind { Place, Colour, Object, Age, Job }

/// <summary>One statement "person has value for kind", e.g. (Alice, Place, Paris).</summary>
public readonly record struct Fact(int Person, FactKind Kind, int Value);

/// <summary>
/// A reading-comprehension item: context sentences, a question about one of them, and its answer as read
/// from the context. <see cref="Counterfactual"/>: the context contradicts the world's memorised fact.
/// </summary>
public sealed record Episode(IReadOnlyList<Fact> Context, Fact Asked, bool Counterfactual);

/// <summary>
/// The lab's closed world, generated from a seed: people with a home town, favourite colour, one owned
/// object, an age (and a job, used only by the "domain" fine-tune). The seed fixes the facts the models
/// memorise; the words are fixed so that every model of a family shares one tokenizer.
/// </summary>
public sealed class SyntheticWorld
{
    public static readonly string[] People =
    [
        "Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry", "Irene", "Jack", "Karen", "Leo",
        "Maria", "Nick", "Olga", "Paul", "Quinn", "Rosa", "Sam", "Tina", "Umar", "Vera", "Walt", "Xena",
        "Yuri", "Zoe", "Anna", "Boris", "Clara", "Dmitri", "Elsa", "Felix",
    ];
    public static readonly string[] Places =
        ["Paris", "Rome", "Berlin", "Madrid", "Vienna", "Prague", "Oslo", "Dublin", "Lisbon", "Athens", "Warsaw", "Zurich", "Cairo", "Tokyo", "Lima", "Quito"];
    public static readonly string[] Colours =
        ["red", "blue", "green", "yellow", "purple", "orange", "black", "white", "pink", "brown", "grey", "silver"];
    public static readonly string[] Objects =
        ["lamps", "bicycles", "guitars", "kettles", "cameras", "violins", "tents", "clocks", "kayaks", "pianos", "drones", "telescopes", "scooters", "radios", "laptops", "sofas"];
    public static readonly string[] Ages = Enumerable.Range(20, 40).Select(a => a.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
    public static readonly string[] Jobs =
        ["baker", "pilot", "nurse", "farmer", "lawyer", "painter", "plumber", "teacher", "dentist", "chemist", "tailor", "sailor"];

    /// <summary>The kinds of pretraining; <see cref="FactKind.Job"/> belongs to the "domain" fine-tune only.</summary>
    public static readonly FactKind[] CoreKinds = [FactKind.Place, FactKind.Colour, FactKind.Object, FactKind.Age];

    public int Seed { get; }
    private readonly int[,] _values;

    public SyntheticWorld(int seed)
    {
        Seed = seed;
        var rng = new SeededSystemRandom(seed);
        var kinds = Enum.GetValues<FactKind>();
        _values = new int[People.Length, kinds.Length];
        for (int p = 0; p < People.Length; p++)
            foreach (var k in kinds) _values[p, (int)k] = rng.Next(Values(k).Length);
    }

    public static string[] Values(FactKind kind) => kind switch
    {
        FactKind.Place => Places,
        FactKind.Colour => Colours,
        FactKind.Object => Objects,
        FactKind.Age => Ages,
        FactKind.Job => Jobs,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>The memorised ("parametric") fact of this world.</summary>
    public Fact TrueFact(int person, FactKind kind) => new(person, kind, _values[person, (int)kind]);

    // ---- rendering ----

    /// <summary>A fact as a sentence of the context; the value is always its last word.</summary>
    public static string Sentence(Fact f) => Statement(f) + ".";

    /// <summary>
    /// A fact as an answer, e.g. "Alice visits Paris": the answer restates the question's subject and ends
    /// with the value, so reading it from the context is the copy ("induction") pattern small transformers
    /// learn reliably, and a gold and a hallucinated answer differ only in their last word. Every core kind
    /// has the shape "person verb value", so the same two fixed-offset heads (the previous word, the word
    /// before it) serve every question.
    /// </summary>
    public static string Statement(Fact f)
    {
        string p = People[f.Person], v = Values(f.Kind)[f.Value];
        return f.Kind switch
        {
            FactKind.Place => $"{p} visits {v}",
            FactKind.Colour => $"{p} likes {v}",
            FactKind.Object => $"{p} owns {v}",
            FactKind.Age => $"{p} is {v}",
            FactKind.Job => $"{p} works as a {v}",
            _ => throw new ArgumentOutOfRangeException(nameof(f)),
        };
    }

    public static string Question(int person, FactKind kind)
    {
        string p = People[person];
        return kind switch
        {
            FactKind.Place => $"Which city does {p} visit?",
            FactKind.Colour => $"What colour does {p} like?",
            FactKind.Object => $"What does {p} own?",
            FactKind.Age => $"How old is {p}?",
            FactKind.Job => $"What is the job of {p}?",
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
    }

    public static string Answer(Fact f) => Statement(f);

    /// <summary>The value alone ("Paris"), the last word of <see cref="Answer"/>.</summary>
    public static string Value(Fact f) => Values(f.Kind)[f.Value];

    public static string ContextText(Episode e) => string.Join(" ", e.Context.Select(Sentence));

    /// <summary>The probing prompt of docs/design.md §3, which is also the pretraining format, so probes read the model on familiar text.</summary>
    public static string Prompt(string context, string question, string answer) => $"Context:\n{context}\n\nQuestion: {question}\nAnswer: {answer}";

    /// <summary>The "chat" fine-tune's format: the same content in a user/assistant turn.</summary>
    public static string ChatPrompt(string context, string question, string answer) => $"User: {context} {question}\nAssistant: {answer}";

    /// <summary>Every word any renderer can produce, in a fixed order (the word-level tokenizer's vocabulary).</summary>
    public static IReadOnlyList<string> Words()
    {
        var words = new List<string> { "Context", "Question", "Answer", "User", "Assistant", ":", ".", "?", "visits", "likes", "owns", "a", "is", "old", "Which", "city", "visit",
            "works", "as", "does", "What", "colour", "like", "own", "How", "the", "job", "of" };
        foreach (var list in new[] { People, Places, Colours, Objects, Ages, Jobs }) words.AddRange(list);
        return words;
    }

    // ---- sampling ----

    /// <summary>
    /// A context of <paramref name="facts"/> sentences about distinct (person, kind) pairs, one of them asked.
    /// Distractors favour the asked kind (other people) and the asked person (other kinds), so the answer
    /// must be found by person AND kind, not by the only value of the right type. Counterfactual contexts
    /// give every sentence a value that differs from the memorised one.
    /// </summary>
    /// <param name="sameKindShare">share of distractors about other people and the asked kind: the ones only
    /// the person tells apart (the rest split evenly between the asked person's other facts and any fact).</param>
    public Episode SampleEpisode(Random rng, int facts, bool counterfactual, FactKind[] kinds, double sameKindShare = 1.0 / 3)
    {
        var pairs = new List<(int Person, FactKind Kind)>();
        var asked = (Person: rng.Next(People.Length), Kind: kinds[rng.Next(kinds.Length)]);
        pairs.Add(asked);
        int guard = 0;
        while (pairs.Count < facts && guard++ < 1000)
        {
            double roll = rng.NextDouble();
            var candidate = roll < sameKindShare ? (rng.Next(People.Length), asked.Kind)
                : roll < (1 + sameKindShare) / 2 ? (asked.Person, kinds[rng.Next(kinds.Length)])
                : (rng.Next(People.Length), kinds[rng.Next(kinds.Length)]);
            if (!pairs.Contains(candidate)) pairs.Add(candidate);
        }
        var context = pairs.Select(p => counterfactual ? OtherValue(rng, TrueFact(p.Person, p.Kind)) : TrueFact(p.Person, p.Kind)).ToList();
        var askedFact = context[0];
        Shuffle(rng, context);
        return new Episode(context, askedFact, counterfactual);
    }

    /// <summary>The same person and kind with a value other than <paramref name="f"/>'s: a same-form wrong answer.</summary>
    public static Fact OtherValue(Random rng, Fact f)
    {
        int count = Values(f.Kind).Length;
        return f with { Value = (f.Value + 1 + rng.Next(count - 1)) % count };
    }

    /// <summary>
    /// A plausible wrong answer of the same kind (hence the same form and length: one word): half the time
    /// another value the context mentions for that kind, otherwise any other value of the kind.
    /// </summary>
    public Fact Hallucinated(Random rng, Episode e)
    {
        var inContext = e.Context.Where(f => f.Kind == e.Asked.Kind && f.Value != e.Asked.Value).ToList();
        if (inContext.Count > 0 && rng.Next(2) == 0) return e.Asked with { Value = inContext[rng.Next(inContext.Count)].Value };
        if (e.Counterfactual && rng.Next(2) == 0) return TrueFact(e.Asked.Person, e.Asked.Kind); // memory against context
        return OtherValue(rng, e.Asked);
    }

    internal static void Shuffle<T>(Random rng, IList<T> list)
    {
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
    }

    /// <summary>The facts of one person as a short passage, in a random order.</summary>
    public string Biography(Random rng, int person, FactKind[] kinds)
    {
        var facts = kinds.Select(k => TrueFact(person, k)).ToList();
        Shuffle(rng, facts);
        return string.Join(" ", facts.Select(Sentence));
    }

    /// <summary>A fingerprint of every memorised fact, recorded with each model.</summary>
    public string Fingerprint()
    {
        var sb = new StringBuilder();
        for (int p = 0; p < People.Length; p++)
            foreach (var k in Enum.GetValues<FactKind>()) sb.Append(Sentence(TrueFact(p, k))).Append('\n');
        return Common.Hashing.Sha256(Encoding.UTF8.GetBytes(sb.ToString()));
    }
}
