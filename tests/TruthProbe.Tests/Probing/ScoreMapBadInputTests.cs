using System.Text;
using TruthProbe.Common;
using TruthProbe.Probing;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Probing;

/// <summary>CSV maps whose rows would span an absurd table fail before the table is allocated.</summary>
public class ScoreMapBadInputTests
{
    [Fact]
    public void DiagonalCsvOfTwentyThousandIds_IsRefusedBeforeAllocating()
    {
        // 20,000 rows "i,i,0.5": 20,000 distinct layers x 20,000 distinct heads = 4e8 cells (3.2 GB of doubles).
        using var tmp = new TempDir();
        var csv = new StringBuilder("layer,head,accuracy\n");
        for (int i = 0; i < 20_000; i++) csv.Append(i).Append(',').Append(i).Append(",0.5\n");
        File.WriteAllText(tmp.File("diag.csv"), csv.ToString());
        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<UserError>(() => ScoreMap.Load(tmp.File("diag.csv")));
        Assert.Contains("diag.csv", error.Message);
        Assert.Contains("20000 distinct layers x 20000 distinct heads", error.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 100_000_000, "the refusal itself must not allocate the table");
    }

    [Fact]
    public void SparseCsvOfALargeModel_StillLoads()
    {
        // The top heads of a 126-layer x 128-head model (Llama 3.1 405B): a wide but real table.
        using var tmp = new TempDir();
        File.WriteAllText(tmp.File("top.csv"), "layer,head,accuracy\n0,0,0.9\n125,127,0.8\n");
        var map = ScoreMap.Load(tmp.File("top.csv"));
        Assert.Equal("2x2", map.Shape);
        Assert.Equal(0.8, map[1, 1]);
        Assert.True(double.IsNaN(map[0, 1]));
    }
}
