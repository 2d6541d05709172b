namespace TruthProbe.Probing;

/// <summary>
/// k-fold cross-validation splits, shuffled from a seed (like scikit-learn's <c>KFold(shuffle=True)</c>,
/// not bit-identical to it): rows are permuted, cut into k contiguous chunks whose sizes differ by at most
/// one (the first <c>rows % k</c> chunks get the extra row), and each chunk in turn is the validation set.
/// Both index lists of a fold are ascending, so training batches run in the data's own order as in the reference.
/// </summary>
public sealed class Folds
{
    public int Rows { get; }
    public int Count { get; }
    public int Seed { get; }
    /// <summary>Which fold validates each row.</summary>
    public int[] FoldOfRow { get; }
    public int[][] Train { get; }
    public int[][] Validation { get; }

    private Folds(int rows, int count, int seed, int[] foldOfRow)
    {
        Rows = rows;
        Count = count;
        Seed = seed;
        FoldOfRow = foldOfRow;
        Train = new int[count][];
        Validation = new int[count][];
        for (int f = 0; f < count; f++)
        {
            Validation[f] = Enumerable.Range(0, rows).Where(i => foldOfRow[i] == f).ToArray();
            Train[f] = Enumerable.Range(0, rows).Where(i => foldOfRow[i] != f).ToArray();
        }
    }

    public static Folds Shuffled(int rows, int count, int seed)
    {
        if (count < 2) throw new ArgumentOutOfRangeException(nameof(count), "cross-validation needs at least 2 folds");
        if (rows < count) throw new ArgumentOutOfRangeException(nameof(rows), $"{rows} rows cannot fill {count} folds");
        int[] order = SeededRandom.Permutation(rows, seed);
        var foldOfRow = new int[rows];
        int start = 0;
        for (int f = 0; f < count; f++)
        {
            int size = rows / count + (f < rows % count ? 1 : 0);
            for (int k = start; k < start + size; k++) foldOfRow[order[k]] = f;
            start += size;
        }
        return new Folds(rows, count, seed, foldOfRow);
    }

    public int MaxTrainRows => Train.Max(t => t.Length);
    public int MaxValidationRows => Validation.Max(v => v.Length);
}

/// <summary>
/// SplitMix64: a tiny generator whose output is fixed by its seed on every platform and .NET version,
/// which System.Random does not promise. Used for fold assignment and label shuffles.
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
