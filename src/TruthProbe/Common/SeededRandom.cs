namespace TruthProbe.Common;

/// <summary>
/// SplitMix64: a tiny generator whose output is fixed by its seed on every platform and .NET version,
/// which System.Random does not promise. Used for folds, label shuffles, random gates and answer choices, so
/// each can be re-implemented outside .NET from its seed (Steele, Lea, Flood 2014).
/// </summary>
public struct SeededRandom(ulong seed)
{
    private ulong _state = seed;

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Standard normal by Box-Muller (one value per call: simplicity over speed).</summary>
    public double NextGaussian()
    {
        double u1 = NextDouble();
        double u2 = NextDouble();
        return Math.Sqrt(-2 * Math.Log(1 - u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Uniform in [0, bound) without modulo bias (Lemire's multiply-shift with rejection).</summary>
    public int NextInt(int bound)
    {
        ulong range = (ulong)bound;
        while (true)
        {
            ulong x = NextUInt64();
            UInt128 m = (UInt128)x * range;
            ulong low = (ulong)m;
            if (low >= (0UL - range) % range) return (int)(m >> 64);
        }
    }

    /// <summary>A Fisher-Yates permutation of 0..n-1 determined by the seed.</summary>
    public static int[] Permutation(int n, int seed)
    {
        var rng = new SeededRandom((ulong)(uint)seed);
        var p = Enumerable.Range(0, n).ToArray();
        for (int i = n - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }
}
