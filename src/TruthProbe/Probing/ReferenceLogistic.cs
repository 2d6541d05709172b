using System.Numerics.Tensors;

namespace TruthProbe.Probing;

/// <summary>
/// The authors' probe training, step for step (reference <c>vectorized_linear_probe</c>): w and b start
/// at zero; 200 epochs over the training rows in their (ascending) order in batches of 512; loss = BCE
/// with logits averaged over the batch AND over all L x H heads at once (the reference trains every head
/// in one tensor), so each head's gradient carries a factor 1/(L*H); PyTorch AdamW with lr 1e-2, betas
/// (0.9, 0.999), eps 1e-8 and decoupled weight decay 1e-3 on w and b. float32 arithmetic, as PyTorch on CPU.
/// </summary>
internal sealed class ReferenceLogistic : IHeadSolver
{
    public const float LearningRate = 1e-2f;
    public const float WeightDecay = 1e-3f;
    public const float Beta1 = 0.9f, Beta2 = 0.999f, Epsilon = 1e-8f;
    public const int Epochs = 200;
    public const int BatchSize = 512;

    private readonly int _d, _epochs;
    private readonly float _lossScale;
    private readonly float[] _w, _m, _v, _gradient;

    /// <param name="headsSharingTheLoss">L * H of the activation set.</param>
    /// <param name="epochs">the reference's 200 unless a test wants to follow the first steps.</param>
    public ReferenceLogistic(int d, int headsSharingTheLoss, int epochs = Epochs)
    {
        _d = d;
        _epochs = epochs;
        _lossScale = 1f / headsSharingTheLoss;
        _w = new float[d + 1];
        _m = new float[d + 1];
        _v = new float[d + 1];
        _gradient = new float[d + 1];
    }

    public string Name => "reference";

    public void ResetWarmStart() { }

    public void HoldWarmStart() { }

    public FitReport Fit(ReadOnlySpan<float> x, ReadOnlySpan<byte> y, Span<float> weights, out float bias)
    {
        int n = y.Length, d = _d;
        Array.Clear(_w);
        Array.Clear(_m);
        Array.Clear(_v);
        var w = _w.AsSpan(0, d);
        var gw = _gradient.AsSpan(0, d);
        int step = 0;
        for (int epoch = 0; epoch < _epochs; epoch++)
        {
            for (int start = 0; start < n; start += BatchSize)
            {
                int count = Math.Min(BatchSize, n - start);
                float b = _w[d];
                gw.Clear();
                float gb = 0;
                float scale = _lossScale / count;
                for (int i = 0; i < count; i++)
                {
                    var row = x.Slice((start + i) * d, d);
                    float logit = TensorPrimitives.Dot(row, w) + b;
                    float r = (1f / (1f + MathF.Exp(-logit)) - y[start + i]) * scale;
                    TensorPrimitives.MultiplyAdd(row, r, gw, gw);
                    gb += r;
                }
                _gradient[d] = gb;
                AdamWStep(++step);
            }
        }
        w.CopyTo(weights);
        bias = _w[d];
        return new FitReport(_epochs, double.NaN);
    }

    /// <summary>torch.optim.AdamW (single-tensor path): decay, moments, bias-corrected step.</summary>
    private void AdamWStep(int step)
    {
        float bc1 = 1 - MathF.Pow(Beta1, step);
        float bc2Sqrt = MathF.Sqrt(1 - MathF.Pow(Beta2, step));
        float stepSize = LearningRate / bc1;
        for (int j = 0; j < _w.Length; j++)
        {
            float g = _gradient[j];
            _w[j] *= 1 - LearningRate * WeightDecay;
            _m[j] = _m[j] * Beta1 + (1 - Beta1) * g;   // lerp form in PyTorch: m + (g - m)(1 - beta1)
            _v[j] = _v[j] * Beta2 + (1 - Beta2) * g * g;
            float denom = MathF.Sqrt(_v[j]) / bc2Sqrt + Epsilon;
            _w[j] -= stepSize * _m[j] / denom;
        }
    }
}
