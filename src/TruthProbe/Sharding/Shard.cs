using System.Globalization;
using TruthProbe.Common;

namespace TruthProbe.Sharding;

/// <summary>
/// One of <see cref="Count"/> parts of a dataset walk, <see cref="Index"/> 0-based (the command line and the
/// manifests say K/N with K = Index + 1). Shard k of n items holds the contiguous block
/// [floor(k n / N), floor((k + 1) n / N)): blocks differ in size by at most one, cover every item once, and keep the
/// data's order, so a merge is a concatenation. Verbs that share work between items (an image's prefix, a tokenised
/// row) partition whole groups instead (<see cref="ItemsOfGroups"/>).
/// </summary>
public readonly record struct Shard(int Index, int Count)
{
    public const string SlurmVariable = "SLURM_ARRAY_TASK_ID", KubernetesVariable = "JOB_COMPLETION_INDEX";
    /// <summary>The most shards a run may have: far beyond useful, small enough that every count stays an int.</summary>
    public const int MaxCount = 100_000;

    public static Shard Whole => new(0, 1);

    /// <summary>The shard's number as the command line writes it, <c>K/N</c> with K from 1.</summary>
    public string Label => string.Create(CultureInfo.InvariantCulture, $"{Index + 1}/{Count}");

    /// <summary>
    /// <c>K/N</c> (K from 1 to N) or <c>auto/N</c>: K - 1 from <see cref="SlurmVariable"/> (an array submitted as
    /// <c>--array=0-(N-1)</c>) or else <see cref="KubernetesVariable"/> (an Indexed Job), both 0-based.
    /// <paramref name="environment"/> reads a variable (null when unset).
    /// </summary>
    public static Shard Parse(string text, Func<string, string?> environment)
    {
        int slash = text.IndexOf('/');
        string index = slash < 0 ? "" : text[..slash].Trim(), count = slash < 0 ? "" : text[(slash + 1)..].Trim();
        if (!int.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 1 || n > MaxCount)
            throw new UserError($"shard '{Echo(text)}' must be K/N or auto/N with N a whole number from 1 to {MaxCount}, e.g. 2/4") { Field = "shard" };
        if (index == "auto") return FromScheduler(n, environment);
        if (!int.TryParse(index, NumberStyles.None, CultureInfo.InvariantCulture, out int k) || k < 1 || k > n)
            throw new UserError($"shard '{Echo(text)}': K must be a whole number from 1 to {n} (K/N counts from 1; auto/{n} reads the scheduler's 0-based index)") { Field = "shard" };
        return new Shard(k - 1, n);
    }

    private static Shard FromScheduler(int n, Func<string, string?> environment)
    {
        string? slurm = environment(SlurmVariable), kubernetes = environment(KubernetesVariable);
        var (name, value) = slurm != null ? (SlurmVariable, slurm) : kubernetes != null ? (KubernetesVariable, kubernetes) : (null, null);
        if (name == null)
            throw new UserError($"shard auto/{n}: neither {SlurmVariable} (Slurm job array) nor {KubernetesVariable} (Kubernetes Indexed Job) is set; " +
                                $"run inside such a job, or give the shard as K/{n}") { Field = "shard" };
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int index) || index >= n)
            throw new UserError($"shard auto/{n}: {name}={Echo(value!)} is not an index from 0 to {n - 1}; " +
                                (name == SlurmVariable ? $"submit the array as --array=0-{n - 1}" : $"give the Job completions: {n}")) { Field = "shard" };
        // Slurm says which indices the array holds: an array of another range (1-N, a gap) would silently run the wrong shards.
        if (name == SlurmVariable && (environment("SLURM_ARRAY_TASK_MIN") is { } min && min != "0" ||
                                      environment("SLURM_ARRAY_TASK_MAX") is { } max && max != (n - 1).ToString(CultureInfo.InvariantCulture)))
            throw new UserError($"shard auto/{n}: this Slurm array runs indices {environment("SLURM_ARRAY_TASK_MIN")}-{environment("SLURM_ARRAY_TASK_MAX")}; " +
                                $"submit it as --array=0-{n - 1} so that its tasks are the {n} shards") { Field = "shard" };
        return new Shard(index, n);
    }

    /// <summary>The shard's block [Start, End) of <paramref name="items"/> items in data order.</summary>
    public (int Start, int End) Range(int items)
    {
        if (items < 0) throw new ArgumentOutOfRangeException(nameof(items));
        return ((int)((long)Index * items / Count), (int)((long)(Index + 1) * items / Count));
    }

    /// <summary>The shard's contiguous block of <paramref name="items"/>, in order; an empty block is refused (<see cref="RequireItems"/>).</summary>
    public List<T> Block<T>(List<T> items, string what)
    {
        RequireItems(items.Count, what);
        var (start, end) = Range(items.Count);
        return items.GetRange(start, end - start);
    }

    /// <summary>
    /// The items (indices into <paramref name="groupOfItem"/>) whose group falls in this shard's block of the
    /// groups, groups numbered in order of first appearance: every item of a group goes to one shard.
    /// </summary>
    public IReadOnlyList<int> ItemsOfGroups<TGroup>(IReadOnlyList<TGroup> groupOfItem) where TGroup : notnull
    {
        var number = new Dictionary<TGroup, int>();
        foreach (var g in groupOfItem) number.TryAdd(g, number.Count);
        var (start, end) = Range(number.Count);
        var items = new List<int>();
        for (int i = 0; i < groupOfItem.Count; i++)
            if (number[groupOfItem[i]] is int n && n >= start && n < end) items.Add(i);
        return items;
    }

    /// <summary>
    /// Refuses a shard with nothing to do: a part without rows is an empty job that a merge would still have to find.
    /// </summary>
    public void RequireItems(int items, string what)
    {
        var (start, end) = Range(items);
        if (end == start)
            throw new UserError($"shard {Label} of {items} {what} is empty; use at most {items} shards") { Field = "shard" };
    }

    private static string Echo(string value) => value.Length <= 40 ? value : value[..40] + "...";
}
