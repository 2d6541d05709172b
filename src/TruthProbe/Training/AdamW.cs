using System.Numerics;
using TruthProbe.Numerics;

namespace TruthProbe.Training;

/// <summary>Linear warm-up to the peak rate, then a cosine down to <c>MinFraction</c> of it at the last step.</summary>
internal sealed record LearningRateSchedule(double Peak, int WarmupSteps, int TotalSteps, double MinFraction = 0.1)
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
/// The trainable set is read when the optimizer is made. Both passes run on vectors over fixed shares of the
/// flat parameter array (<see cref="RowParallel"/>), so they give the same bits on every run. The clipping scale is
/// applied inside the update's pass (each gradient times it, the bits of scaling them first) rather than in a pass of
/// its own over the gradients.
/// </summary>
internal sealed unsafe class AdamW(ParameterSet parameters, double beta1 = 0.9, double beta2 = 0.95, double eps = 1e-8, double weightDecay = 0.1)
{
    private readonly float[] _m = new float[parameters.Values.Length];
    private readonly float[] _v = new float[parameters.Values.Length];
    private readonly Segment[] _trainable = parameters.Tensors.Where(t => t.Trainable).Select(t => new Segment(t.Offset, t.Length, t.Shape.Length >= 2)).ToArray();
    private readonly double[] _shareSquares = new double[RowParallel.Parts];
    private int _t;
    /// <summary>What <see cref="ClipGradients"/> left for the next <see cref="Step"/> to scale the gradients by.</summary>
    private float _gradientScale = 1f;

    private readonly record struct Segment(int Offset, int Length, bool Decayed);

    /// <summary>One pass over the trainable parts of the flat arrays: sums of squares of G when <c>Squares</c> is set, else the update.</summary>
    private struct Job : IRowJob<Job>
    {
        public float* W, G, M, V;
        public Segment* Segments;
        public int SegmentCount, Length;
        public double* Squares;
        public float Beta1, Beta2, StepSize, SqrtCorrection2, Eps, Decay, GradientScale;

        public static void Rows<TVec>(ref Job j, int first, int end, int part) where TVec : unmanaged, IVec<TVec>
        {
            int from = first * Ops.Chunk, to = Math.Min(j.Length, end * Ops.Chunk), lanes = TVec.Count;
            TVec squares = default; // double lanes, see IVec.AddSquaresInDouble
            for (int s = 0; s < j.SegmentCount; s++)
            {
                var segment = j.Segments[s];
                int lo = Math.Max(from, segment.Offset), hi = Math.Min(to, segment.Offset + segment.Length);
                var decay = TVec.Create(segment.Decayed ? j.Decay : 1f);
                for (int i = lo; i < hi; i += lanes)
                {
                    int count = Math.Min(lanes, hi - i);
                    var g = TVec.LoadPartial(j.G + i, count);
                    if (j.Squares != null)
                    {
                        squares = TVec.AddSquaresInDouble(squares, g);
                        continue;
                    }
                    // The scalar update's operations in its order (no fused multiply-adds), on vectors, on the clipped gradient.
                    g *= TVec.Create(j.GradientScale);
                    var m = TVec.Create(j.Beta1) * TVec.LoadPartial(j.M + i, count) + TVec.Create(1 - j.Beta1) * g;
                    var v = TVec.Create(j.Beta2) * TVec.LoadPartial(j.V + i, count) + TVec.Create(1 - j.Beta2) * g * g;
                    var w = TVec.LoadPartial(j.W + i, count) * decay
                        - TVec.Create(j.StepSize) * m / (TVec.Sqrt(v) / TVec.Create(j.SqrtCorrection2) + TVec.Create(j.Eps));
                    TVec.StorePartial(m, j.M + i, count);
                    TVec.StorePartial(v, j.V + i, count);
                    TVec.StorePartial(w, j.W + i, count);
                }
            }
            if (j.Squares != null) j.Squares[part] = TVec.SumDoubles(squares);
        }
    }

    /// <summary>
    /// Has the next <see cref="Step"/> scale the gradients so their global L2 norm is at most <paramref name="maxNorm"/>
    /// (<see cref="ParameterSet.Grads"/> keep their values); returns the norm before.
    /// </summary>
    public double ClipGradients(double maxNorm)
    {
        fixed (double* squares = _shareSquares) Run(new Job { Squares = squares });
        double sumSquares = 0;
        foreach (double share in _shareSquares) sumSquares += share;
        double norm = Math.Sqrt(sumSquares);
        _gradientScale = norm > maxNorm ? (float)(maxNorm / norm) : 1f;
        return norm;
    }

    public void Step(double learningRate)
    {
        _t++;
        double correction1 = 1 - Math.Pow(beta1, _t), correction2 = 1 - Math.Pow(beta2, _t);
        Run(new Job
        {
            Beta1 = (float)beta1, Beta2 = (float)beta2, Eps = (float)eps, Decay = (float)(1 - learningRate * weightDecay),
            StepSize = (float)(learningRate / correction1), SqrtCorrection2 = (float)Math.Sqrt(correction2), GradientScale = _gradientScale,
        });
        _gradientScale = 1f;
    }

    private void Run(Job job)
    {
        fixed (float* w = parameters.Values, g = parameters.Grads, m = _m, v = _v)
        fixed (Segment* segments = _trainable)
        {
            job.W = w; job.G = g; job.M = m; job.V = v;
            job.Segments = segments; job.SegmentCount = _trainable.Length; job.Length = parameters.Values.Length;
            RowParallel.Run(ref job, (job.Length + Ops.Chunk - 1) / Ops.Chunk);
        }
    }
}
