using TruthProbe.Common;
using TruthProbe.Probing;

namespace TruthProbe.Tests.Probing;

public class FoldsTests
{
    [Fact]
    public void Shuffled_292Rows_PartitionsLikeKFold_59_59_58_58_58()
    {
        // scikit-learn's KFold gives the first n % k folds one extra row; the paper's 292-row maps need exactly these sizes.
        var folds = Folds.Shuffled(292, 5, 42);
        Assert.Equal([59, 59, 58, 58, 58], folds.Validation.Select(v => v.Length));
        var all = folds.Validation.SelectMany(v => v).OrderBy(i => i).ToArray();
        Assert.Equal(Enumerable.Range(0, 292), all);
        for (int f = 0; f < 5; f++)
        {
            Assert.Empty(folds.Train[f].Intersect(folds.Validation[f]));
            Assert.Equal(292, folds.Train[f].Length + folds.Validation[f].Length);
            Assert.True(folds.Train[f].SequenceEqual(folds.Train[f].Order()), "training rows stay in data order");
        }
    }

    [Fact]
    public void Shuffled_SameSeedSameFolds_OtherSeedOtherFolds_AndNotContiguous()
    {
        var a = Folds.Shuffled(100, 5, 42);
        var b = Folds.Shuffled(100, 5, 42);
        var c = Folds.Shuffled(100, 5, 43);
        Assert.Equal(a.FoldOfRow, b.FoldOfRow);
        Assert.NotEqual(a.FoldOfRow, c.FoldOfRow);
        // shuffled: the first validation set is not simply rows 0..19
        Assert.NotEqual(Enumerable.Range(0, 20), a.Validation[0]);
    }

    [Fact]
    public void Grouped_KeepsEachItemInOneFold_BalancesRows_AndFollowsTheSeed()
    {
        // 97 items: most with a gold and a hallucinated row, every 7th with three rows.
        var items = Enumerable.Range(0, 97).SelectMany(i => Enumerable.Repeat((long)i * 10, i % 7 == 0 ? 3 : 2)).ToArray();
        var folds = Folds.Grouped(items, 5, 42);
        for (int r = 0; r < items.Length; r++)
            for (int q = 0; q < items.Length; q++)
                if (items[r] == items[q]) Assert.Equal(folds.FoldOfRow[r], folds.FoldOfRow[q]);
        var sizes = folds.Validation.Select(v => v.Length).ToArray();
        Assert.Equal(items.Length, sizes.Sum());
        Assert.True(sizes.Max() - sizes.Min() <= 3, $"fold sizes {string.Join(",", sizes)} differ by more than the largest item");
        Assert.Equal(folds.FoldOfRow, Folds.Grouped(items, 5, 42).FoldOfRow);
        Assert.NotEqual(folds.FoldOfRow, Folds.Grouped(items, 5, 43).FoldOfRow);
        Assert.Throws<ArgumentOutOfRangeException>(() => Folds.Grouped([1, 1, 2, 2], 3, 0));
    }

    [Fact]
    public void SplitMix64_FirstOutputs_MatchThePublishedSequenceForSeed0()
    {
        // Reference values of SplitMix64 (Vigna) from seed 0.
        var rng = new SeededRandom(0);
        Assert.Equal(0xE220A8397B1DCDAFUL, rng.NextUInt64());
        Assert.Equal(0x6E789E6AA1B965F4UL, rng.NextUInt64());
        Assert.Equal(0x06C45D188009454FUL, rng.NextUInt64());
    }
}
