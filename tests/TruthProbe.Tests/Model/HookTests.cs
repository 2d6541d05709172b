using TruthProbe.Common;
using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Model;

/// <summary>Identities that must hold between hook points, and what gates and additions do to them.</summary>
public class HookTests
{
    private static readonly int[] Tokens = [1, 5, 9, 17, 3, 22, 30];

    /// <summary>Llama with o_proj bias and GQA: the hardest case for the o_proj identities.</summary>
    private static Transformer Load(TempDir tmp) => Transformer.Load(TinyModels.Write(tmp, TinyModels.LlamaGqa));

    private static ActivationCapture CaptureAll(Transformer model, int[] tokens, Interventions? interventions = null, IReadOnlyList<int>? positions = null)
    {
        var capture = new ActivationCapture(model.Config, ["*"], positions);
        model.Forward(model.NewState(), tokens, capture, interventions);
        return capture;
    }

    /// <summary>y = W x (+ b) per row, from the matrix read back as floats, in double.</summary>
    private static float[] Project(WeightMatrix w, float[]? bias, float[] x, int rows)
    {
        float[] m = w.ToSingles();
        var y = new float[rows * w.Rows];
        for (int t = 0; t < rows; t++)
            for (int r = 0; r < w.Rows; r++)
            {
                double s = bias?[r] ?? 0;
                for (int i = 0; i < w.Cols; i++) s += (double)m[r * w.Cols + i] * x[t * w.Cols + i];
                y[t * w.Rows + r] = (float)s;
            }
        return y;
    }

    [Fact]
    public void HookShapes_FollowTheContract()
    {
        using var tmp = new TempDir();
        using var model = Load(tmp);
        var c = model.Config;
        var cap = CaptureAll(model, Tokens);
        int T = Tokens.Length;
        Assert.Equal(c.Layers * 16 + 2, cap.Results.Count);
        Assert.Equal([T, c.DModel], cap["hook_embed"].Shape);
        Assert.Equal([T, c.DModel], cap["blocks.1.hook_resid_pre"].Shape);
        Assert.Equal([T, c.Heads, c.HeadDim], cap["blocks.1.attn.hook_q"].Shape);
        Assert.Equal([T, c.KvHeads, c.HeadDim], cap["blocks.1.attn.hook_k"].Shape);
        Assert.Equal([T, c.KvHeads, c.HeadDim], cap["blocks.1.attn.hook_v"].Shape);
        Assert.Equal([T, c.Heads, c.HeadDim], cap["blocks.1.attn.hook_rot_q"].Shape);
        Assert.Equal([T, c.KvHeads, c.HeadDim], cap["blocks.1.attn.hook_rot_k"].Shape);
        Assert.Equal([c.Heads, T, T], cap["blocks.1.attn.hook_attn_scores"].Shape);
        Assert.Equal([c.Heads, T, T], cap["blocks.1.attn.hook_pattern"].Shape);
        Assert.Equal([T, c.Heads, c.HeadDim], cap["blocks.0.attn.hook_z"].Shape);
        Assert.Equal([T, c.Ffn], cap["blocks.0.mlp.hook_pre"].Shape);
        Assert.Equal([T, c.Ffn], cap["blocks.0.mlp.hook_pre_linear"].Shape);
        Assert.Equal([T, c.Ffn], cap["blocks.0.mlp.hook_post"].Shape);
        Assert.Equal([T, c.DModel], cap["blocks.0.hook_mlp_out"].Shape);
        Assert.Equal([T, c.Vocab], cap[HookNames.Logits].Shape);
    }

