using System.Security.Cryptography;

namespace TruthProbe.Common;

public static class Hashing
{
    /// <summary>Lower-case hex SHA-256 of a file's bytes, recorded in manifests so results name their inputs.</summary>
    public static string Sha256File(string path)
    {
        using var fs = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(fs));
    }

    public static string Sha256(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
