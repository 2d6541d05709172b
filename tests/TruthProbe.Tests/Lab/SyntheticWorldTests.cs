using System.Text.Json.Nodes;
using TruthProbe.Lab;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Lab;

public class SyntheticWorldTests
{
    private static readonly WordTokenizer Tokenizer = WordTokenizer.ForWorld();

    [Fact]
    public void Episodes_AreAnswerableFromTheContext_ByPersonAndKind()
    {
        var world = new SyntheticWorld(3);
        var rng = new Random(4);
        int distractorsOfAskedKind = 0;
        for (int i = 0; i < 500; i++)
        {
            var e = world.SampleEpisode(rng, 1 + i % Recipe.MaxFacts, counterfactual: i % 2 == 0, SyntheticWorld.CoreKinds);
            Assert.Equal(1 + i % Recipe.MaxFacts, e.Context.Count);
            Assert.Single(e.Context, f => f.Person == e.Asked.Person && f.Kind == e.Asked.Kind);
            Assert.Contains(e.Asked, e.Context);
            distractorsOfAskedKind += e.Context.Count(f => f.Kind == e.Asked.Kind && f.Person != e.Asked.Person);
        }
        Assert.True(distractorsOfAskedKind > 300, "contexts must hold other people's facts of the asked kind, or the task is trivial");
    }

    [Fact]
    public void CounterfactualContexts_ContradictEveryMemorisedFact()
    {
        var world = new SyntheticWorld(5);
        var rng = new Random(6);
        for (int i = 0; i < 200; i++)
        {
            var cf = world.SampleEpisode(rng, Recipe.MaxFacts, counterfactual: true, SyntheticWorld.CoreKinds);
            Assert.All(cf.Context, f => Assert.NotEqual(world.TrueFact(f.Person, f.Kind).Value, f.Value));
            var real = world.SampleEpisode(rng, Recipe.MaxFacts, counterfactual: false, SyntheticWorld.CoreKinds);
            Assert.All(real.Context, f => Assert.Equal(world.TrueFact(f.Person, f.Kind), f));
        }
    }

    [Fact]
    public void EveryRenderedText_UsesOnlyTheClosedVocabulary_AndSplitsLikeHfWhitespace()
    {
        var world = new SyntheticWorld(7);
        var rng = new Random(8);
        foreach (var kind in Enum.GetValues<FactKind>())
        {
            var e = world.SampleEpisode(rng, Recipe.MaxFacts, false, [kind]);
            string context = SyntheticWorld.ContextText(e), question = SyntheticWorld.Question(e.Asked.Person, kind), answer = SyntheticWorld.Answer(e.Asked);
            Tokenizer.Encode(SyntheticWorld.Prompt(context, question, answer));
            Tokenizer.Encode(SyntheticWorld.ChatPrompt(context, question, answer));
            Tokenizer.Encode(world.Biography(rng, 0, Enum.GetValues<FactKind>()));
        }
        // \w+|[^\w\s]+ : punctuation splits off words, newlines vanish, BOS first.
        var ids = Tokenizer.Encode("Context:\nAlice is 42.\n\nAnswer: Rome");
        Assert.Equal(["<s>", "Context", ":", "Alice", "is", "42", ".", "Answer", ":", "Rome"], ids.Select(Tokenizer.Word));
        Assert.Throws<ArgumentException>(() => Tokenizer.Encode("Alice likes mauve."));
    }

    [Fact]
    public void Worlds_AreDeterminedByTheirSeed()
    {
        Assert.Equal(new SyntheticWorld(9).Fingerprint(), new SyntheticWorld(9).Fingerprint());
        Assert.NotEqual(new SyntheticWorld(9).Fingerprint(), new SyntheticWorld(10).Fingerprint());
    }

