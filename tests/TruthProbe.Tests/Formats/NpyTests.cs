using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Formats;

public class NpyTests
{
    [SkippableFact]
    public void PaperVicunaMap_ReadsAsPublished_32x32WithKnownMeanAndTopHead()
    {
        var map = Npy.Read(SharedData.Path("truth_scores", "vicuna_halueval_292.npy"));
        Assert.Equal([32, 32], map.Shape);
        Assert.Equal("<f8", map.DType);
        // numpy on the paper's file (docs/design.md §8): mean 0.83452, top head (13, 5) = 0.99316.
        Assert.Equal(0.83452, map.Data.Average(), 5);
        int argmax = Array.IndexOf(map.Data, map.Data.Max());
        Assert.Equal((13, 5), (argmax / 32, argmax % 32));
        Assert.Equal(0.99316, map.Data[argmax], 5);
    }

    [Fact]
    public void WriteThenRead_Float64AndFloat32_RoundTripWithShape()
    {
        using var tmp = new TempDir();
        double[] values = [1.5, -2.25, double.NaN, 4, 5, 6];
        Npy.WriteFloat64(tmp.File("a.npy"), values, 2, 3);
        var a = Npy.Read(tmp.File("a.npy"));
        Assert.Equal([2, 3], a.Shape);
        Assert.Equal(values, a.Data);

        Npy.WriteFloat32(tmp.File("b.npy"), [1f, 2f, 3f], 3);
        var b = Npy.Read(tmp.File("b.npy"));
        Assert.Equal("<f4", b.DType);
        Assert.Equal([3], b.Shape);
        Assert.Equal([1.0, 2.0, 3.0], b.Data);
    }

    [Fact]
    public void Header_IsPaddedTo64Bytes_AsNumpyWritesIt()
    {
        using var tmp = new TempDir();
        Npy.WriteFloat64(tmp.File("a.npy"), [1.0], 1, 1);
        byte[] bytes = File.ReadAllBytes(tmp.File("a.npy"));
        int headerLen = BitConverter.ToUInt16(bytes, 8);
        Assert.Equal(0, (10 + headerLen) % 64);
        Assert.Equal(10 + headerLen + 8, bytes.Length);
        Assert.Equal((byte)'\n', bytes[10 + headerLen - 1]);
        Assert.StartsWith("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), }", System.Text.Encoding.Latin1.GetString(bytes, 10, headerLen));
    }

    [Fact]
    public void FortranOrder_IsTransposedToRowMajor()
    {
        // numpy.asfortranarray([[1,2,3],[4,5,6]]) stores 1,4,2,5,3,6.
        string dict = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }";
        dict = dict.PadRight(64 - 10 - 1) + "\n";
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)dict.Length, 0 };
        bytes.AddRange(System.Text.Encoding.Latin1.GetBytes(dict));
        foreach (double v in new double[] { 1, 4, 2, 5, 3, 6 }) bytes.AddRange(BitConverter.GetBytes(v));
        var a = Npy.Parse(bytes.ToArray(), "f.npy");
        Assert.Equal([1.0, 2, 3, 4, 5, 6], a.Data);
    }

    [Fact]
    public void TruncatedOrForeignFile_IsAUserErrorNamingTheFile()
    {
        using var tmp = new TempDir();
        Npy.WriteFloat64(tmp.File("a.npy"), [1.0, 2.0, 3.0, 4.0], 4);
        byte[] bytes = File.ReadAllBytes(tmp.File("a.npy"));
        File.WriteAllBytes(tmp.File("cut.npy"), bytes[..^8]);
        var e = Assert.Throws<UserError>(() => Npy.Read(tmp.File("cut.npy")));
        Assert.Contains("cut.npy", e.Message);
        Assert.Contains("truncated", e.Message);

        File.WriteAllText(tmp.File("x.npy"), "hello");
        Assert.Contains("not a numpy", Assert.Throws<UserError>(() => Npy.Read(tmp.File("x.npy"))).Message);
        Assert.Contains("not found", Assert.Throws<UserError>(() => Npy.Read(tmp.File("missing.npy"))).Message);
    }

    /// <summary>A .npy file laid out by hand (magic, version, little-endian header length, dict) with <paramref name="dataBytes"/> zero bytes of data.</summary>
    private static byte[] HandMade(string dict, int dataBytes, int major = 1, uint? claimedLength = null)
    {
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0 };
        uint length = claimedLength ?? (uint)dict.Length;
        bytes.AddRange(major == 1 ? BitConverter.GetBytes((ushort)length) : BitConverter.GetBytes(length));
        bytes.AddRange(System.Text.Encoding.Latin1.GetBytes(dict));
        bytes.AddRange(new byte[dataBytes]);
        return bytes.ToArray();
    }

    [Theory]
    [InlineData("(-1, 4)", "'-1'")]
    [InlineData("(1.5,)", "'1.5'")]
    [InlineData("(n, 4)", "'n'")]
    [InlineData("(2147483648,)", "'2147483648'")]
    [InlineData("(99999999999999999999999,)", "'99999999999999999999999'")]
    [InlineData("(65536, 65536, 65536, 65536, 65536)", "needs more than the 32 bytes")]
    [InlineData("(2147483647, 2147483647, 2147483647)", "needs more than the 32 bytes")]
    [InlineData("(5,)", "needs more than the 32 bytes")]
    public void BadShape_IsOneUserError_WithoutAllocating(string shape, string expected)
    {
        byte[] bytes = HandMade($"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}\n", 32);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<UserError>(() => Npy.Parse(bytes, "bad.npy"));
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 1 << 20);
        Assert.Contains("bad.npy", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Python2LongShape_AndEmptyArray_AreRead()
    {
        Assert.Equal([2, 2], Npy.Parse(HandMade("{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 2L), }\n", 32), "l.npy").Shape);
        Assert.Empty(Npy.Parse(HandMade("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 2147483647), }\n", 0), "e.npy").Data);
    }

    [Theory]
    [InlineData(2, 0x8000_0000u)]
    [InlineData(3, 0xFFFF_FFFFu)]
    [InlineData(1, 0xFFFFu)]
    public void HeaderLengthPastTheFile_IsAUserError(int major, uint claimed)
    {
        byte[] bytes = HandMade("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n", 8, major, claimed);
        Assert.Contains("header claims", Assert.Throws<UserError>(() => Npy.Parse(bytes, "h.npy")).Message);
    }
}
