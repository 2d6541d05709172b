using System.Numerics;
using System.Runtime.Intrinsics;

namespace TruthProbe.Numerics;

/// <summary>
/// Row-wise work whose rows [first, end) form share <c>part</c> of <see cref="RowParallel.Parts"/>, on vectors
/// of type TVec (the width <see cref="Lanes.Path"/> picked; jobs without vectors ignore it).
/// </summary>
internal interface IRowJob<TSelf> where TSelf : unmanaged, IRowJob<TSelf>
{
    static abstract void Rows<TVec>(ref TSelf job, int first, int end, int part) where TVec : unmanaged, IVec<TVec>;
}

/// <summary>
/// Splits row-wise work (norms, elementwise layers, the loss, the optimizer) into a fixed number of contiguous
/// shares and runs them on the engine's <see cref="WorkerPool"/>. The shares depend neither on the core count
/// nor on timing, so a sum kept per share and then added in share order gives the same bits on every run.
/// </summary>
internal static unsafe class RowParallel
{
    public const int Parts = 8;

    private struct Call<TJob> where TJob : unmanaged
    {
        public TJob* Job;
        public int Rows;
    }

    public static void Run<TJob>(ref TJob job, int rows) where TJob : unmanaged, IRowJob<TJob>
    {
        fixed (TJob* pointer = &job)
        {
            var call = new Call<TJob> { Job = pointer, Rows = rows };
            WorkerPool.Run(Lanes.Pick(&Part<TJob, Vec<Vector512<float>>>, &Part<TJob, Vec<Vector256<float>>>, &Part<TJob, Vec<Vector128<float>>>), &call, Parts);
        }
    }

    private static void Part<TJob, TVec>(void* args, int part, int parts) where TJob : unmanaged, IRowJob<TJob> where TVec : unmanaged, IVec<TVec>
    {
        ref var call = ref *(Call<TJob>*)args;
        TJob.Rows<TVec>(ref *call.Job, (int)((long)call.Rows * part / parts), (int)((long)call.Rows * (part + 1) / parts), part);
    }
}
