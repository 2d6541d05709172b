using TruthProbe.Lab;
using TruthProbe.Model;
using TruthProbe.Numerics;

namespace TruthProbe.Tests.Training;

/// <summary>
/// Runs the lab's kernels on one vector width (Vector512, Vector256, or Vector128 for <see cref="SimdPath.Generic"/>)
/// on the calling thread, so each kernel test covers every width this machine can run, whatever its default.
/// </summary>
internal sealed class Widths : IDisposable
{
    public static readonly SimdPath[] All = [SimdPath.Vector512, SimdPath.Vector256, SimdPath.Generic];

    /// <summary>Theory rows of one column: every width.</summary>
    public static IEnumerable<object[]> Every => Each();

    /// <summary>Theory rows: every width, each followed by the columns of every case (none: the widths alone).</summary>
    public static IEnumerable<object[]> Each(params object[][] cases) =>
        from path in All from row in cases.Length == 0 ? [[]] : cases select row.Prepend(path).ToArray();

    private Widths(SimdPath path) => SimdWidth.Forced = path;

    public static Widths Use(SimdPath path) => new(path);

    public void Dispose() => SimdWidth.Forced = SimdPath.Auto;
}