    [Fact]
    public void ProbingSet_GoldAndHallucinatedAnswersHaveTheSameFormAndLength()
    {
        using var tmp = new TempDir();
        var world = new SyntheticWorld(11);
        LabDatasets.WriteProbing(tmp.File("probing.jsonl"), world, 200);
        var rows = File.ReadAllLines(tmp.File("probing.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(400, rows.Count);
        Assert.Equal(200, rows.Count(r => r["label"]!.GetValue<string>() == "gold"));
        int memoryAnswers = 0;
        for (int i = 0; i < rows.Count; i += 2)
        {
            var (gold, wrong) = (rows[i], rows[i + 1]);
            Assert.Equal("gold", gold["label"]!.GetValue<string>());
            Assert.Equal("hallucinated", wrong["label"]!.GetValue<string>());
            Assert.Equal(gold["context"]!.GetValue<string>(), wrong["context"]!.GetValue<string>());
            string g = gold["answer"]!.GetValue<string>(), h = wrong["answer"]!.GetValue<string>();
            Assert.NotEqual(g, h);
            // Same form: the same statement, token for token, up to its last word, a value of the same kind.
            int[] gi = Tokenizer.Encode(g), hi = Tokenizer.Encode(h);
            Assert.Equal(gi.Length, hi.Length);
            Assert.Equal(gi[..^1], hi[..^1]);
            Assert.Equal(KindOf(g.Split(' ')[^1]), KindOf(h.Split(' ')[^1]));
            Assert.Contains(g, gold["context"]!.GetValue<string>());
            if (gold["counterfactual"]!.GetValue<bool>() && !wrong["context"]!.GetValue<string>().Contains(h)) memoryAnswers++;
        }
        Assert.True(memoryAnswers > 0, "some hallucinated answers of counterfactual items should be the memorised fact");
        // No length shortcut: mean characters of gold and hallucinated answers within one character.
        double meanGold = rows.Where((_, i) => i % 2 == 0).Average(r => r["answer"]!.GetValue<string>().Length);
        double meanWrong = rows.Where((_, i) => i % 2 == 1).Average(r => r["answer"]!.GetValue<string>().Length);
        Assert.InRange(meanGold - meanWrong, -1.0, 1.0);
    }

    private static FactKind KindOf(string value) => Enum.GetValues<FactKind>().Single(k => SyntheticWorld.Values(k).Contains(value));

    [Fact]
    public void HaluEvalSet_HasTheHaluEvalQaFields_AndCounterfactualItems()
    {
        using var tmp = new TempDir();
        LabDatasets.WriteHaluEval(tmp.File("halueval.jsonl"), new SyntheticWorld(12), 50);
        var rows = File.ReadAllLines(tmp.File("halueval.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(50, rows.Count);
        Assert.All(rows, r =>
        {
            foreach (var field in new[] { "knowledge", "question", "right_answer", "hallucinated_answer" }) Assert.False(string.IsNullOrEmpty(r[field]!.GetValue<string>()));
            Assert.Contains(r["right_answer"]!.GetValue<string>(), r["knowledge"]!.GetValue<string>());
            Assert.NotEqual(r["right_answer"]!.GetValue<string>(), r["hallucinated_answer"]!.GetValue<string>());
        });
        Assert.Equal(25, rows.Count(r => r["counterfactual"]!.GetValue<bool>()));
    }

    [Fact]
    public void TrainingBatches_AreReproducibleFromSeedAndStep_AndScoreOnlyAnswers()
    {
        var recipe = new PretrainRecipe(new Corpus(new SyntheticWorld(1), Tokenizer));
        var a = recipe.Batch(seed: 5, step: 17, totalSteps: 100, batchSize: 8);
        var b = recipe.Batch(seed: 5, step: 17, totalSteps: 100, batchSize: 8);
        var c = recipe.Batch(seed: 5, step: 18, totalSteps: 100, batchSize: 8);
        Assert.Equal(a.Tokens, b.Tokens);
        Assert.NotEqual(a.Tokens, c.Tokens);
        // Each sequence's weights sum to 1 (one answer word, or a passage spread evenly).
        for (int s = 0; s < a.Batch; s++) Assert.Equal(1.0, a.Weights.AsSpan(a.Start(s), a.Length(s)).ToArray().Sum(), 4);
        // The curriculum starts with one-sentence contexts and reaches the full size.
        Assert.Equal(1, PretrainRecipe.CurriculumMaxFacts(0, 1000));
        Assert.Equal(Recipe.MaxFacts, PretrainRecipe.CurriculumMaxFacts(250, 1000));
    }
}
