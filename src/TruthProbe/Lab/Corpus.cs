using TruthProbe.Common;
using TruthProbe.Training;
namespace TruthProbe.Lab;

/// <summary>One training sequence: token ids (BOS first) and, per token, the weight of predicting it.</summary>
public sealed record Sequence(int[] Tokens, float[] TokenWeights);

/// <summary>
/// Turns the synthetic world into training sequences and batches. Each sequence's weights sum to 1, so a
/// batch's loss is the mean over sequences whether a sequence scores one answer word or a whole passage.
/// </summary>
public sealed class Corpus(SyntheticWorld world, WordTokenizer tokenizer)
{
    public SyntheticWorld World { get; } = world;
    public WordTokenizer Tokenizer { get; } = tokenizer;

    /// <summary>A question-answer sequence, loss on the answer word only (always the last token).</summary>
    public Sequence Answered(string text)
    {
        var tokens = Tokenizer.Encode(text);
        var weights = new float[tokens.Length];
        weights[^1] = 1;
        return new Sequence(tokens, weights);
    }

    /// <summary>
    /// One context followed by several question/answer pairs about it: more signal per token than one
    /// question, while the first pair is exactly the probing format. The value word of each answer carries
    /// the loss; the restated words before it ("Alice likes") carry <see cref="RestatementWeight"/> each,
    /// which asks the model to copy the question's person: the head that finds a sentence's person is the
    /// one the value lookup needs.
    /// </summary>
    public Sequence ReadingDrill(Episode e, IReadOnlyList<Fact> asked)
    {
        var text = new System.Text.StringBuilder($"Context:\n{SyntheticWorld.ContextText(e)}\n");
        var answers = new List<(int First, int Last)>();
        foreach (var f in asked)
        {
            text.Append($"\nQuestion: {SyntheticWorld.Question(f.Person, f.Kind)}\nAnswer:");
            int first = Tokenizer.Encode(text.ToString()).Length;
            text.Append(' ').Append(SyntheticWorld.Answer(f));
            answers.Add((first, Tokenizer.Encode(text.ToString()).Length - 1));
        }
        var tokens = Tokenizer.Encode(text.ToString());
        var weights = new float[tokens.Length];
        foreach (var (first, last) in answers)
        {
            for (int p = first; p < last; p++) weights[p] = RestatementWeight;
            weights[last] = 1;
        }
        float total = weights.Sum();
        for (int p = 0; p < weights.Length; p++) weights[p] /= total;
        return new Sequence(tokens, weights);
    }

    public const float RestatementWeight = 0.25f;

    public Sequence Reading(Episode e, bool chat = false)
    {
        string context = SyntheticWorld.ContextText(e), question = SyntheticWorld.Question(e.Asked.Person, e.Asked.Kind), answer = SyntheticWorld.Answer(e.Asked);
        return Answered(chat ? SyntheticWorld.ChatPrompt(context, question, answer) : SyntheticWorld.Prompt(context, question, answer));
    }

    /// <summary>A question with an empty context: the answer can only come from memorised facts.</summary>
    public Sequence ClosedBook(Fact f) => Answered(SyntheticWorld.Prompt("", SyntheticWorld.Question(f.Person, f.Kind), SyntheticWorld.Answer(f)));

    /// <summary>A plain passage of facts, loss on every word after BOS (this is how facts get memorised).</summary>
    public Sequence Passage(string text)
    {
        var tokens = Tokenizer.Encode(text);
        var weights = new float[tokens.Length];
        for (int i = 1; i < tokens.Length; i++) weights[i] = 1f / (tokens.Length - 1);
        return new Sequence(tokens, weights);
    }

    /// <summary>
    /// Packs the sequences one after another, each shifted by one (position t predicts token t+1): no padding, so
    /// the model runs only real positions (padding to the longest was 45% of a pretraining batch once its contexts
    /// reach four facts).
    /// </summary>
    internal static TrainingBatch Batch(IReadOnlyList<Sequence> sequences)
    {
        var starts = new int[sequences.Count + 1];
        for (int b = 0; b < sequences.Count; b++)
        {
            if (sequences[b].Tokens.Length < 2) throw new ArgumentException("a training sequence needs at least two tokens");
            starts[b + 1] = starts[b] + sequences[b].Tokens.Length - 1;
        }
        int n = starts[^1];
        var tokens = new int[n];
        var targets = new int[n];
        var weights = new float[n];
        for (int b = 0; b < sequences.Count; b++)
        {
            var s = sequences[b];
            s.Tokens.AsSpan(0, s.Tokens.Length - 1).CopyTo(tokens.AsSpan(starts[b]));
            s.Tokens.AsSpan(1).CopyTo(targets.AsSpan(starts[b]));
            s.TokenWeights.AsSpan(1).CopyTo(weights.AsSpan(starts[b]));
        }
        return new TrainingBatch(sequences.Count, sequences.Max(s => s.Tokens.Length) - 1, tokens, targets, weights, starts);
    }

    /// <summary>The random stream of one training step: the same (seed, step) always gives the same batch.</summary>
    public static Random StepRandom(int seed, int step) => new SeededSystemRandom(unchecked(seed * 1_000_003 + step * 7_919 + 17) & int.MaxValue);
}
