namespace TruthProbe.Probing;

/// <summary>How one fit ended: iterations (Newton steps or epochs) and the final gradient norm (NaN when not tracked).</summary>
public readonly record struct FitReport(int Iterations, double GradientNorm);

/// <summary>
/// Fits one head's probe sigmoid(w.x + b) on training rows. An instance owns its work buffers (sized once
/// for the largest fold) and is used by one thread at a time; fitting allocates nothing.
/// </summary>
internal interface IHeadSolver
{
    string Name { get; }

    /// <param name="x">training rows, row-major [n, d], raw activations.</param>
    /// <param name="y">labels 0/1, n of them.</param>
    FitReport Fit(ReadOnlySpan<float> x, ReadOnlySpan<byte> y, Span<float> weights, out float bias);

    /// <summary>Forget any state carried from the previous fit (a new head or a new label set starts here).</summary>
    void ResetWarmStart();

    /// <summary>Later fits, until <see cref="ResetWarmStart"/>, start from the last fit's state rather than each from
    /// its predecessor's (folds that start from the all-rows fit, each one fold away from it).</summary>
    void HoldWarmStart();
}
