using TruthProbe.Common;
using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Model;

/// <summary>
/// Batched decoding (<see cref="DecodeBatch"/>, <see cref="BatchGenerator"/>): the published greedy ids of the
/// real llama2.c models, the float64 reference forward, and the one-at-a-time path, with prompts of different
/// lengths, sequences stopping at EOS mid-batch, slots refilled, gates on and seeded sampling.
/// </summary>
public class BatchGeneratorTests
{
    private static int[] Ids(string s) => s.Split(' ').Select(int.Parse).ToArray();

    /// <summary>Prompts of 1 to 9 tokens (in the vocabulary, BOS first) beside BOS alone.</summary>
    private static int[][] Prompts(int vocab, int count) =>
        Enumerable.Range(0, count).Select(i => (int[])[1, .. Enumerable.Range(0, i % 9).Select(j => (i * 31 + j * 17 + 3) % vocab)]).ToArray();

    [SkippableTheory]
    [InlineData("stories260K", "stories260K.bin", 40, "403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385 328 432 358 394 261 370 432 352")]
    [InlineData("babyllama-128d-tok105", "model5000.bin", 40, "3 34 9 22 4 3 18 20 7 9 3 5 3 6 10 16 4 25 3 6 8 4 13 4 3 17 5 12 3 5 3 14 10 6 6 14 4 3 21 10")]
    [InlineData("babyllama-128d-tok361", "model5000.bin", 20, "259 290 265 278 260 259 274 276 263 265 259 261 259 262 266 272 260 281 259 262")]
    public void RealModels_Batched_ReproducePublishedIds_AndEveryPromptMatchesAlone(string folder, string file, int count, string published)
    {
        using var model = Transformer.Load(SharedData.Path("models", folder, file));
        // BOS alone (the published run) among prompts of other lengths; batch 3 over 7 prompts refills slots.
        var prompts = Prompts(model.Config.Vocab, 7);
        var options = new GenerationOptions { MaxNewTokens = count, StopAtEos = false };
        var batched = BatchGenerator.Generate(model, prompts, options, batchSize: 3);
        Assert.Equal(Ids(published), batched[0].NewIds);
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(Generator.Generate(model, prompts[i], options).NewIds, batched[i].NewIds);
    }

    [SkippableFact]
    public void Stories260K_StopsAtEosMidBatch_LikeAlone()
    {
        using var loaded = Transformer.Load(SharedData.Path("models", "stories260K", "stories260K.bin"));
        // Its stories rarely end within a few hundred tokens, so a frequent token plays EOS: 432, 4 times in the
        // published 40 from BOS. The same weights, another stop token.
        var model = new Transformer(loaded.Config with { EosIds = [432] }, loaded.Weights, loaded.Source, loaded.Format);
        var prompts = Prompts(model.Config.Vocab, 12);
        var options = new GenerationOptions { MaxNewTokens = 30 };
        var alone = prompts.Select(p => Generator.Generate(model, p, options)).ToArray();
        var batched = BatchGenerator.Generate(model, prompts, options, batchSize: 4);
        // The test means something only if some sequences end at EOS, at different steps, and some run to the limit.
        Assert.Contains(alone, r => r.StoppedAtEos);
        Assert.Contains(alone, r => !r.StoppedAtEos);
        Assert.True(alone.Where(r => r.StoppedAtEos).Select(r => r.NewIds.Length).Distinct().Count() > 1, "EOS at the same step for every sequence");
        for (int i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(alone[i].NewIds, batched[i].NewIds);
            Assert.Equal(alone[i].StoppedAtEos, batched[i].StoppedAtEos);
        }
    }

    [Theory]
    [InlineData("qwen2")]
    [InlineData("llama")]
    [InlineData("mistral")]
    public void Step_GivesEachSequenceItsOneAtATimeLogits_BitForBit_AndTheFloat64Reference(string architecture)
    {
        using var tmp = new TempDir();
        var config = architecture switch { "qwen2" => TinyModels.Qwen2, "llama" => TinyModels.LlamaGqa, _ => TinyModels.MistralWindow };
        string folder = TinyModels.Write(tmp, config, WeightDType.BF16);
        using var model = Transformer.Load(folder);
        int vocab = config.Vocab;
        // Five sequences at different positions, then four steps together: bf16 rows go four inputs at a time
        // through the fused kernel, the fifth through the one-input dot.
        int[] prefill = [5, 1, 9, 3, 16];
        int[][] sequences = [.. prefill.Select(n => Enumerable.Range(0, n + 4).Select(i => (i * 13 + n) % vocab).ToArray())];
        var batchStates = sequences.Select((s, b) => { var st = model.NewState(); model.Forward(st, s[..prefill[b]]); return st; }).ToArray();
        var aloneStates = sequences.Select((s, b) => { var st = model.NewState(); model.Forward(st, s[..prefill[b]]); return st; }).ToArray();
        var batch = new DecodeBatch(model, 5);
        float[] logits = [];
        for (int step = 0; step < 4; step++)
        {
            int[] tokens = sequences.Select((s, b) => s[prefill[b] + step]).ToArray();
            logits = batch.Step(batchStates, tokens).ToArray();
            for (int b = 0; b < 5; b++)
            {
                float[] alone = model.Forward(aloneStates[b], tokens.AsSpan(b, 1)).ToArray();
                Assert.Equal(alone, logits.AsSpan(b * vocab, vocab).ToArray());
                Assert.Equal(prefill[b] + step + 1, batchStates[b].Position);
            }
        }
        // The last step consumed each sequence's last token: its logits are the reference's last row.
        for (int b = 0; b < 5; b++)
        {
            double[] reference = ReferenceForward.Logits(folder, sequences[b])[^1];
            double diff = TinyModels.MaxAbsDiff(logits.AsSpan(b * vocab, vocab), reference.Select(r => (float)r).ToArray());
            Assert.True(diff < 1e-5, $"sequence {b}: batched logits differ from the float64 reference by {diff:g3}");
        }
    }