    [Fact]
    public void OProjOfZ_PlusBias_EqualsAttnOut_AndResidualsAdd()
    {
        using var tmp = new TempDir();
        using var model = Load(tmp);
        var cap = CaptureAll(model, Tokens);
        int T = Tokens.Length;
        for (int l = 0; l < model.Config.Layers; l++)
        {
            var layer = model.Weights.Layers[l];
            Assert.NotNull(layer.OBias);
            float[] z = cap[$"blocks.{l}.attn.hook_z"].Data, attnOut = cap[$"blocks.{l}.hook_attn_out"].Data;
            Assert.True(TinyModels.MaxAbsDiff(Project(layer.O, layer.OBias, z, T), attnOut) < 1e-5);
            float[] pre = cap[$"blocks.{l}.hook_resid_pre"].Data, mid = cap[$"blocks.{l}.hook_resid_mid"].Data;
            float[] mlp = cap[$"blocks.{l}.hook_mlp_out"].Data, post = cap[$"blocks.{l}.hook_resid_post"].Data;
            Assert.Equal(pre.Zip(attnOut, (a, b) => a + b), mid);
            Assert.Equal(mid.Zip(mlp, (a, b) => a + b), post);
            if (l + 1 < model.Config.Layers) Assert.Equal(post, cap[$"blocks.{l + 1}.hook_resid_pre"].Data);
        }
    }

    [Fact]
    public void PatternRows_SumToOne_AndAreCausal()
    {
        using var tmp = new TempDir();
        using var model = Load(tmp);
        var cap = CaptureAll(model, Tokens);
        int T = Tokens.Length;
        var pattern = cap["blocks.1.attn.hook_pattern"].Data;
        for (int h = 0; h < model.Config.Heads; h++)
            for (int t = 0; t < T; t++)
            {
                var row = pattern.AsSpan((h * T + t) * T, T);
                Assert.True(Math.Abs(1.0 - row.ToArray().Sum(x => (double)x)) < 1e-5);
                for (int j = t + 1; j < T; j++) Assert.Equal(0f, row[j]);
            }
    }

    [Fact]
    public void Z_IsPatternWeightedValues_PerQueryHeadUnderGqa()
    {
        using var tmp = new TempDir();
        using var model = Load(tmp);
        var c = model.Config;
        var cap = CaptureAll(model, Tokens);
        int T = Tokens.Length, hd = c.HeadDim;
        float[] pattern = cap["blocks.0.attn.hook_pattern"].Data, v = cap["blocks.0.attn.hook_v"].Data, z = cap["blocks.0.attn.hook_z"].Data;
        for (int t = 0; t < T; t++)
            for (int h = 0; h < c.Heads; h++)
                for (int i = 0; i < hd; i++)
                {
                    double expected = 0;
                    for (int j = 0; j < T; j++) expected += pattern[(h * T + t) * T + j] * v[(j * c.KvHeads + h / (c.Heads / c.KvHeads)) * hd + i];
                    Assert.True(Math.Abs(expected - z[(t * c.Heads + h) * hd + i]) < 1e-5);
                }
    }

    /// <summary>HF rotate_half at an absolute position, in double: the rotation TransformerLens's hook_rot_q/k hold.</summary>
    private static double[] Rope(ReadOnlySpan<float> row, int position, ModelConfig c) =>
        ReferenceForward.RotateHalf(row.ToArray().Select(v => (double)v).ToArray(), position, c.HeadDim, c.RopeTheta);

    [Fact]
    public void HookQK_AreBeforeRope_AndRotQK_AreTheirRotation_AtCachedPositions()
    {
        using var tmp = new TempDir();
        using var model = Load(tmp);
        var c = model.Config;
        var state = model.NewState();
        model.Forward(state, Tokens[..3]);
        var cap = new ActivationCapture(c, ["blocks.1.attn.hook_*q", "blocks.1.attn.hook_*k"]);
        model.Forward(state, Tokens[3..], cap);
        foreach (var (before, after, width) in new[] { ("hook_q", "hook_rot_q", c.QDim), ("hook_k", "hook_rot_k", c.KvDim) })
        {
            float[] raw = cap[$"blocks.1.attn.{before}"].Data, rotated = cap[$"blocks.1.attn.{after}"].Data;
            for (int t = 0; t < Tokens.Length - 3; t++)
            {
                double[] expected = Rope(raw.AsSpan(t * width, width), 3 + t, c);
                for (int i = 0; i < width; i++)
                    Assert.True(Math.Abs(expected[i] - rotated[t * width + i]) < 1e-5, $"{after} token {t} [{i}]: {rotated[t * width + i]} vs {expected[i]}");
            }
            Assert.True(TinyModels.MaxAbsDiff(raw, rotated) > 0.1, $"{before} and {after} should differ at positions 3..");
        }
    }

