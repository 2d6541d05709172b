using TruthProbe.Common;
using TruthProbe.Sharding;

namespace TruthProbe.Tests.Sharding;

public class ShardTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] variables) =>
        name => variables.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void Blocks_CoverEveryItemOnce_InOrder_SizesWithinOne_ForEveryShardCountUpTo64()
    {
        foreach (int items in new[] { 1, 2, 3, 7, 63, 64, 65, 100, 1000, 2701 })
            for (int n = 1; n <= 64; n++)
            {
                var blocks = Enumerable.Range(0, n).Select(k => new Shard(k, n).Range(items)).ToList();
                // Contiguous and in order: each block starts where the previous ended; together [0, items).
                Assert.Equal(0, blocks[0].Start);
                Assert.Equal(items, blocks[^1].End);
                for (int k = 1; k < n; k++) Assert.Equal(blocks[k - 1].End, blocks[k].Start);
                var sizes = blocks.Select(b => b.End - b.Start).ToList();
                Assert.True(sizes.Max() - sizes.Min() <= 1, $"{items} items in {n} shards: sizes {string.Join(",", sizes)}");
            }
    }

    [Fact]
    public void GroupedBlocks_KeepEachGroupInOneShard_AndCoverEveryItemOnce()
    {
        // 23 questions about 7 images, interleaved as a POPE file lists them.
        string[] imageOf = Enumerable.Range(0, 23).Select(i => $"img{(i * 5) % 7}").ToArray();
        for (int n = 1; n <= 7; n++)
        {
            var shards = Enumerable.Range(0, n).Select(k => new Shard(k, n).ItemsOfGroups(imageOf)).ToList();
            Assert.Equal(Enumerable.Range(0, 23), shards.SelectMany(s => s).Order());
            for (int a = 0; a < n; a++)
                for (int b = a + 1; b < n; b++)
                    Assert.Empty(shards[a].Select(i => imageOf[i]).Intersect(shards[b].Select(i => imageOf[i])));
        }
    }

    [Theory]
    [InlineData("1/1", 0, 1)]
    [InlineData("2/4", 1, 4)]
    [InlineData("4/4", 3, 4)]
    [InlineData(" 3 / 8 ", 2, 8)]
    public void Parse_ReadsKOfNCountingFromOne(string text, int index, int count) =>
        Assert.Equal(new Shard(index, count), Shard.Parse(text, Env()));

    [Theory]
    [InlineData("0/4", "from 1 to 4")]
    [InlineData("5/4", "from 1 to 4")]
    [InlineData("2/0", "N a whole number")]
    [InlineData("2", "K/N or auto/N")]
    [InlineData("a/b", "K/N or auto/N")]
    [InlineData("-1/4", "from 1 to 4")]
    [InlineData("1/100001", "N a whole number")]
    public void Parse_RefusesBadShards(string text, string expected)
    {
        var e = Assert.Throws<UserError>(() => Shard.Parse(text, Env()));
        Assert.Contains(expected, e.Message);
        Assert.Equal("shard", e.Field);
    }

    [Fact]
    public void Auto_TakesTheSlurmArrayIndex_ThenTheKubernetesCompletionIndex()
    {
        Assert.Equal(new Shard(2, 4), Shard.Parse("auto/4", Env((Shard.SlurmVariable, "2"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_MAX", "3"))));
        Assert.Equal(new Shard(0, 4), Shard.Parse("auto/4", Env((Shard.KubernetesVariable, "0"))));
        Assert.Equal(new Shard(3, 4), Shard.Parse("auto/4", Env((Shard.SlurmVariable, "3"), (Shard.KubernetesVariable, "1"))));
    }

    [Fact]
    public void Auto_WithoutAScheduler_NamesBothVariables()
    {
        var e = Assert.Throws<UserError>(() => Shard.Parse("auto/4", Env()));
        Assert.Contains(Shard.SlurmVariable, e.Message);
        Assert.Contains(Shard.KubernetesVariable, e.Message);
    }

    [Theory]
    [InlineData("4", null, null, "--array=0-3")]        // index past the last shard
    [InlineData("x", null, null, "--array=0-3")]
    [InlineData("2", "1", "4", "--array=0-3")]          // an array submitted as 1-4: shard 1/4 would never run
    [InlineData("2", "0", "7", "--array=0-3")]          // more tasks than shards
    public void Auto_RefusesASlurmArrayThatIsNotTheShards(string id, string? min, string? max, string fix)
    {
        var variables = new List<(string, string)> { (Shard.SlurmVariable, id) };
        if (min != null) variables.Add(("SLURM_ARRAY_TASK_MIN", min));
        if (max != null) variables.Add(("SLURM_ARRAY_TASK_MAX", max));
        var e = Assert.Throws<UserError>(() => Shard.Parse("auto/4", Env(variables.ToArray())));
        Assert.Contains(fix, e.Message);
    }

    [Fact]
    public void RequireItems_RefusesAnEmptyShard()
    {
        new Shard(2, 3).RequireItems(3, "rows");
        // 3 rows in 5 blocks [0,0) [0,1) [1,1) [1,2) [2,3): shards 1/5 and 3/5 would do nothing.
        new Shard(3, 5).RequireItems(3, "rows");
        var e = Assert.Throws<UserError>(() => new Shard(2, 5).RequireItems(3, "rows"));
        Assert.Contains("shard 3/5 of 3 rows is empty; use at most 3 shards", e.Message);
    }
}