    [Fact]
    public void GatedBatch_MatchesGatedAlone_AndDiffersFromVanilla()
    {
        using var tmp = new TempDir();
        using var model = Transformer.Load(TinyModels.Write(tmp, TinyModels.LlamaGqa, WeightDType.BF16));
        var c = model.Config;
        var gates = new float[c.Layers, c.Heads];
        for (int l = 0; l < c.Layers; l++)
            for (int h = 0; h < c.Heads; h++) gates[l, h] = (l * c.Heads + h) % 3 == 0 ? 0f : 0.5f + 0.25f * h;
        var prompts = Prompts(c.Vocab, 6);
        foreach (var site in new[] { GateSite.Head, GateSite.OProjOut })
        {
            var gated = new GenerationOptions { MaxNewTokens = 12, StopAtEos = false, Interventions = new Interventions(c).Gate(gates, site) };
            var batched = BatchGenerator.Generate(model, prompts, gated, batchSize: 4);
            var vanilla = BatchGenerator.Generate(model, prompts, gated with { Interventions = null }, batchSize: 4);
            for (int i = 0; i < prompts.Length; i++) Assert.Equal(Generator.Generate(model, prompts[i], gated).NewIds, batched[i].NewIds);
            Assert.Contains(Enumerable.Range(0, prompts.Length), i => !batched[i].NewIds.SequenceEqual(vanilla[i].NewIds));
        }
    }

    [Fact]
    public void SeededSampling_Batched_DrawsWhatEachPromptDrawsAlone()
    {
        using var tmp = new TempDir();
        using var model = Transformer.Load(TinyModels.Write(tmp, TinyModels.Qwen2));
        var prompts = Prompts(model.Config.Vocab, 5);
        var options = new GenerationOptions { MaxNewTokens = 15, Temperature = 1.3f, Seed = 11 };
        var batched = BatchGenerator.Generate(model, prompts, options, batchSize: 2);
        for (int i = 0; i < prompts.Length; i++)
        {
            var alone = Generator.Generate(model, prompts[i], options);
            Assert.Equal(alone.NewIds, batched[i].NewIds);
            Assert.Equal(alone.StoppedAtEos, batched[i].StoppedAtEos);
        }
    }

    [SkippableFact]
    public void Step_WithReservedCaches_AllocatesNothing()
    {
        using var model = Transformer.Load(SharedData.Path("models", "stories260K", "stories260K.bin"));
        RunState[] states = [model.NewState(), model.NewState(), model.NewState()];
        int[][] prompts = [[1], [1, 403, 407], [1, 403, 407, 261, 378]];
        for (int b = 0; b < 3; b++) { states[b].Reserve(64); model.Forward(states[b], prompts[b]); }
        var batch = new DecodeBatch(model, 3);
        int[] tokens = [403, 261, 432];
        for (int i = 0; i < 4; i++) batch.Step(states, tokens); // warm-up: JIT, thread-static scratch
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 20; i++)
        {
            var logits = batch.Step(states, tokens);
            for (int b = 0; b < 3; b++) tokens[b] = Generator.ArgMax(logits.Slice(b * model.Config.Vocab, model.Config.Vocab));
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void BadBatchSizeOrPrompt_IsAUserError()
    {
        using var tmp = new TempDir();
        using var model = Transformer.Load(TinyModels.Write(tmp, TinyModels.Qwen2));
        var options = new GenerationOptions { MaxNewTokens = 3 };
        Assert.Contains("batch size", Assert.Throws<UserError>(() => BatchGenerator.Generate(model, [[1, 2]], options, 0)).Message);
        Assert.Contains("no tokens", Assert.Throws<UserError>(() => BatchGenerator.Generate(model, [[1, 2], []], options, 2)).Message);
        Assert.Contains("outside the vocabulary", Assert.Throws<UserError>(() => BatchGenerator.Generate(model, [[1, 2], [1, 999]], options, 2)).Message);
    }
}