    [Fact]
    public void AddingVectorAtHookQ_IsRotatedWithTheQuery_AtHookRotQ_IsNot()
    {
        using var tmp = new TempDir();
        using var model = Load(tmp);
        var c = model.Config;
        var u = Enumerable.Range(0, c.QDim).Select(i => MathF.Cos(i)).ToArray();
        var plain = CaptureAll(model, Tokens);
        var beforeRope = CaptureAll(model, Tokens, new Interventions(c).Add("blocks.1.attn.hook_q", u));
        var afterRope = CaptureAll(model, Tokens, new Interventions(c).Add("blocks.1.attn.hook_rot_q", u));
        float[] q = plain["blocks.1.attn.hook_q"].Data, rotQ = plain["blocks.1.attn.hook_rot_q"].Data;
        for (int t = 0; t < Tokens.Length; t++)
        {
            double[] shift = Rope(u, t, c);
            for (int i = 0; i < c.QDim; i++)
            {
                int at = t * c.QDim + i;
                Assert.Equal(q[at] + u[i], beforeRope["blocks.1.attn.hook_q"].Data[at]);
                Assert.True(Math.Abs(rotQ[at] + shift[i] - beforeRope["blocks.1.attn.hook_rot_q"].Data[at]) < 1e-5, $"token {t} [{i}]");
                Assert.Equal(q[at], afterRope["blocks.1.attn.hook_q"].Data[at]);
                Assert.Equal(rotQ[at] + u[i], afterRope["blocks.1.attn.hook_rot_q"].Data[at]);
            }
        }
        Assert.Equal(plain["blocks.1.attn.hook_rot_k"].Data, beforeRope["blocks.1.attn.hook_rot_k"].Data);
        Assert.Throws<UserError>(() => new Interventions(c).Add("blocks.0.attn.hook_attn_scores", new float[c.Heads]));
    }

    [Fact]
    public void AttnScores_AreScaledDotsOfRotatedQK_AndPatternTheirSoftmax()
    {
        using var tmp = new TempDir();
        using var model = Load(tmp);
        var c = model.Config;
        var cap = CaptureAll(model, Tokens);
        int T = Tokens.Length, hd = c.HeadDim;
        float[] q = cap["blocks.1.attn.hook_rot_q"].Data, k = cap["blocks.1.attn.hook_rot_k"].Data;
        float[] scores = cap["blocks.1.attn.hook_attn_scores"].Data, pattern = cap["blocks.1.attn.hook_pattern"].Data;
        for (int h = 0; h < c.Heads; h++)
            for (int t = 0; t < T; t++)
            {
                int row = (h * T + t) * T, kvh = h / (c.Heads / c.KvHeads);
                var expected = new double[t + 1];
                for (int j = 0; j <= t; j++)
                {
                    for (int i = 0; i < hd; i++) expected[j] += (double)q[(t * c.Heads + h) * hd + i] * k[(j * c.KvHeads + kvh) * hd + i];
                    expected[j] /= Math.Sqrt(hd);
                    Assert.True(Math.Abs(expected[j] - scores[row + j]) < 1e-5, $"head {h} query {t} key {j}: {scores[row + j]} vs {expected[j]}");
                }
                for (int j = t + 1; j < T; j++) Assert.Equal(float.NegativeInfinity, scores[row + j]);
                double max = expected.Max(), sum = expected.Sum(s => Math.Exp(s - max));
                for (int j = 0; j <= t; j++) Assert.True(Math.Abs(Math.Exp(expected[j] - max) / sum - pattern[row + j]) < 1e-6);
            }
    }

