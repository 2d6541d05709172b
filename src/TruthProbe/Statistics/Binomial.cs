namespace TruthProbe.Statistics;

/// <summary>
/// Exact binomial and hypergeometric probabilities. The point mass is Loader's saddle-point form (as R's
/// dbinom computes it), which keeps full relative precision for any n, where a sum of log-factorials loses
/// digits to cancellation once n reaches the millions; tails sum the mass outwards from the observed value
/// by the ratio of neighbouring terms, stopping when the terms no longer change the sum.
/// </summary>
public static class Binomial
{
    /// <summary>P(X = k) for X ~ Binomial(n, p).</summary>
    public static double Pmf(int n, int k, double p)
    {
        Check(n, p);
        if (k < 0 || k > n) return 0;
        return Mass(k, n, p, 1 - p);
    }

    /// <summary>P(X &gt;= k): the one-sided p-value of k successes when more than n*p are the alternative.</summary>
    public static double UpperTail(int n, int k, double p)
    {
        Check(n, p);
        if (k <= 0) return 1;
        if (k > n) return 0;
        if (p == 0) return 0;
        if (p == 1) return 1;
        if (k < n * p) return 1 - LowerTail(n, k - 1, p);
        double q = 1 - p, ratio = p / q, term = Mass(k, n, p, q), sum = 0;
        for (int j = k; j <= n && term > 0; j++)
        {
            double next = sum + term;
            if (next == sum) break;
            sum = next;
            term *= (n - j) / (j + 1.0) * ratio;
        }
        return Math.Min(1, sum);
    }

    /// <summary>P(X &lt;= k).</summary>
    public static double LowerTail(int n, int k, double p)
    {
        Check(n, p);
        if (k < 0) return 0;
        if (k >= n) return 1;
        if (p == 0) return 1;
        if (p == 1) return 0;
        if (k > n * p) return 1 - UpperTail(n, k + 1, p);
        double q = 1 - p, ratio = q / p, term = Mass(k, n, p, q), sum = 0;
        for (int j = k; j >= 0 && term > 0; j--)
        {
            double next = sum + term;
            if (next == sum) break;
            sum = next;
            term *= j / (n - j + 1.0) * ratio;
        }
        return Math.Min(1, sum);
    }

    /// <summary>
    /// Two-sided exact p-value as scipy.stats.binomtest computes it: the mass of every outcome no more likely
    /// than k (with scipy's relative tolerance 1e-7 on "no more likely").
    /// </summary>
    public static double TwoSided(int n, int k, double p)
    {
        Check(n, p);
        if (k < 0 || k > n) throw new ArgumentOutOfRangeException(nameof(k), $"k must be in 0..{n}, got {k}");
        double mean = n * p;
        if (k == mean) return 1;
        double limit = Pmf(n, k, p) * (1 + 1e-7);
        double total;
        if (k < mean)
        {
            // The mass falls from ceil(mean) to n: binary-search the first outcome at or below the limit.
            int lo = (int)Math.Ceiling(mean), hi = n + 1;
            while (lo < hi)
            {
                int mid = lo + (hi - lo) / 2;
                if (Pmf(n, mid, p) <= limit) hi = mid; else lo = mid + 1;
            }
            total = LowerTail(n, k, p) + (lo <= n ? UpperTail(n, lo, p) : 0);
        }
        else
        {
            // The mass rises from 0 to floor(mean): the last outcome at or below the limit.
            int lo = -1, hi = (int)Math.Floor(mean);
            while (lo < hi)
            {
                int mid = hi - (hi - lo) / 2;
                if (Pmf(n, mid, p) <= limit) lo = mid; else hi = mid - 1;
            }
            total = (lo >= 0 ? LowerTail(n, lo, p) : 0) + UpperTail(n, k, p);
        }
        return Math.Min(1, total);
    }

