using TruthProbe.Cli;

namespace TruthProbe.Tests.Fuzz;

/// <summary>
/// Each input the fuzz suite found crashing or silently accepted, by its variant name, now a clean error that says
/// what is wrong. Before the fixes these were: a crash (InvalidOperationException, JsonReaderException) or exit 0.
/// </summary>
[Collection(nameof(FuzzCollection))]
public class FuzzFindingsTests
{
    private static void CleanErrors(string format, string variant, string fragment, bool valuesOnly = false)
    {
        var target = FuzzTargets.All(RepoPaths.Shared()).Single(t => t.Format == format);
        string? why = target.Unavailable();
        Skip.If(why != null, why);
        var results = new FuzzRunner(TimeSpan.FromSeconds(20)).Run(target, (_, v) => v.Name == variant);
        // A value-only variant (a NaN weight) is accepted by inspect, which reads no values; every other run must fail cleanly.
        var refused = results.Where(r => !valuesOnly || r.Outcome != FuzzOutcome.Accepted).ToList();
        Assert.NotEmpty(refused);
        foreach (var r in refused)
        {
            Assert.True(r.Outcome == FuzzOutcome.Clean, $"{format} / {variant} / {r.Command}: {r.Outcome} {r.Detail}");
            Assert.Contains(fragment, r.Detail);
        }
    }

    [SkippableTheory]
    [InlineData("config.json", "architectures[0] = lone surrogate", "lone UTF-16 surrogate")]
    [InlineData("config.json", "model_type = 5", "field 'model_type' must be a string, got 5")]
    [InlineData("config.json", "model_type = invalid UTF-8", "field 'model_type' holds invalid UTF-8")]
    [InlineData("config.json", "hidden_act = 5", "field 'hidden_act' must be a string, got 5")]
    [InlineData("tokenizer.json", "added_tokens = \"x\"", "\"added_tokens\" must be an array, got \"x\"")]
    [InlineData("tokenizer.json", "model.merges = {}", "\"merges\" must be an array, got {}")]
    [InlineData("pope questions", "text = 5", "field 'text' must be a string, got 5")]
    [InlineData("pope questions", "first line '[]'", "unexpected content after the JSON array")]
    [InlineData("pope answers", "text = 5", "field 'text' must be a string, got 5")]
    [InlineData("chair captions", "caption = 5", "field 'caption' must be a string, got 5")]
    public void JsonOfTheWrongTypeOrText(string format, string variant, string fragment) => CleanErrors(format, variant, fragment);

    [Theory]
    [InlineData("header '<f8' -> '<f4'", "the header's dtype or shape does not match the data")]
    [InlineData("header '<f8' -> '|b1'", "the header's dtype or shape does not match the data")]
    [InlineData("trailing 8 bytes", "the header's dtype or shape does not match the data")]
    [InlineData("header { -> [", "malformed .npy header")]
    public void Npy_RelabelledOrPaddedData(string variant, string fragment) => CleanErrors("npy", variant, fragment);

    [Theory]
    [InlineData("tensor token_embd.weight.type = 1 (relabelled)", "do not match the data")]
    [InlineData("tensor token_embd.weight.type = 30 (relabelled)", "do not match the data")]
    [InlineData("tensor blk.0.attn_q.weight.offset = 0", "overlaps tensor 'token_embd.weight'")]
    [InlineData("general.alignment = 1 inserted", "general.alignment do not match the data")]
    [InlineData("general.alignment = 64 inserted", "general.alignment do not match the data")]
    [InlineData("trailing 64 bytes", "the file has 64 bytes after the last tensor")]
    public void Gguf_HeaderThatLiesAboutTheData(string variant, string fragment) => CleanErrors("gguf", variant, fragment);

    [SkippableTheory]
    [InlineData("safetensors", "model.layers.0.self_attn.q_proj.weight[0] = NaN", "weight model.layers.0.self_attn.q_proj.weight holds NaN at row 0, column 0")]
    [InlineData("safetensors", "model.embed_tokens.weight[last] = +Inf", "weight model.embed_tokens.weight holds Infinity at row 15, column 15")]
    [InlineData("gguf", "first tensor[0] = NaN", "weight model.embed_tokens.weight holds NaN at row 0, column 0")]
    [InlineData("llama2.c bin", "rms_final[last] = -Inf", "weight model.norm.weight holds -Infinity at row 0, column 63")]
    [InlineData("llama2.c tokenizer", "truncated at 6216", "the llama2.c tokenizer has 511 tokens but the model's vocab_size is 512")]
    public void NonFiniteWeightsAndShortTokenizers(string format, string variant, string fragment) =>
        CleanErrors(format, variant, fragment, valuesOnly: variant.EndsWith("NaN", StringComparison.Ordinal) || variant.EndsWith("Inf", StringComparison.Ordinal));
}
