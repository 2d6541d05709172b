using TruthProbe.Lab;
using TruthProbe.Model;
using TruthProbe.Training;

namespace TruthProbe.Bench;

/// <summary>
/// One lab pretraining step as the trainer runs it (zero gradients, forward, backward, clip, AdamW) on a
/// late-curriculum batch of 64 sequences (contexts of up to four facts), with the model FLOPs of its real positions: the dense count, 6 x parameters
/// per token, plus the causal attention products QKᵀ and PV, 2 x 2 x d_q x (t + 1) FLOP at position t per layer
/// forward, three times that for training (the PaLM-style count without the causal half, 12 x L x T x d_q per
/// token, would add twice as much).
/// </summary>
internal sealed class LabTrainingStep
{
    private readonly TrainableLlama _model;
    private readonly AdamW _optimizer;
    private readonly PretrainRecipe _recipe;

    public LabTrainingStep(ModelConfig config, PretrainRecipe recipe)
    {
        Config = config;
        _recipe = recipe;
        _model = new TrainableLlama(config);
        _model.Initialize(1);
        _optimizer = new AdamW(_model.Parameters);
    }

    public ModelConfig Config { get; }

    /// <summary>Runs step <paramref name="step"/>; returns its tokens and its attention FLOPs.</summary>
    public (long Tokens, double AttentionFlops) Run(int step)
    {
        var batch = _recipe.Batch(1, 10_000 + step, 10_000, 64);
        _model.Parameters.ZeroGrads();
        _model.Forward(batch, out _, out _);
        _model.Backward();
        _optimizer.ClipGradients(1);
        _optimizer.Step(1e-3);
        // Real positions only: the batch is packed, and padding (before packing, 45% of such a batch) is no model FLOP.
        double attention = 0;
        for (int b = 0; b < batch.Batch; b++)
        {
            long t = batch.Length(b);
            attention += 3.0 * 4 * Config.QDim * (t * (t + 1) / 2) * Config.Layers;
        }
        return (batch.Rows, attention);
    }

    public double DenseFlops(long tokens) => 6.0 * Config.ParameterCount() * tokens;
}
