using TruthProbe.Common;

namespace TruthProbe.Tests.Common;

public class SeededSystemRandomTests
{
    [Fact]
    public void DrawsTheSplitMix64Stream_ThroughRandomsApi()
    {
        // SplitMix64 from seed 0 starts 0xE220A8397B1DCDAF (Vigna's reference); NextDouble keeps its top 53 bits.
        Random rng = new SeededSystemRandom(0);
        Assert.Equal((0xE220A8397B1DCDAFUL >> 11) * (1.0 / (1UL << 53)), rng.NextDouble());
        var a = new SeededSystemRandom(42);
        var b = new SeededSystemRandom(42);
        Assert.Equal(Enumerable.Range(0, 50).Select(_ => a.Next(7)), Enumerable.Range(0, 50).Select(_ => b.Next(7)));
    }

    [Fact]
    public void Bounds_AreHonoured_AndEveryValueOccurs()
    {
        var rng = new SeededSystemRandom(3);
        var small = Enumerable.Range(0, 2000).Select(_ => rng.Next(5)).ToArray();
        Assert.Equal([0, 1, 2, 3, 4], small.Distinct().Order());
        var ranged = Enumerable.Range(0, 2000).Select(_ => rng.Next(-3, 2)).ToArray();
        Assert.Equal([-3, -2, -1, 0, 1], ranged.Distinct().Order());
        Assert.All(Enumerable.Range(0, 200).Select(_ => rng.Next(int.MinValue, int.MaxValue)), v => Assert.InRange(v, int.MinValue, int.MaxValue - 1));
        Assert.Equal(0, rng.Next(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => rng.Next(-1));
    }
}
