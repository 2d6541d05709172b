using System.Buffers.Binary;

namespace TruthProbe.Imaging;

/// <summary>
/// The CRC-32 of PNG chunks (ISO 3309, reflected polynomial 0xEDB88320), as zlib's crc32 computes it, eight
/// bytes a step ("slicing-by-8"): checking every chunk of a photo cost 0.63 ms per image one byte a step.
/// </summary>
internal static class Crc32
{
    private static readonly uint[] Table = BuildTables();

    /// <summary>Table k (entries 256k .. 256k + 255) is the CRC of a byte followed by k zero bytes.</summary>
    private static uint[] BuildTables()
    {
        var table = new uint[8 * 256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        for (int t = 1; t < 8; t++)
            for (int n = 0; n < 256; n++)
            {
                uint prev = table[256 * (t - 1) + n];
                table[256 * t + n] = table[prev & 0xFF] ^ (prev >> 8);
            }
        return table;
    }

    public static uint Compute(ReadOnlySpan<byte> bytes)
    {
        var t = Table.AsSpan();
        uint c = 0xFFFFFFFFu;
        while (bytes.Length >= 8)
        {
            uint lo = c ^ BinaryPrimitives.ReadUInt32LittleEndian(bytes);
            uint hi = BinaryPrimitives.ReadUInt32LittleEndian(bytes[4..]);
            c = t[7 * 256 + (int)(lo & 0xFF)] ^ t[6 * 256 + (int)((lo >> 8) & 0xFF)]
              ^ t[5 * 256 + (int)((lo >> 16) & 0xFF)] ^ t[4 * 256 + (int)(lo >> 24)]
              ^ t[3 * 256 + (int)(hi & 0xFF)] ^ t[2 * 256 + (int)((hi >> 8) & 0xFF)]
              ^ t[256 + (int)((hi >> 16) & 0xFF)] ^ t[(int)(hi >> 24)];
            bytes = bytes[8..];
        }
        foreach (byte b in bytes) c = t[(int)((c ^ b) & 0xFF)] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
}
