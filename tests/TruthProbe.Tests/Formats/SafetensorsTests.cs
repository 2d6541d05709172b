using System.Buffers.Binary;
using System.Text;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Formats;

public class SafetensorsTests
{
    /// <summary>Bytes laid out by hand from the format's specification, independent of our writer.</summary>
    private static byte[] HandMadeFile(string headerJson, byte[] data)
    {
        byte[] header = Encoding.UTF8.GetBytes(headerJson);
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    private static byte[] Floats(params float[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    [Fact]
    public void HandMadeFile_ReadsDtypesShapesOffsetsAndMetadata()
    {
        using var tmp = new TempDir();
        // a: F32 [2,2] at 0..16; b: BF16 [3] at 16..22 holding 1.0, -2.0, 0.5 (bf16 = top 16 bits of fp32).
        byte[] data = [.. Floats(1, 2, 3, 4), 0x80, 0x3F, 0x00, 0xC0, 0x00, 0x3F];
        string json = """{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}}""";
        File.WriteAllBytes(tmp.File("m.safetensors"), HandMadeFile(json, data));

        using var f = SafetensorsFile.Open(tmp.File("m.safetensors"));
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal([2L, 2], f.Get("a").Shape);
        Assert.Equal([1f, 2, 3, 4], f.ReadSingles(f.Get("a")));
        Assert.Equal(TensorDType.BF16, f.Get("b").DType);
        Assert.Equal([1f, -2f, 0.5f], f.ReadSingles(f.Get("b")));
    }

    [Fact]
    public void Writer_RoundTrips_AndAlignsDataTo8Bytes()
    {
        using var tmp = new TempDir();
        string path = tmp.File("w.safetensors");
        float[] x = [0.25f, -1f, 7f];
        SafetensorsWriter.Write(path,
            [SafetensorToWrite.FromSingles("x", [3], x), SafetensorToWrite.FromBytes("ids", TensorDType.I64, [2], BitConverter.GetBytes(5L).Concat(BitConverter.GetBytes(-9L)).ToArray())],
            new Dictionary<string, string> { ["seed"] = "42" });
        byte[] bytes = File.ReadAllBytes(path);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, headerLength % 8);
        using var f = SafetensorsFile.Open(path);
        Assert.Equal(x, f.ReadSingles(f.Get("x")));
        Assert.Equal(-9L, BitConverter.ToInt64(f.Bytes(f.Get("ids"))[8..]));
        Assert.Equal("42", f.Metadata["seed"]);
    }

    [Fact]
    public void TruncatedFile_NamesFileAndTensor()
    {
        using var tmp = new TempDir();
        string json = """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""";
        File.WriteAllBytes(tmp.File("t.safetensors"), HandMadeFile(json, Floats(1, 2, 3)));
        var e = Assert.Throws<UserError>(() => SafetensorsFile.Open(tmp.File("t.safetensors")));
        Assert.Contains("t.safetensors", e.Message);
        Assert.Contains("'a'", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void HeaderThatLiesAboutSizes_IsRejected()
    {
        using var tmp = new TempDir();
        string json = """{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}""";
        File.WriteAllBytes(tmp.File("l.safetensors"), HandMadeFile(json, Floats(1, 2, 3, 4)));
        Assert.Contains("12 bytes", Assert.Throws<UserError>(() => SafetensorsFile.Open(tmp.File("l.safetensors"))).Message);

        byte[] huge = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(huge, 1UL << 40);
        File.WriteAllBytes(tmp.File("h.safetensors"), huge);
        Assert.Contains("header claims", Assert.Throws<UserError>(() => SafetensorsFile.Open(tmp.File("h.safetensors"))).Message);
    }

    [Fact]
    public void UnknownDtype_AndMissingFile_AreUserErrors()
    {
        using var tmp = new TempDir();
        string json = """{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}""";
        File.WriteAllBytes(tmp.File("d.safetensors"), HandMadeFile(json, [0]));
        Assert.Contains("F8_E4M3", Assert.Throws<UserError>(() => SafetensorsFile.Open(tmp.File("d.safetensors"))).Message);
        Assert.Contains("not found", Assert.Throws<UserError>(() => SafetensorsFile.Open(tmp.File("none.safetensors"))).Message);
    }

    private static string OpenFails(TempDir tmp, string json, byte[] data)
    {
        string path = tmp.File("bad.safetensors");
        File.WriteAllBytes(path, HandMadeFile(json, data));
        var e = Assert.Throws<UserError>(() => SafetensorsFile.Open(path));
        Assert.Contains(path, e.Message);
        return e.Message;
    }

    [Theory]
    [InlineData("\"data_offsets\":\"0,16\"", "'data_offsets'")]
    [InlineData("\"data_offsets\":[0.5,16]", "'data_offsets' begin")]
    [InlineData("\"data_offsets\":[0,1e30]", "'data_offsets' end")]
    [InlineData("\"data_offsets\":[0,18446744073709551616]", "'data_offsets' end")]
    [InlineData("\"data_offsets\":[0,16,32]", "[begin, end]")]
    [InlineData("\"data_offsets\":[16,0]", "'data_offsets' end")]
    [InlineData("\"data_offsets\":[-16,0]", "'data_offsets' begin")]
    [InlineData("\"data_offsets\":null", "'data_offsets'")]
    [InlineData("\"shape\":[\"2\",2]", "'shape'")]
    [InlineData("\"shape\":[2.0,2]", "'shape'")]
    [InlineData("\"shape\":4", "'shape'")]
    [InlineData("\"shape\":[4294967296,4294967296,4294967296]", "more bytes than the whole data section")]
    [InlineData("\"shape\":[2,-2]", "'shape'")]
    [InlineData("\"shape\":[2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2]", "more bytes than the whole data section")]
    [InlineData("\"dtype\":5", "'dtype'")]
    public void WrongJsonTypes_AreOneUserErrorNamingTensorAndField(string field, string expected)
    {
        using var tmp = new TempDir();
        var tensor = new Dictionary<string, string> { ["dtype"] = "\"dtype\":\"F32\"", ["shape"] = "\"shape\":[2,2]", ["data_offsets"] = "\"data_offsets\":[0,16]" };
        tensor[field[1..field.IndexOf('"', 1)]] = field;
        string message = OpenFails(tmp, $"{{\"w\":{{{string.Join(",", tensor.Values)}}}}}", Floats(1, 2, 3, 4));
        Assert.Contains("tensor 'w'", message);
        Assert.Contains(expected, message);
    }

    [Fact]
    public void OverlappingGappedOrShiftedOffsets_AreRejected()
    {
        using var tmp = new TempDir();
        byte[] data = Floats(1, 2, 3, 4);
        Assert.Contains("must not overlap", OpenFails(tmp,
            """{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", data));
        Assert.Contains("gap", OpenFails(tmp,
            """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", data));
        // Shifted by one byte: each tensor's size is right and inside the data, but the first byte is skipped.
        Assert.Contains("gap", OpenFails(tmp,
            """{"a":{"dtype":"F32","shape":[1],"data_offsets":[1,5]},"b":{"dtype":"F32","shape":[2],"data_offsets":[5,13]}}""", [.. data, 0]));
        Assert.Contains("appears twice", OpenFails(tmp,
            """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", data));
    }

    [Fact]
    public void InvalidTextInTheHeader_IsAUserError()
    {
        using var tmp = new TempDir();
        Assert.Contains("not valid UTF-8/UTF-16", OpenFails(tmp, """{"\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", Floats(1)));
        Assert.Contains("'dtype' is not valid UTF-8/UTF-16", OpenFails(tmp, """{"a":{"dtype":"F3\udc00","shape":[1],"data_offsets":[0,4]}}""", Floats(1)));
        // A raw 0xFF byte inside a name: not UTF-8 at all.
        byte[] bytes = HandMadeFile("""{"a?":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", Floats(1));
        bytes[8 + 3] = 0xFF;
        File.WriteAllBytes(tmp.File("ff.safetensors"), bytes);
        Assert.Contains("ff.safetensors", Assert.Throws<UserError>(() => SafetensorsFile.Open(tmp.File("ff.safetensors"))).Message);
    }

    [Fact]
    public void HeaderLengthOneByteShort_IsRejected()
    {
        using var tmp = new TempDir();
        // The header ends in its 8-byte alignment padding, so one byte short still parses as JSON; the
        // data section then starts a byte early and the tensors no longer cover it.
        string path = tmp.File("short.safetensors");
        SafetensorsWriter.Write(path, [SafetensorToWrite.FromSingles("x", [3], [1f, 2f, 3f])]);
        byte[] bytes = File.ReadAllBytes(path);
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal((byte)' ', bytes[8 + (int)length - 1]);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, length - 1);
        File.WriteAllBytes(path, bytes);
        Assert.Contains("cover 12 bytes of the data section but it holds 13", Assert.Throws<UserError>(() => SafetensorsFile.Open(path)).Message);
    }

    [Theory]
    [InlineData(1.0f, (ushort)0x3F80)]
    [InlineData(-2.0f, (ushort)0xC000)]
    [InlineData(1.00390625f, (ushort)0x3F80)] // exactly halfway between 0x3F80 and 0x3F81: ties to even
    [InlineData(1.01171875f, (ushort)0x3F82)] // halfway between 0x3F81 and 0x3F82: ties to even (up)
    public void BFloat16Rounding_IsNearestEven(float value, ushort expected) =>
        Assert.Equal(expected, TensorDTypes.SingleToBFloat16(value));
}