    private static void Check(int n, double p)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), $"n must be non-negative, got {n}");
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), $"p must be in [0, 1], got {p}");
    }

    /// <summary>Loader (2000), "Fast and accurate computation of binomial probabilities"; R's dbinom_raw.</summary>
    internal static double Mass(double x, double n, double p, double q)
    {
        if (p == 0) return x == 0 ? 1 : 0;
        if (q == 0) return x == n ? 1 : 0;
        if (x == 0)
        {
            if (n == 0) return 1;
            return Math.Exp(p < 0.1 ? -DevianceTerm(n, n * q) - n * p : n * Math.Log(q));
        }
        if (x == n) return Math.Exp(q < 0.1 ? -DevianceTerm(n, n * p) - n * q : n * Math.Log(p));
        double lc = StirlingError(n) - StirlingError(x) - StirlingError(n - x) - DevianceTerm(x, n * p) - DevianceTerm(n - x, n * q);
        double lf = Math.Log(2 * Math.PI) + Math.Log(x) + Math.Log(n - x) - Math.Log(n);
        return Math.Exp(lc - 0.5 * lf);
    }

    /// <summary>log(n!) - log(sqrt(2 pi n) (n/e)^n) for whole n &gt;= 1: exact sums below 16, Stirling's series above.</summary>
    private static double StirlingError(double n)
    {
        if (n <= 15)
        {
            double logFactorial = 0;
            for (int i = 2; i <= n; i++) logFactorial += Math.Log(i);
            return logFactorial - (n + 0.5) * Math.Log(n) + n - 0.5 * Math.Log(2 * Math.PI);
        }
        const double s0 = 1.0 / 12, s1 = 1.0 / 360, s2 = 1.0 / 1260, s3 = 1.0 / 1680, s4 = 1.0 / 1188;
        double nn = n * n;
        if (n > 500) return (s0 - s1 / nn) / n;
        if (n > 80) return (s0 - (s1 - s2 / nn) / nn) / n;
        if (n > 35) return (s0 - (s1 - (s2 - s3 / nn) / nn) / nn) / n;
        return (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / n;
    }

    /// <summary>x log(x / np) + np - x, by its series when x is near np (where the direct form cancels).</summary>
    private static double DevianceTerm(double x, double np)
    {
        if (Math.Abs(x - np) < 0.1 * (x + np))
        {
            double v = (x - np) / (x + np), s = (x - np) * v, ej = 2 * x * v;
            v *= v;
            for (int j = 1; j < 1000; j++)
            {
                ej *= v;
                double s1 = s + ej / (2 * j + 1);
                if (s1 == s) return s1;
                s = s1;
            }
        }
        return x * Math.Log(x / np) + np - x;
    }
}

/// <summary>Draws without replacement: X successes among <c>draws</c> items taken from a population holding <c>successes</c>.</summary>
public static class Hypergeometric
{
    /// <summary>P(X = x), by R's dhyper: a ratio of three binomial masses, each exact to full precision.</summary>
    public static double Pmf(int population, int successes, int draws, int x)
    {
        Check(population, successes, draws);
        int failures = population - successes;
        if (x < 0 || x > successes || x > draws || draws - x > failures) return 0;
        if (draws == 0) return x == 0 ? 1 : 0;
        double p = draws / (double)population, q = (population - draws) / (double)population;
        return Binomial.Mass(x, successes, p, q) * Binomial.Mass(draws - x, failures, p, q) / Binomial.Mass(draws, population, p, q);
    }

    /// <summary>P(X &gt;= x): the chance of an overlap at least as large as the one observed.</summary>
    public static double UpperTail(int population, int successes, int draws, int x)
    {
        Check(population, successes, draws);
        double sum = 0;
        for (int j = Math.Max(x, 0); j <= Math.Min(successes, draws); j++) sum += Pmf(population, successes, draws, j);
        return Math.Min(1, sum);
    }

    private static void Check(int population, int successes, int draws)
    {
        if (population < 0 || successes < 0 || successes > population || draws < 0 || draws > population)
            throw new ArgumentOutOfRangeException(nameof(population),
                $"need 0 <= successes ({successes}), draws ({draws}) <= population ({population})");
    }
}
