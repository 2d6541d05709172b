using System.Text;
using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Formats;

public class GgufTests
{
    /// <summary>Builds GGUF bytes field by field from the specification, independent of our writer.</summary>
    private sealed class SpecBytes
    {
        private readonly MemoryStream _s = new();
        private readonly BinaryWriter _w;
        public SpecBytes() => _w = new BinaryWriter(_s);
        public SpecBytes U32(uint v) { _w.Write(v); return this; }
        public SpecBytes U64(ulong v) { _w.Write(v); return this; }
        public SpecBytes I32(int v) { _w.Write(v); return this; }
        public SpecBytes F32(float v) { _w.Write(v); return this; }
        public SpecBytes Str(string v) { var b = Encoding.UTF8.GetBytes(v); _w.Write((ulong)b.Length); _w.Write(b); return this; }
        public SpecBytes Raw(params byte[] b) { _w.Write(b); return this; }
        public SpecBytes PadTo(int alignment) { while (_s.Length % alignment != 0) _w.Write((byte)0); return this; }
        public long Length => _s.Length;
        public byte[] ToArray() { _w.Flush(); return _s.ToArray(); }
    }

    /// <summary>A version-3 file with two metadata keys and one F32 tensor of row-major shape [2, 3].</summary>
    private static byte[] HandMadeFile(uint tensorType = 0, ulong tensorOffset = 0, uint magic = 0x46554747, uint version = 3)
    {
        var b = new SpecBytes().U32(magic).U32(version).U64(1).U64(2)
            .Str("general.architecture").U32(8).Str("llama")
            .Str("llama.block_count").U32(4).U32(7)
            .Str("w").U32(2).U64(3).U64(2).U32(tensorType).U64(tensorOffset) // dims innermost first: 3 then 2
            .PadTo(32);
        for (int i = 0; i < 6; i++) b.F32(i + 0.5f);
        return b.ToArray();
    }

    [Fact]
    public void HandMadeFile_ReadsMetadataShapeInnermostLastAndData()
    {
        using var tmp = new TempDir();
        string path = tmp.File("m.gguf");
        File.WriteAllBytes(path, HandMadeFile());
        using var f = GgufFile.Open(path);
        Assert.Equal(3u, f.Version);
        Assert.Equal("llama", f.Metadata.String("general.architecture"));
        Assert.Equal(7, f.Metadata.Integer("llama.block_count"));
        var w = f.Get("w");
        Assert.Equal([2L, 3], w.Shape);
        Assert.Equal([3L, 2], w.Dims);
        Assert.Equal(0, w.Offset % 32);
        Assert.Equal([0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f], f.ReadSingles(w));
    }

    [Fact]
    public void Writer_ProducesTheSpecBytesOfAHandMadeFile()
    {
        using var tmp = new TempDir();
        var metadata = new GgufMetadata("test");
        metadata["general.architecture"] = GgufValue.Of("llama");
        metadata["llama.block_count"] = GgufValue.Of(7u);
        float[] data = [0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f];
        GgufWriter.Write(tmp.File("w.gguf"), metadata, [GgufTensorToWrite.FromSingles("w", [2, 3], data)]);
        byte[] expected = HandMadeFile();
        byte[] written = File.ReadAllBytes(tmp.File("w.gguf"));
        // The writer pads the last tensor to the alignment too (as llama.cpp's gguf-py does).
        Assert.Equal(expected, written[..expected.Length]);
        Assert.All(written[expected.Length..], b => Assert.Equal(0, b));
        Assert.Equal(0, written.Length % 32);
    }

