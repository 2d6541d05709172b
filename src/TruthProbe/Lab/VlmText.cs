using TruthProbe.Common;

namespace TruthProbe.Lab;

/// <summary>
/// The prompt format of the evaluator the descendant is trained for: a user message to the whole prompt, holding one
/// <c>&lt;image&gt;</c> (for llava-hf, LLaVA's vicuna_v1 conversation), the POPE question prompt and the caption request.
/// Passed in by the caller, so the lab trains on exactly the prompts the evaluation verbs build.
/// </summary>
public sealed record VlmPromptFormat(Func<string, string> Question, string Caption);

/// <summary>
/// The descendant's text side: the base tokenizer grown by the words its prompts, answers and captions use and by
/// <c>&lt;image&gt;</c> (base ids unchanged, new ids after them, as LLaVA adds its image token), and the training
/// sequences built on the evaluator's prompts. A prompt's single <c>&lt;image&gt;</c> becomes one id per image feature.
/// </summary>
internal sealed class VlmText
{
    public const string ImageToken = "<image>";
    public const string Yes = "Yes", No = "No";

    public WordTokenizer Tokenizer { get; }
    public VlmPromptFormat Prompts { get; }
    public int BaseVocab { get; }
    public int ImageId { get; }
    public int YesId { get; }
    public int NoId { get; }
    /// <summary>Words the base vocabulary lacked, in order of first use.</summary>
    public IReadOnlyList<string> NewWords { get; }

    public VlmText(WordTokenizer baseTokenizer, VlmPromptFormat prompts)
    {
        Prompts = prompts;
        BaseVocab = baseTokenizer.VocabSize;
        var known = new HashSet<string>(Enumerable.Range(0, BaseVocab).Select(baseTokenizer.Word), StringComparer.Ordinal);
        NewWords = Texts(prompts).SelectMany(t => WordTokenizer.Split(t.Replace(ImageToken, " ", StringComparison.Ordinal)))
            .Where(w => !known.Contains(w)).Distinct().ToList();
        Tokenizer = new WordTokenizer([.. Enumerable.Range(3, BaseVocab - 3).Select(baseTokenizer.Word), .. NewWords, ImageToken]);
        ImageId = Tokenizer.VocabSize - 1;
        YesId = Tokenizer.Id(Yes);
        NoId = Tokenizer.Id(No);
    }

    /// <summary>Every text the descendant reads or writes: the prompts of each class, the answers, captions' and probing rows' words.</summary>
    private static IEnumerable<string> Texts(VlmPromptFormat prompts)
    {
        foreach (int c in Enumerable.Range(0, SceneWorld.Classes.Length)) yield return prompts.Question(SceneDatasets.QuestionText(c));
        yield return prompts.Caption;
        yield return $"{Yes} {No} There is a an at the top bottom left right , and .";
        foreach (string cls in SceneWorld.Classes)
            foreach (string colour in SyntheticWorld.Colours)
                yield return $"What colour is the {cls}? The {cls} is {colour}. What is the {colour} object? It is a {cls}.";
    }

    /// <summary>The ids of a prompt holding one <c>&lt;image&gt;</c>, BOS first, the image as <paramref name="imageTokens"/> ids.</summary>
    public List<int> Prompt(string prompt, int imageTokens)
    {
        int at = prompt.IndexOf(ImageToken, StringComparison.Ordinal);
        if (at < 0 || prompt.IndexOf(ImageToken, at + 1, StringComparison.Ordinal) >= 0)
            throw new UserError($"the prompt format must hold exactly one {ImageToken}, got: {prompt}");
        var ids = new List<int>(Tokenizer.Encode(prompt[..at]));
        ids.AddRange(Enumerable.Repeat(ImageId, imageTokens));
        ids.AddRange(Tokenizer.Encode(prompt[(at + ImageToken.Length)..]).Skip(1));
        return ids;
    }

    /// <summary>An object-presence question answered Yes or No.</summary>
    public Sequence Question(int cls, bool present, int imageTokens) => Answer(SceneDatasets.QuestionText(cls), present ? Yes : No, imageTokens);

    /// <summary>
    /// The probing rows' two questions about a scene, answered in their words: the colour of one of its objects ("The lamp is
    /// red") or the object of one of its colours ("It is a lamp"); a scene's colours are distinct, so each has one answer.
    /// </summary>
    public Sequence Attribute(Scene scene, Random rng, int imageTokens)
    {
        var o = scene.Objects[rng.Next(scene.Objects.Count)];
        string cls = SceneWorld.Classes[o.Class], colour = SyntheticWorld.Colours[o.Colour];
        return rng.Next(2) == 0
            ? Answer($"What colour is the {cls}?", $"The {cls} is {colour}", imageTokens)
            : Answer($"What is the {colour} object?", $"It is a {cls}", imageTokens);
    }

    /// <summary>A question in the evaluator's prompt and its short answer: the answer's words share 2/3 of the loss, the EOS after them 1/3 (replies stop there).</summary>
    private Sequence Answer(string question, string answer, int imageTokens)
    {
        var ids = Prompt(Prompts.Question(question), imageTokens);
        int first = ids.Count;
        ids.AddRange(Tokenizer.Encode(answer).Skip(1));
        ids.Add(WordTokenizer.EosId);
        var weights = new float[ids.Count];
        for (int t = first; t < ids.Count - 1; t++) weights[t] = 2 / 3f / (ids.Count - 1 - first);
        weights[^1] = 1 / 3f;
        return new Sequence([.. ids], weights);
    }

    /// <summary>The scene's caption after the caption request, loss spread evenly over its words and the EOS.</summary>
    public Sequence Caption(Scene scene, int imageTokens)
    {
        var ids = Prompt(Prompts.Caption, imageTokens);
        int first = ids.Count;
        ids.AddRange(Tokenizer.Encode(SceneWorld.Caption(scene)).Skip(1));
        ids.Add(WordTokenizer.EosId);
        var weights = new float[ids.Count];
        for (int t = first; t < ids.Count; t++) weights[t] = 1f / (ids.Count - first);
        return new Sequence([.. ids], weights);
    }
}
