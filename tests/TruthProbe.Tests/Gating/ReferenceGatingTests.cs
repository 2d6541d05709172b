using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Gating;

/// <summary>The o-proj-out site against the reference code's gating, re-implemented here from its description.</summary>
public class ReferenceGatingTests
{
    /// <summary>
    /// miso-choi/TruthProbe, <c>LlamaDecoderLayer.head_gating_truthful_head</c>: the attention output
    /// [tokens, d_model] is reshaped to [tokens, n_heads, d_model / n_heads], multiplied by gate[head]
    /// broadcast over the last axis, and reshaped back.
    /// </summary>
    private static float[] HeadGatingTruthfulHead(float[] attnOutput, int tokens, int dModel, float[] gate)
    {
        int nHeads = gate.Length, headDim = dModel / nHeads;
        var reshaped = new float[tokens, nHeads, headDim];
        for (int t = 0; t < tokens; t++)
            for (int h = 0; h < nHeads; h++)
                for (int j = 0; j < headDim; j++)
                    reshaped[t, h, j] = attnOutput[t * dModel + h * headDim + j] * gate[h];
        var back = new float[tokens * dModel];
        for (int t = 0; t < tokens; t++)
            for (int h = 0; h < nHeads; h++)
                for (int j = 0; j < headDim; j++)
                    back[t * dModel + h * headDim + j] = reshaped[t, h, j];
        return back;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public void OProjOutSite_MatchesReferenceReshapeAndScale_OfTheAttentionOutput(int layer)
    {
        using var tmp = new TempDir();
        var config = RandomCheckpoint.Config("llama"); // o_proj bias: the reference scales it with the rest
        using var model = Transformer.Load(RandomCheckpoint.Write(tmp.File("m"), config, seed: 21));
        float[] gate = [1.7f, -0.4f, 0.25f, 2.5f];
        // Gates only in the layer under test, so its input is the vanilla one.
        var interventions = new Interventions(model.Config);
        for (int h = 0; h < gate.Length; h++) interventions.GateHead(layer, h, gate[h], GateSite.OProjOut);
        string hook = HookNames.Name(HookKind.AttnOut, layer);
        int[] tokens = [1, 4, 9, 16, 25, 36];

        var vanilla = new ActivationCapture(model.Config, [hook]);
        model.Forward(model.NewState(), tokens, vanilla);
        var gated = new ActivationCapture(model.Config, [hook]);
        model.Forward(model.NewState(), tokens, gated, interventions);

        float[] expected = HeadGatingTruthfulHead(vanilla[hook].Data, tokens.Length, config.DModel, gate);
        Assert.Equal(expected.Length, gated[hook].Data.Length);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], gated[hook].Data[i], 1e-6f);
    }
}
