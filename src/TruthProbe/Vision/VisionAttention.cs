using System.Runtime.InteropServices;
using TruthProbe.Model;

namespace TruthProbe.Vision;

/// <summary>
/// Bidirectional multi-head attention as two GEMMs per head on the engine's <see cref="Gemm"/>: scores = Q_h K_h^T,
/// softmax by row, z_h = P V_h. With every query seeing all 577 keys the score matrix is small (1.3 MB per head)
/// and the products are dense; the decoder's causal flash kernel ran these shapes at 4 GFLOP/s (measured, CLIP-L
/// 336, AVX-512, 2 threads) where the GEMMs reach the projections' rate.
/// </summary>
internal sealed unsafe class VisionAttention
{
    private readonly int _n, _heads, _headDim;
    private readonly float[] _q, _k, _vT, _scores, _z;   // one head: [n, hd], [n, hd], [hd, n], [n, n], [n, hd]; pinned
    private readonly WeightMatrix _keys, _valuesT;

    public VisionAttention(int positions, int heads, int headDim)
    {
        (_n, _heads, _headDim) = (positions, heads, headDim);
        _q = GC.AllocateArray<float>(positions * headDim, pinned: true);
        _k = GC.AllocateArray<float>(positions * headDim, pinned: true);
        _vT = GC.AllocateArray<float>(headDim * positions, pinned: true);
        _scores = GC.AllocateArray<float>(positions * positions, pinned: true);
        _z = GC.AllocateArray<float>(positions * headDim, pinned: true);
        _keys = new WeightMatrix(positions, headDim, WeightDType.F32, (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(_k, 0), _k);
        _valuesT = new WeightMatrix(headDim, positions, WeightDType.F32, (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(_vT, 0), _vT);
    }

    /// <summary>z [n, heads * hd] from q, k, v [n, heads * hd]; scale 1/sqrt(hd), no mask.</summary>
    public void Run(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> z)
    {
        int n = _n, hd = _headDim, width = _heads * hd;
        float scale = 1f / MathF.Sqrt(hd);
        for (int h = 0; h < _heads; h++)
        {
            for (int t = 0; t < n; t++)
            {
                q.Slice(t * width + h * hd, hd).CopyTo(_q.AsSpan(t * hd, hd));
                k.Slice(t * width + h * hd, hd).CopyTo(_k.AsSpan(t * hd, hd));
                for (int i = 0; i < hd; i++) _vT[i * n + t] = v[t * width + h * hd + i];
            }
            Kernels.MatMul(_keys, _q, _scores, n);            // scores[t, j] = q_t . k_j
            for (int t = 0; t < n; t++)
            {
                var row = _scores.AsSpan(t * n, n);
                System.Numerics.Tensors.TensorPrimitives.Multiply(row, scale, row);
                Kernels.Softmax(row);
            }
            Kernels.MatMul(_valuesT, _scores, _z, n);         // z[t, i] = sum_j p[t, j] v_j[i]
            for (int t = 0; t < n; t++) _z.AsSpan(t * hd, hd).CopyTo(z.Slice(t * width + h * hd, hd));
        }
    }
}