    [Fact]
    public void Writer_RoundTripsEveryValueTypeAndTensorTypeBitForBit()
    {
        using var tmp = new TempDir();
        string path = tmp.File("all.gguf");
        var metadata = new GgufMetadata("test");
        var values = new Dictionary<string, GgufValue>
        {
            ["u8"] = new(GgufValueType.UInt8, (byte)200), ["i8"] = new(GgufValueType.Int8, (sbyte)-100),
            ["u16"] = new(GgufValueType.UInt16, (ushort)60000), ["i16"] = new(GgufValueType.Int16, (short)-30000),
            ["u32"] = GgufValue.Of(4000000000u), ["i32"] = GgufValue.Of(-2000000000),
            ["f32"] = GgufValue.Of(1e-6f), ["bool"] = GgufValue.Of(true), ["str"] = GgufValue.Of("héllo ▁world"),
            ["u64"] = GgufValue.Of(ulong.MaxValue), ["i64"] = new(GgufValueType.Int64, long.MinValue),
            ["f64"] = new(GgufValueType.Float64, Math.PI),
            ["strings"] = GgufValue.Of(["a", "", "<0x0A>", "▁the"]), ["floats"] = GgufValue.Of([0f, -1.5f, float.MaxValue]),
            ["ints"] = GgufValue.Of([1, 2, 6]), ["bools"] = new(GgufValueType.Array, new[] { true, false }, GgufValueType.Bool),
            ["u16s"] = new(GgufValueType.Array, new ushort[] { 1, 65535 }, GgufValueType.UInt16),
            ["f64s"] = new(GgufValueType.Array, new[] { 0.1, -0.2 }, GgufValueType.Float64),
            ["empty"] = new(GgufValueType.Array, Array.Empty<long>(), GgufValueType.Int64),
        };
        foreach (var (k, v) in values) metadata[k] = v;
        var rng = new Random(7);
        byte[] RandomBytes(int n) { var b = new byte[n]; rng.NextBytes(b); return b; }
        var tensors = new (string Name, GgufTensorType Type, long[] Shape, byte[] Data)[]
        {
            ("f32", GgufTensorType.F32, [3, 5], RandomBytes(60)),
            ("f16", GgufTensorType.F16, [7], RandomBytes(14)),
            ("bf16", GgufTensorType.BF16, [2, 3, 4], RandomBytes(48)),
            ("q8", GgufTensorType.Q8_0, [3, 64], RandomBytes(3 * 2 * 34)),
        };
        GgufWriter.Write(path, metadata, tensors.Select(t => new GgufTensorToWrite(t.Name, t.Type, t.Shape, s => s.Write(t.Data))).ToList());

        using var f = GgufFile.Open(path);
        Assert.Equal(values.Keys, f.Metadata.Select(kv => kv.Key));
        foreach (var (k, v) in values)
        {
            var read = f.Metadata[k];
            Assert.Equal(v.Type, read.Type);
            if (v.Type == GgufValueType.Array)
            {
                Assert.Equal(v.ElementType, read.ElementType);
                Assert.Equal(((Array)v.Value).Cast<object>(), ((Array)read.Value).Cast<object>());
            }
            else Assert.Equal(v.Value, read.Value);
        }
        Assert.Equal(tensors.Select(t => t.Name), f.Tensors.Select(t => t.Name));
        foreach (var t in tensors)
        {
            var info = f.Get(t.Name);
            Assert.Equal(t.Type, info.Type);
            Assert.Equal(t.Shape, info.Shape);
            Assert.Equal(0, (info.Offset - f.DataStart) % GgufFile.DefaultAlignment);
            Assert.Equal(t.Data, f.Bytes(info).ToArray());
        }
    }

    [Fact]
    public void Metadata_IntegerGettersAcceptAnyWidth_AndWrongTypesNameTheKey()
    {
        var m = new GgufMetadata("x.gguf");
        m["a"] = new(GgufValueType.UInt16, (ushort)12);
        m["b"] = GgufValue.Of("text");
        m["ids"] = new(GgufValueType.Array, new uint[] { 1, 2, 3 }, GgufValueType.UInt32);
        Assert.Equal(12, m.Integer("a"));
        Assert.Equal(12.0, m.Float("a"));
        Assert.Equal([1, 2, 3], m.IntsOrNull("ids")!);
        Assert.Null(m.IntegerOrNull("absent"));
        var e = Assert.Throws<UserError>(() => m.Integer("b"));
        Assert.Contains("x.gguf", e.Message);
        Assert.Contains("'b'", e.Message);
        Assert.Contains("'absent'", Assert.Throws<UserError>(() => m.String("absent")).Message);
    }

    [Fact]
    public void Alignment_FromMetadata_IsHonouredByWriterAndReader()
    {
        using var tmp = new TempDir();
        var metadata = new GgufMetadata("test");
        metadata[GgufKeys.Alignment] = GgufValue.Of(64u);
        GgufWriter.Write(tmp.File("a.gguf"), metadata,
            [GgufTensorToWrite.FromSingles("a", [3], [1, 2, 3]), GgufTensorToWrite.FromSingles("b", [2], [4, 5])]);
        using var f = GgufFile.Open(tmp.File("a.gguf"));
        Assert.Equal(64, f.Alignment);
        Assert.Equal(0, f.DataStart % 64);
        Assert.Equal(64, f.Get("b").Offset - f.Get("a").Offset);
        Assert.Equal([4f, 5f], f.ReadSingles(f.Get("b")));
    }

    // ---- Q8_0 ----

