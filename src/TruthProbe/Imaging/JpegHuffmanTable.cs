namespace TruthProbe.Imaging;

/// <summary>
/// One DHT table in decoding form: a 9-bit lookup for the short codes every real file mostly uses, and
/// per-length maximum codes (the JPEG spec's F.2.2.3 procedure) for the rest.
/// </summary>
internal sealed class JpegHuffmanTable
{
    public const int FastBits = 9;

    /// <summary>(code length &lt;&lt; 8) | symbol for every 9-bit prefix that starts with a code of at most 9 bits; 0 otherwise.</summary>
    public readonly ushort[] Fast = new ushort[1 << FastBits];
    /// <summary>Largest code of each length 1..16, -1 when the length has none.</summary>
    public readonly int[] MaxCode = new int[17];
    /// <summary>Index into <see cref="Symbols"/> minus the first code of each length.</summary>
    public readonly int[] ValOffset = new int[17];
    public readonly byte[] Symbols;

    /// <summary>Builds the table, or returns an error text when the counts do not describe a valid prefix code.</summary>
    public static JpegHuffmanTable Build(ReadOnlySpan<byte> counts, ReadOnlySpan<byte> symbols, bool isDc, out string? error)
    {
        var table = new JpegHuffmanTable(symbols.ToArray());
        error = table.Fill(counts, isDc);
        return table;
    }

    private JpegHuffmanTable(byte[] symbols) => Symbols = symbols;

    private string? Fill(ReadOnlySpan<byte> counts, bool isDc)
    {
        int code = 0, index = 0;
        for (int length = 1; length <= 16; length++)
        {
            int n = counts[length - 1];
            // libjpeg rejects a table whose codes overflow their length; that also forbids the all-ones code.
            if (code + n >= 1 << length) return $"code lengths overflow at length {length}";
            ValOffset[length] = index - code;
            MaxCode[length] = n == 0 ? -1 : code + n - 1;
            for (int i = 0; i < n; i++, code++, index++)
            {
                if (length > FastBits) continue;
                int first = code << (FastBits - length);
                Fast.AsSpan(first, 1 << (FastBits - length)).Fill((ushort)(length << 8 | Symbols[index]));
            }
            code <<= 1;
        }
        if (isDc)
            foreach (byte s in Symbols)
                if (s > 15) return $"DC symbol {s} is above 15";
        return null;
    }
}
