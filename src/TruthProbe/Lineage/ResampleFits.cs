using System.Numerics.Tensors;
using TruthProbe.Probing;

namespace TruthProbe.Lineage;

/// <summary>
/// One thread's workspace for the row bootstrap's re-fits: every head's k-fold probes on one resample's rows, the
/// Truth Score (mean validation accuracy over folds) of each head. The rows are the originals with their counts of
/// copies, never the copies written out: the exact solver fits each distinct training row once, weighed by its
/// count (<see cref="ExactLogistic.FitCounted"/>; about 63% of the rows are distinct, so a fold's sums run over that
/// share), and a validation row counts as many times as it was drawn. The reference solver (AdamW over batches in
/// row order) is not a sum over rows, so it gets the copies in the resample's order, as HeadProber on the
/// materialised resample gives them. Allocates nothing per resample beyond the fold lists.
/// </summary>
internal sealed class ResampleFits
{
    private readonly ActivationSet _set;
    private readonly float[] _headRows; // [head][row, d]: every head's rows, gathered once per source
    private readonly ProbeOptions _options;
    private readonly IHeadSolver _solver;
    private readonly ExactLogistic? _exact;
    private readonly float[] _trainRows, _weights;
    private readonly byte[] _trainLabels;
    private readonly int[] _count, _trainCounts, _foldOf;

    /// <summary>Room for one resample's draws (the original row of each drawn row), for <see cref="RowBootstrap.Draw"/> to fill.</summary>
    public long[] Drawn { get; }

    public ResampleFits(ActivationSet set, float[] headRows, ProbeOptions options)
    {
        (_set, _headRows, _options) = (set, headRows, options);
        int n = set.Rows, d = set.HeadDim;
        _exact = options.Solver == ProbeSolverKind.Exact ? new ExactLogistic(n, d) : null;
        _solver = _exact ?? (IHeadSolver)new ReferenceLogistic(d, set.HeadCount);
        _trainRows = new float[n * d];
        _trainLabels = new byte[n];
        _trainCounts = new int[n];
        _weights = new float[d];
        _count = new int[n];
        _foldOf = new int[n];
        Drawn = new long[n];
    }

    /// <summary>Every head's rows as [head][row, d], so a fold's rows are gathered from one contiguous block.</summary>
    public static float[] HeadRows(ActivationSet set)
    {
        int block = set.Rows * set.HeadDim;
        var rows = new float[set.HeadCount * block];
        for (int head = 0; head < set.HeadCount; head++)
            set.GatherHead(head / set.Heads, head % set.Heads, rows.AsSpan(head * block, block));
        return rows;
    }

    /// <summary>
    /// Every head's Truth Score on the rows <paramref name="drawn"/> (as <see cref="Drawn"/>) into <paramref name="map"/>;
    /// NaN throughout when the draw holds one class only or fewer distinct rows than folds.
    /// </summary>
    public void Run(long[] drawn, Span<double> map)
    {
        int n = _set.Rows, d = _set.HeadDim, k = _options.Folds;
        Array.Clear(_count);
        int gold = 0, distinct = 0;
        foreach (long j in drawn)
        {
            if (_count[j]++ == 0) distinct++;
            gold += _set.Labels[j];
        }
        if (gold == 0 || gold == n || distinct < k) { map.Fill(double.NaN); return; }
        // Folds grouped by the drawn row, so every copy of a row sits in one fold.
        var folds = Folds.Grouped(drawn, k, _options.Seed);
        for (int i = 0; i < n; i++) _foldOf[drawn[i]] = folds.FoldOfRow[i];

        for (int head = 0; head < map.Length; head++)
        {
            var rows = _headRows.AsSpan(head * n * d, n * d);
            _solver.ResetWarmStart();
            double accuracy = 0;
            for (int f = 0; f < k; f++)
            {
                float bias = Fit(rows, drawn, folds, f);
                long right = 0, validated = 0;
                for (int j = 0; j < n; j++)
                {
                    if (_count[j] == 0 || _foldOf[j] != f) continue;
                    // float logit, as HeadProber scores a validation row, so a fit that equals its one decides alike
                    float logit = TensorPrimitives.Dot(rows.Slice(j * d, d), _weights) + bias;
                    if ((logit > 0) == (_set.Labels[j] == 1)) right += _count[j];
                    validated += _count[j];
                }
                accuracy += (double)right / validated;
            }
            map[head] = accuracy / k;
        }
    }

    /// <summary>Fits fold <paramref name="fold"/>'s probe on the other folds' rows into _weights; returns the bias.</summary>
    private float Fit(ReadOnlySpan<float> rows, long[] drawn, Folds folds, int fold)
    {
        int d = _set.HeadDim, m = 0;
        float bias;
        if (_exact != null)
        {
            for (int j = 0; j < _count.Length; j++)
            {
                if (_count[j] == 0 || _foldOf[j] == fold) continue;
                rows.Slice(j * d, d).CopyTo(_trainRows.AsSpan(m * d, d));
                _trainLabels[m] = _set.Labels[j];
                _trainCounts[m++] = _count[j];
            }
            _exact.FitCounted(_trainRows.AsSpan(0, m * d), _trainLabels.AsSpan(0, m), _trainCounts.AsSpan(0, m), _weights, out bias);
            return bias;
        }
        foreach (int i in folds.Train[fold])
        {
            long j = drawn[i];
            rows.Slice((int)j * d, d).CopyTo(_trainRows.AsSpan(m * d, d));
            _trainLabels[m++] = _set.Labels[j];
        }
        _solver.Fit(_trainRows.AsSpan(0, m * d), _trainLabels.AsSpan(0, m), _weights, out bias);
        return bias;
    }
}