    [Fact]
    public void Q8_0_Dequantize_HandComputedBlocks()
    {
        // Block 0: scale 0.5 (fp16 0x3800), quants -128..-97 -> -64..-48.5. Block 1: scale -0.25 (0xB400), quants 0..31.
        var bytes = new byte[68];
        bytes[0] = 0x00; bytes[1] = 0x38;
        for (int i = 0; i < 32; i++) bytes[2 + i] = (byte)(sbyte)(-128 + i);
        bytes[34] = 0x00; bytes[35] = 0xB4;
        for (int i = 0; i < 32; i++) bytes[36 + i] = (byte)i;
        var values = new float[64];
        GgufTensorTypes.DequantizeQ8_0(bytes, values);
        for (int i = 0; i < 32; i++)
        {
            Assert.Equal(0.5f * (-128 + i), values[i]);
            Assert.Equal(-0.25f * i, values[32 + i]);
        }
    }

    [Fact]
    public void Q8_0_Quantize_ScaleIsMaxOver127_AndRoundsHalfAwayFromZero()
    {
        // max |x| = 127 -> scale 1, so q = round(x) exactly, with halves away from zero as C's roundf does.
        var x = new float[32];
        x[0] = 127f; x[1] = 2.5f; x[2] = -2.5f; x[3] = 0.49f; x[4] = -126.5f;
        var block = new byte[34];
        GgufTensorTypes.QuantizeQ8_0(x, block);
        Assert.Equal((Half)1f, BitConverter.ToHalf(block, 0));
        Assert.Equal([127, 3, -3, 0, -127], block[2..7].Select(b => (int)(sbyte)b));
        var zeros = new byte[34];
        GgufTensorTypes.QuantizeQ8_0(new float[32], zeros);
        Assert.All(zeros, b => Assert.Equal(0, b));
    }

    // ---- bad input ----

    private static UserError OpenFails(byte[] bytes, string name = "bad.gguf")
    {
        using var tmp = new TempDir();
        string path = tmp.File(name);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<UserError>(() => GgufFile.Open(path).Dispose());
        Assert.Contains(path, e.Message);
        return e;
    }

    [Fact]
    public void BadMagic_IsAUserError()
    {
        var e = OpenFails(HandMadeFile(magic: 0x46554746));
        Assert.Contains("not a GGUF file", e.Message);
    }

    [Fact]
    public void UnsupportedVersion_IsAUserError() => Assert.Contains("version 1", OpenFails(HandMadeFile(version: 1)).Message);

    [Fact]
    public void TruncatedFile_AtEveryCut_IsAUserError()
    {
        byte[] whole = HandMadeFile();
        foreach (int cut in new[] { 0, 10, 23, 30, 60, 100, 130, whole.Length - 24, whole.Length - 1 })
            OpenFails(whole[..cut]);
    }

    [Fact]
    public void TruncatedData_NamesTheTensor()
    {
        byte[] whole = HandMadeFile();
        var e = OpenFails(whole[..^4]);
        Assert.Contains("'w'", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void LyingOffset_NamesTheTensor()
    {
        Assert.Contains("'w'", OpenFails(HandMadeFile(tensorOffset: 32)).Message);
        Assert.Contains("alignment", OpenFails(HandMadeFile(tensorOffset: 4)).Message);
    }

    [Fact]
    public void UnsupportedTensorType_NamesTensorAndType()
    {
        var e = OpenFails(HandMadeFile(tensorType: 12));
        Assert.Contains("'w'", e.Message);
        Assert.Contains("Q4_K", e.Message);
    }

    [Fact]
    public void LyingCountsAndLengths_AreUserErrors()
    {
        byte[] file = HandMadeFile();
        byte[] manyTensors = (byte[])file.Clone();
        BitConverter.GetBytes(ulong.MaxValue / 2).CopyTo(manyTensors, 8);
        OpenFails(manyTensors);
        byte[] longKey = (byte[])file.Clone();
        BitConverter.GetBytes(1UL << 40).CopyTo(longKey, 24); // length of the first key
        OpenFails(longKey);
        byte[] badValueType = (byte[])file.Clone();
        BitConverter.GetBytes(99u).CopyTo(badValueType, 24 + 8 + "general.architecture".Length);
        Assert.Contains("value type 99", OpenFails(badValueType).Message);
    }

    [Fact]
    public void MissingFile_IsAUserError()
    {
        var e = Assert.Throws<UserError>(() => GgufFile.Open("/nonexistent/m.gguf"));
        Assert.Contains("/nonexistent/m.gguf", e.Message);
    }
}
