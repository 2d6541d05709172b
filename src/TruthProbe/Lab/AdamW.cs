namespace TruthProbe.Lab;

/// <summary>Linear warm-up to the peak rate, then a cosine down to <c>MinFraction</c> of it at the last step.</summary>
public sealed record LearningRateSchedule(double Peak, int WarmupSteps, int TotalSteps, double MinFraction = 0.1)
{
    public double At(int step)
    {
        if (step < WarmupSteps) return Peak * (step + 1) / WarmupSteps;
        double progress = TotalSteps <= WarmupSteps ? 1 : Math.Min(1, (double)(step - WarmupSteps) / (TotalSteps - WarmupSteps));
        return Peak * (MinFraction + (1 - MinFraction) * 0.5 * (1 + Math.Cos(Math.PI * progress)));
    }
}

/// <summary>
/// AdamW (Loshchilov and Hutter) over the trainable tensors of a <see cref="ParameterSet"/>, with global
/// gradient-norm clipping. Weight decay is decoupled and applies to matrices only (norm gains stay at scale).
/// </summary>
public sealed class AdamW(ParameterSet parameters, double beta1 = 0.9, double beta2 = 0.95, double eps = 1e-8, double weightDecay = 0.1)
{
    private readonly float[] _m = new float[parameters.Values.Length];
    private readonly float[] _v = new float[parameters.Values.Length];
    private int _t;

    /// <summary>Scales gradients so their global L2 norm is at most <paramref name="maxNorm"/>; returns the norm before.</summary>
    public double ClipGradients(double maxNorm)
    {
        double sumSquares = 0;
        foreach (var t in parameters.Tensors.Where(t => t.Trainable))
            foreach (float g in parameters.Grads.AsSpan(t.Offset, t.Length)) sumSquares += (double)g * g;
        double norm = Math.Sqrt(sumSquares);
        if (norm > maxNorm)
            System.Numerics.Tensors.TensorPrimitives.Multiply(parameters.Grads, (float)(maxNorm / norm), parameters.Grads);
        return norm;
    }

    public void Step(double learningRate)
    {
        _t++;
        float b1 = (float)beta1, b2 = (float)beta2;
        double correction1 = 1 - Math.Pow(beta1, _t), correction2 = 1 - Math.Pow(beta2, _t);
        float stepSize = (float)(learningRate / correction1);
        float sqrtCorrection2 = (float)Math.Sqrt(correction2);
        var w = parameters.Values;
        var g = parameters.Grads;
        foreach (var t in parameters.Tensors.Where(t => t.Trainable))
        {
            float decay = t.Shape.Length >= 2 ? (float)(1 - learningRate * weightDecay) : 1f;
            for (int i = t.Offset; i < t.Offset + t.Length; i++)
            {
                _m[i] = b1 * _m[i] + (1 - b1) * g[i];
                _v[i] = b2 * _v[i] + (1 - b2) * g[i] * g[i];
                w[i] = w[i] * decay - stepSize * _m[i] / (MathF.Sqrt(_v[i]) / sqrtCorrection2 + (float)eps);
            }
        }
    }
}