    [Fact]
    public void MlpHooks_PostIsSiluOfPreTimesPreLinear_AndDownOfPostIsMlpOut()
    {
        using var tmp = new TempDir();
        using var model = Load(tmp);
        var cap = CaptureAll(model, Tokens);
        float[] pre = cap["blocks.0.mlp.hook_pre"].Data, linear = cap["blocks.0.mlp.hook_pre_linear"].Data, post = cap["blocks.0.mlp.hook_post"].Data;
        for (int i = 0; i < pre.Length; i++)
            Assert.True(Math.Abs(pre[i] / (1 + Math.Exp(-(double)pre[i])) * linear[i] - post[i]) < 1e-6, $"[{i}]");
        float[] down = Project(model.Weights.Layers[0].Down, null, post, Tokens.Length);
        Assert.True(TinyModels.MaxAbsDiff(down, cap["blocks.0.hook_mlp_out"].Data) < 1e-5);
    }

    [Fact]
    public void HookEmbed_IsTheTokensEmbeddingRows_AndLayerZerosResidPre()
    {
        using var tmp = new TempDir();
        using var model = Load(tmp);
        var cap = CaptureAll(model, Tokens);
        int d = model.Config.DModel;
        float[] table = model.Weights.TokenEmbedding.ToSingles(), embed = cap["hook_embed"].Data;
        for (int t = 0; t < Tokens.Length; t++) Assert.Equal(table.AsSpan(Tokens[t] * d, d).ToArray(), embed.AsSpan(t * d, d).ToArray());
        Assert.Equal(embed, cap["blocks.0.hook_resid_pre"].Data);
    }

    [Fact]
    public void PositionSelection_KeepsTheSameRows()
    {
        using var tmp = new TempDir();
        using var model = Load(tmp);
        var all = CaptureAll(model, Tokens);
        var last = CaptureAll(model, Tokens, positions: [-1, 2]);
        int T = Tokens.Length, width = model.Config.QDim;
        var z = last["blocks.1.attn.hook_z"];
        Assert.Equal([2, model.Config.Heads, model.Config.HeadDim], z.Shape);
        Assert.Equal(all["blocks.1.attn.hook_z"].Data.AsSpan((T - 1) * width, width).ToArray(), z.Data.AsSpan(0, width).ToArray());
        Assert.Equal(all["blocks.1.attn.hook_z"].Data.AsSpan(2 * width, width).ToArray(), z.Data.AsSpan(width, width).ToArray());
        Assert.Equal([model.Config.Heads, 2, T], last["blocks.0.attn.hook_pattern"].Shape);
        Assert.Equal([model.Config.Heads, 2, T], last["blocks.0.attn.hook_attn_scores"].Shape);
        Assert.Throws<UserError>(() => CaptureAll(model, Tokens, positions: [T]));
    }

    [Theory]
    [InlineData(GateSite.Head)]
    [InlineData(GateSite.OProjOut)]
    public void AllOnesGates_LeaveLogitsBitIdentical(GateSite site)
    {
        using var tmp = new TempDir();
        using var model = Load(tmp);
        var ones = new float[model.Config.Layers, model.Config.Heads];
        for (int l = 0; l < ones.GetLength(0); l++) for (int h = 0; h < ones.GetLength(1); h++) ones[l, h] = 1f;
        var gated = new Interventions(model.Config).Gate(ones, site);
        Assert.Equal(TinyModels.AllLogits(model, Tokens), TinyModels.AllLogits(model, Tokens, gated));
    }

