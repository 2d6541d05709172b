using System.Runtime.Intrinsics;

namespace TruthProbe.Numerics;

/// <summary>Which vector width a kernel runs on; <see cref="Auto"/> takes the widest the CPU accelerates.</summary>
public enum SimdPath { Auto, Vector512, Vector256, Generic }

/// <summary>The one choice of vector width that the engine's and the trainer's kernels both follow.</summary>
public static class SimdWidth
{
    /// <summary>Forces a width on the calling thread (tests, benchmarks); <see cref="SimdPath.Auto"/> restores detection.</summary>
    [ThreadStatic] public static SimdPath Forced;

    /// <summary>The width for a kernel started on this thread: the forced one, else the widest the CPU accelerates.</summary>
    public static SimdPath Current => Forced != SimdPath.Auto ? Forced
        : Vector512.IsHardwareAccelerated ? SimdPath.Vector512
        : Vector256.IsHardwareAccelerated ? SimdPath.Vector256 : SimdPath.Generic;

    /// <summary>Bits of the widest vector the hardware accelerates (what provenance records).</summary>
    public static int HardwareBits => Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : 128;
}
