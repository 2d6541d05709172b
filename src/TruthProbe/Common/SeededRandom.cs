namespace TruthProbe.Common;

/// <summary>
/// SplitMix64: a tiny generator whose output is fixed by its seed on every platform and .NET version,
/// which System.Random does not promise. Used for folds, label shuffles, random gates and answer choices, so
/// each can be re-implemented outside .NET from its seed (Steele, Lea, Flood 2014); the lab draws from it
/// through <see cref="SeededSystemRandom"/>.
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
    public int NextInt(int bound) => (int)NextBelow((ulong)bound);

    /// <summary>Uniform in [0, bound) for any bound > 0, without modulo bias.</summary>
    public ulong NextBelow(ulong bound)
    {
        while (true)
        {
            ulong x = NextUInt64();
            UInt128 m = (UInt128)x * bound;
            ulong low = (ulong)m;
            if (low >= (0UL - bound) % bound) return (ulong)(m >> 64);
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

/// <summary>
/// <see cref="System.Random"/>'s API over <see cref="SeededRandom"/>, for code written against Random (the
/// lab's world, corpus and initialisation): the same seed gives the same stream on every .NET version and
/// platform, which <c>new Random(seed)</c> does not promise.
/// </summary>
public sealed class SeededSystemRandom(int seed) : Random
{
    private SeededRandom _state = new((ulong)(uint)seed);

    protected override double Sample() => _state.NextDouble();
    public override double NextDouble() => _state.NextDouble();
    public override int Next() => _state.NextInt(int.MaxValue);

    public override int Next(int maxValue)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxValue);
        return maxValue == 0 ? 0 : _state.NextInt(maxValue);
    }

    public override int Next(int minValue, int maxValue)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minValue, maxValue);
        return minValue == maxValue ? minValue : (int)(minValue + (long)_state.NextBelow((ulong)((long)maxValue - minValue)));
    }

    public override long NextInt64() => (long)_state.NextBelow(long.MaxValue);

    public override void NextBytes(Span<byte> buffer)
    {
        for (int i = 0; i < buffer.Length; i++) buffer[i] = (byte)_state.NextUInt64();
    }

    public override void NextBytes(byte[] buffer) => NextBytes(buffer.AsSpan());
}
