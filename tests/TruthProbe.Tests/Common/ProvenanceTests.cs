using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using TruthProbe.Numerics;

namespace TruthProbe.Tests.Common;

/// <summary>Checks a written JSON summary's <c>provenance</c> object: every field with its type, and the seeds and
/// input hashes the test itself knows (hashes computed here with <see cref="SHA256"/>, not the code's helper).</summary>
public static class ProvenanceAssert
{
    public static string Sha256(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    public static void In(string jsonPath, IEnumerable<(string Name, long Seed)> seeds, IEnumerable<(string Name, string File)> inputs)
    {
        var p = JsonNode.Parse(File.ReadAllText(jsonPath))!["provenance"] as JsonObject
                ?? throw new Xunit.Sdk.XunitException($"{jsonPath}: no provenance object");
        Assert.Equal(["code_version", "cpu", "vector_width", "dotnet", "seeds", "input_hashes"], p.Select(kv => kv.Key));
        Assert.Matches("^([0-9a-f]{7,40}|unknown)$", (string)p["code_version"]!);
        Assert.False(string.IsNullOrWhiteSpace((string)p["cpu"]!));
        Assert.Contains((int)p["vector_width"]!, new[] { 128, 256, 512 });
        Assert.Equal(RuntimeInformation.FrameworkDescription, (string)p["dotnet"]!);
        Assert.Equal(seeds.Select(s => $"{s.Name}={s.Seed}"), p["seeds"]!.AsObject().Select(kv => $"{kv.Key}={(long)kv.Value!}"));
        Assert.Equal(inputs.Select(i => $"{i.Name}={Sha256(i.File)}"), p["input_hashes"]!.AsObject().Select(kv => $"{kv.Key}={(string)kv.Value!}"));
    }
}

public class ProvenanceTests
{
    [Fact]
    public void VectorWidth_IsTheWidthTheKernelsRun_FollowingAForcedWidth()
    {
        int hardware = Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : 128;
        Assert.Equal(hardware, (int)Provenance.Of([], [])["vector_width"]!);
        try
        {
            SimdWidth.Forced = SimdPath.Generic;
            Assert.Equal(128, (int)Provenance.Of([], [])["vector_width"]!);
            SimdWidth.Forced = SimdPath.Vector256;
            Assert.Equal(256, (int)Provenance.Of([], [])["vector_width"]!);
        }
        finally { SimdWidth.Forced = SimdPath.Auto; }
    }

    [Fact]
    public void CodeVersion_IsTheCommitAfterThePlus_ElseUnknown()
    {
        Assert.Equal("532aace4ecbfe0b9a8c291eeb8a385e92f66d457", Provenance.ReadCodeVersion(new FakeAssembly("1.0.0+532aace4ecbfe0b9a8c291eeb8a385e92f66d457")));
        Assert.Equal("unknown", Provenance.ReadCodeVersion(new FakeAssembly("1.0.0")));
        Assert.Equal("unknown", Provenance.ReadCodeVersion(new FakeAssembly(null)));
        Assert.Matches("^([0-9a-f]{40}|unknown)$", Provenance.CodeVersion);
    }

    [SkippableFact]
    public void Cpu_IsTheModelNameLine_OfProcCpuinfo()
    {
        Skip.IfNot(File.Exists("/proc/cpuinfo"), "no /proc/cpuinfo on this OS");
        var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"));
        Skip.If(line == null, "this /proc/cpuinfo has no model name line (e.g. arm64)");
        Assert.Equal(Regex.Match(line!, @":\s*(.*?)\s*$").Groups[1].Value, Provenance.Cpu);
    }

    [Fact]
    public void SeedsAndHashes_KeepTheirOrderAndTypes_SoTheSameRunWritesTheSameBytes()
    {
        var p = Provenance.Of([("b", 3), ("a", ulong.MaxValue), ("c", -1L)], [("z", "00"), ("y", "ff")]);
        Assert.Equal("""{"b":3,"a":18446744073709551615,"c":-1}""", p["seeds"]!.ToJsonString());
        Assert.Equal("""{"z":"00","y":"ff"}""", p["input_hashes"]!.ToJsonString());
        Assert.Equal(p.ToJsonString(), Provenance.Of([("b", 3), ("a", ulong.MaxValue), ("c", -1L)], [("z", "00"), ("y", "ff")]).ToJsonString());
        Assert.Equal([("gates", "ab"), ("scores", "cd")],
            Provenance.HashesIn(new Dictionary<string, string> { ["gates_file"] = "/x", ["gates_sha256"] = "ab", ["lambda"] = "4", ["scores_sha256"] = "cd" }));
    }

    private sealed class FakeAssembly(string? informational) : Assembly
    {
        // Typed as attributeType[]: the reflection helpers cast the result to it.
        public override object[] GetCustomAttributes(Type attributeType, bool inherit)
        {
            bool has = informational != null && attributeType.IsAssignableFrom(typeof(AssemblyInformationalVersionAttribute));
            var found = (object[])Array.CreateInstance(attributeType, has ? 1 : 0);
            if (has) found[0] = new AssemblyInformationalVersionAttribute(informational!);
            return found;
        }
    }
}
