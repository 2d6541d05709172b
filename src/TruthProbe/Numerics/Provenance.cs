using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace TruthProbe.Numerics;

/// <summary>
/// The <c>provenance</c> object every JSON summary carries: which build, on which CPU and vector width, on which
/// .NET, with which seeds and inputs. The lab's numbers depend on the vector width (sums are reassociated per
/// width), so a result without it cannot be reproduced or compared. Deterministic on one machine and build, so
/// outputs that tests compare byte for byte across runs stay identical.
/// </summary>
public static class Provenance
{
    /// <summary>The commit the build was made from (the SDK puts it after '+' in the informational version), else "unknown".</summary>
    public static string CodeVersion { get; } = ReadCodeVersion(typeof(Provenance).Assembly);

    /// <summary>The CPU's model name from /proc/cpuinfo where there is one, else the architecture and OS.</summary>
    public static string Cpu { get; } = ReadCpu();

    /// <summary>Bits of the vectors the kernels started on this thread use (<see cref="SimdPath.Generic"/> runs Vector128).</summary>
    public static int VectorBits => SimdWidth.Current switch { SimdPath.Vector512 => 512, SimdPath.Vector256 => 256, _ => 128 };

    /// <summary>Builds the object; <paramref name="seeds"/> (JSON numbers: the verbs' seeds are int, long and ulong) and
    /// <paramref name="inputHashes"/> (name to lower-case hex SHA-256) keep their order, so the same run writes the same bytes.</summary>
    public static JsonObject Of(IEnumerable<(string Name, JsonNode Seed)> seeds, IEnumerable<(string Name, string Sha256)> inputHashes) => new()
    {
        ["code_version"] = CodeVersion,
        ["cpu"] = Cpu,
        ["vector_width"] = VectorBits,
        ["dotnet"] = RuntimeInformation.FrameworkDescription,
        ["seeds"] = new JsonObject(seeds.Select(s => KeyValuePair.Create(s.Name, (JsonNode?)s.Seed.DeepClone()))),
        ["input_hashes"] = new JsonObject(inputHashes.Select(h => KeyValuePair.Create(h.Name, (JsonNode?)h.Sha256))),
    };

    /// <summary>The entries of an outputs' string table named <c>X_sha256</c>, as (X, hash) for <see cref="Of"/>.</summary>
    public static IEnumerable<(string Name, string Sha256)> HashesIn(IEnumerable<KeyValuePair<string, string>> entries) =>
        entries.Where(kv => kv.Key.EndsWith(Sha256Suffix, StringComparison.Ordinal)).Select(kv => (kv.Key[..^Sha256Suffix.Length], kv.Value));

    private const string Sha256Suffix = "_sha256";

    internal static string ReadCodeVersion(Assembly assembly)
    {
        string? version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        int plus = version?.IndexOf('+') ?? -1;
        return plus >= 0 && plus + 1 < version!.Length ? version[(plus + 1)..] : "unknown";
    }

    private static string ReadCpu()
    {
        const string cpuinfo = "/proc/cpuinfo";
        if (File.Exists(cpuinfo))
            foreach (string line in File.ReadLines(cpuinfo))
                if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':') is int colon and >= 0)
                    return line[(colon + 1)..].Trim();
        return $"{RuntimeInformation.ProcessArchitecture} ({RuntimeInformation.OSDescription})";
    }
}
