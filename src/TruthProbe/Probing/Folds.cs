using TruthProbe.Common;
namespace TruthProbe.Probing;

/// <summary>
/// k-fold cross-validation splits, shuffled from a seed (like scikit-learn's <c>KFold(shuffle=True)</c>,
/// not bit-identical to it): rows are permuted, cut into k contiguous chunks whose sizes differ by at most
/// one (the first <c>rows % k</c> chunks get the extra row), and each chunk in turn is the validation set.
/// Both index lists of a fold are ascending, so training batches run in the data's own order as in the reference.
/// <see cref="Grouped"/> keeps the rows of one item (a question's gold and hallucinated answers) in one fold.
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

    /// <summary>
    /// Group k-fold: the distinct items are permuted from the seed and each, in that order, joins the fold
    /// with the fewest rows so far (lowest index on ties), so no item has rows on both sides of a split. With
    /// row-level folds a row's twin sits in training with the opposite label, and a probe that recognises
    /// the item (not the truth) scores below chance on validation.
    /// </summary>
    /// <param name="itemOfRow">an item id per row; rows with equal ids stay together.</param>
    public static Folds Grouped(IReadOnlyList<long> itemOfRow, int count, int seed)
    {
        if (count < 2) throw new ArgumentOutOfRangeException(nameof(count), "cross-validation needs at least 2 folds");
        var items = itemOfRow.Distinct().ToArray();
        if (items.Length < count) throw new ArgumentOutOfRangeException(nameof(itemOfRow), $"{items.Length} items cannot fill {count} folds");
        var foldOfItem = new Dictionary<long, int>(items.Length);
        var rowsOfItem = itemOfRow.GroupBy(i => i).ToDictionary(g => g.Key, g => g.Count());
        var rowsInFold = new int[count];
        foreach (int k in SeededRandom.Permutation(items.Length, seed))
        {
            int fold = 0;
            for (int f = 1; f < count; f++) if (rowsInFold[f] < rowsInFold[fold]) fold = f;
            foldOfItem[items[k]] = fold;
            rowsInFold[fold] += rowsOfItem[items[k]];
        }
        return new Folds(itemOfRow.Count, count, seed, itemOfRow.Select(i => foldOfItem[i]).ToArray());
    }

    public int MaxTrainRows => Train.Max(t => t.Length);
    public int MaxValidationRows => Validation.Max(v => v.Length);
}
