using Xunit.Abstractions;
using TruthProbe.Gating;
using TruthProbe.Model;
using TruthProbe.Tests.Common;
using TruthProbe.Tests.Formats;

namespace TruthProbe.Tests.Gating;

/// <summary>A patched model written as GGUF, run by llama.cpp (an independent implementation), against our gated run.</summary>
public class PatchGgufTests(ITestOutputHelper output)
{
    [SkippableTheory]
    [InlineData(GateSite.Head)]
    [InlineData(GateSite.OProjOut)]
    public void Stories260K_PatchedGguf_InLlamaCpp_MatchesOurGatedRun(GateSite site)
    {
        string bin = SharedData.Path("models", "stories260K", "stories260K.bin");
        using var tmp = new TempDir();
        using var original = Transformer.Load(bin);
        var gates = RandomCheckpoint.Gates(original.Config.Layers, original.Config.Heads, seed: 5);
        CheckpointPatcher.PatchToGguf(bin, tmp.File("out"), new GateFold(gates, site, new Dictionary<string, string>()));
        Assert.Equal(["stories260K.gguf", CheckpointPatcher.ManifestName], Directory.GetFiles(tmp.File("out")).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        int[] tokens = original.Encode("Once upon a time, Lily saw a big red ball in the park.");
        var capture = new ActivationCapture(original.Config, [HookNames.Logits]);
        original.Forward(original.NewState(), tokens, capture, new Interventions(original.Config).Gate(gates, site));
        float[] ours = capture[HookNames.Logits].Data;
        float[] theirs = LlamaCppReference.Logits(tmp.File("out/stories260K.gguf"), tokens);
        double diff = ours.Zip(theirs, (a, b) => Math.Abs((double)a - b)).Max();
        output.WriteLine($"{site}: {tokens.Length} positions, max abs difference llama.cpp (patched GGUF) vs our gated run {diff:E2}");
        Assert.InRange(diff, 0, 1e-3);

        var vanilla = new ActivationCapture(original.Config, [HookNames.Logits]);
        original.Forward(original.NewState(), tokens, vanilla);
        Assert.True(vanilla[HookNames.Logits].Data.Zip(ours, (a, b) => Math.Abs(a - b)).Max() > 1e-2, "the gates should change the logits");
    }
}
