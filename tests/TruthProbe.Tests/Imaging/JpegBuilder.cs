namespace TruthProbe.Tests.Imaging;

/// <summary>
/// Hand-built JPEG files for decoder tests: segments from their fields, entropy-coded data from bit strings
/// (padded with 1s and FF-stuffed as the spec says), so every byte of a test file is visible in the test.
/// </summary>
internal static class JpegBuilder
{
    public static byte[] Jpeg(params byte[][] parts) => [0xFF, 0xD8, .. parts.SelectMany(p => p), 0xFF, 0xD9];

    public static byte[] Segment(byte marker, params byte[] payload) =>
        [0xFF, marker, (byte)((payload.Length + 2) >> 8), (byte)(payload.Length + 2), .. payload];

    /// <summary>A quantisation table with every entry equal: a flat block of coefficient c then decodes to 128 + c * q / 8.</summary>
    public static byte[] Dqt(int index, byte value) => Segment(0xDB, [(byte)index, .. Enumerable.Repeat(value, 64)]);

    public static byte[] Sof(byte marker, int width, int height, params (int Id, int H, int V)[] components) =>
        Segment(marker, [8, (byte)(height >> 8), (byte)height, (byte)(width >> 8), (byte)width, (byte)components.Length,
            .. components.SelectMany(c => new[] { (byte)c.Id, (byte)(c.H << 4 | c.V), (byte)0 })]);

    /// <summary>counts[i] codes of length i + 1, then the symbols in code order.</summary>
    public static byte[] Dht(int tableClass, int index, byte[] counts, params byte[] symbols) =>
        Segment(0xC4, [(byte)(tableClass << 4 | index), .. counts, .. new byte[16 - counts.Length], .. symbols]);

    /// <summary>DC table 0: "00" is category 0 (no change), "01" category 4 (4 value bits follow).</summary>
    public static byte[] SmallDcTable => Dht(0, 0, [0, 2], 0x00, 0x04);

    /// <summary>AC table 0: "0" is end-of-block, the only symbol; so every block is DC-only.</summary>
    public static byte[] EobOnlyAcTable => Dht(1, 0, [1], 0x00);

    public static byte[] Sos(int ss, int se, int ah, int al, params int[] componentIds) =>
        Segment(0xDA, [(byte)componentIds.Length, .. componentIds.SelectMany(id => new byte[] { (byte)id, 0x00 }),
            (byte)ss, (byte)se, (byte)(ah << 4 | al)]);

    public static byte[] BaselineSos(params int[] componentIds) => Sos(0, 63, 0, 0, componentIds);

    /// <summary>Entropy-coded bytes from a string of '0'/'1' (spaces ignored): padded with 1 bits, every FF followed by 00.</summary>
    public static byte[] Bits(string bits)
    {
        var clean = bits.Replace(" ", "");
        clean += new string('1', (8 - clean.Length % 8) % 8);
        var bytes = new List<byte>();
        for (int i = 0; i < clean.Length; i += 8)
        {
            byte b = Convert.ToByte(clean.Substring(i, 8), 2);
            bytes.Add(b);
            if (b == 0xFF) bytes.Add(0);
        }
        return [.. bytes];
    }

    /// <summary>16x8 grey: block 0 has DC +12 (value bits 1100), block 1 DC diff -12 (0011) back to 0; quantiser 8.</summary>
    public static byte[] TwoBlockGrey(params byte[][] extraBeforeScan) => Jpeg(
        [Dqt(0, 8), Sof(0xC0, 16, 8, (1, 1, 1)), SmallDcTable, EobOnlyAcTable, .. extraBeforeScan, BaselineSos(1),
            Bits("01 1100 0  01 0011 0")]);
}