    [Fact]
    public void HeadGateZero_EqualsRemovingItsColumnsFromOProj()
    {
        using var tmp = new TempDir();
        using var model = Load(tmp);
        var c = model.Config;
        int layer = 1, head = 2;
        var ablated = new Interventions(c).GateHead(layer, head, 0f, GateSite.Head);
        float[] gatedLogits = TinyModels.AllLogits(model, Tokens, ablated);

        float[] o = model.Weights.Layers[layer].O.ToSingles();
        for (int r = 0; r < c.DModel; r++) Array.Clear(o, r * c.QDim + head * c.HeadDim, c.HeadDim);
        using var edited = WithO(model, layer, WeightMatrix.FromSingles(o, c.DModel, c.QDim), model.Weights.Layers[layer].OBias);
        double diff = TinyModels.MaxAbsDiff(gatedLogits, TinyModels.AllLogits(edited, Tokens));
        Assert.True(diff < 1e-6, $"differs by {diff:g3}");
        Assert.True(TinyModels.MaxAbsDiff(gatedLogits, TinyModels.AllLogits(model, Tokens)) > 1e-3, "ablating a head changed nothing");
    }

    [Fact]
    public void OProjOutGateZero_EqualsRemovingItsOutputRowsAndBias()
    {
        using var tmp = new TempDir();
        using var model = Load(tmp);
        var c = model.Config;
        int layer = 0, head = 3, chunk = c.DModel / c.Heads;
        var ablated = new Interventions(c).GateHead(layer, head, 0f, GateSite.OProjOut);
        float[] o = model.Weights.Layers[layer].O.ToSingles();
        Array.Clear(o, head * chunk * c.QDim, chunk * c.QDim);
        float[] bias = (float[])model.Weights.Layers[layer].OBias!.Clone();
        Array.Clear(bias, head * chunk, chunk);
        using var edited = WithO(model, layer, WeightMatrix.FromSingles(o, c.DModel, c.QDim), bias);
        Assert.True(TinyModels.MaxAbsDiff(TinyModels.AllLogits(model, Tokens, ablated), TinyModels.AllLogits(edited, Tokens)) < 1e-6);
    }

    [Fact]
    public void GatesApply_InPrefillAndEveryDecodeStep()
    {
        using var tmp = new TempDir();
        using var model = Load(tmp);
        var gates = new Interventions(model.Config).GateHead(0, 1, 0.25f, GateSite.Head).GateHead(1, 0, -1.5f, GateSite.Head);
        float[] prefill = TinyModels.AllLogits(model, Tokens, gates);
        var state = model.NewState();
        model.Forward(state, Tokens[..2], interventions: gates);
        int vocab = model.Config.Vocab;
        for (int t = 2; t < Tokens.Length; t++)
            Assert.True(TinyModels.MaxAbsDiff(model.Forward(state, Tokens[t..(t + 1)], interventions: gates), prefill.AsSpan(t * vocab, vocab)) < 1e-5);
    }

    [Fact]
    public void AddingVectorToZ_ShiftsAttnOutByOProjOfIt()
    {
        using var tmp = new TempDir();
        using var model = Load(tmp);
        var c = model.Config;
        var vector = Enumerable.Range(0, c.QDim).Select(i => MathF.Sin(i)).ToArray();
        var steer = new Interventions(c).Add("blocks.1.attn.hook_z", vector);
        var plain = CaptureAll(model, Tokens);
        var steered = CaptureAll(model, Tokens, steer);
        float[] shift = Project(model.Weights.Layers[1].O, null, vector, 1);
        float[] before = plain["blocks.1.hook_attn_out"].Data, after = steered["blocks.1.hook_attn_out"].Data;
        for (int t = 0; t < Tokens.Length; t++)
            for (int i = 0; i < c.DModel; i++)
                Assert.True(Math.Abs(before[t * c.DModel + i] + shift[i] - after[t * c.DModel + i]) < 1e-4);
        Assert.Equal(plain["blocks.0.hook_resid_post"].Data, steered["blocks.0.hook_resid_post"].Data);
        Assert.Throws<UserError>(() => new Interventions(c).Add("blocks.1.attn.hook_z", new float[3]));
    }

    private static Transformer WithO(Transformer model, int layer, WeightMatrix o, float[]? bias)
    {
        var layers = (LayerWeights[])model.Weights.Layers.Clone();
        layers[layer] = layers[layer] with { O = o, OBias = bias };
        return new Transformer(model.Config, model.Weights with { Layers = layers }, model.Source, "memory");
    }
}
