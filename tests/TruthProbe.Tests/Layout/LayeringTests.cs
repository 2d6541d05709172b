using System.Text.RegularExpressions;
using System.Xml.Linq;
using TruthProbe.Cli;

namespace TruthProbe.Tests.Layout;

/// <summary>
/// Dependencies run one way: from the command line and the demo down to formats and numerics. A folder of the
/// core library may use only folders of a lower layer; an assembly only the assemblies below it.
/// </summary>
public partial class LayeringTests
{
    /// <summary>The core library's folders by layer; a folder may use its own layer's files and any lower layer.</summary>
    private static readonly Dictionary<string, int> CoreLayers = new()
    {
        ["Common"] = 0,
        ["Numerics"] = 1,
        ["Tokenizers"] = 2, ["Imaging"] = 2,
        ["Formats"] = 3,
        ["Model"] = 4,
        ["Training"] = 5, ["Probing"] = 5, ["Vision"] = 5,
        ["Lineage"] = 6, ["Gating"] = 6, ["Evaluation"] = 6, ["Lab"] = 6, ["Statistics"] = 1, ["Sharding"] = 2,
    };

    /// <summary>Each assembly and the project references it may have.</summary>
    private static readonly Dictionary<string, string[]> AllowedReferences = new()
    {
        ["TruthProbe"] = [],
        ["TruthProbe.Reports"] = ["TruthProbe"],
        ["TruthProbe.Demo"] = ["TruthProbe", "TruthProbe.Reports"],
        ["TruthProbe.Cli"] = ["TruthProbe", "TruthProbe.Reports", "TruthProbe.Demo"],
    };

    private static string Src => Path.Combine(RepoPaths.RepoRoot() ?? throw new InvalidOperationException("tests run from a checkout"), "src");

    [GeneratedRegex(@"\bTruthProbe\.(\w+)")]
    private static partial Regex NamespaceUse();

    [Fact]
    public void CoreFolders_UseOnlyLowerLayers()
    {
        string core = Path.Combine(Src, "TruthProbe");
        var folders = Directory.GetDirectories(core).Select(Path.GetFileName).Where(f => f is not ("bin" or "obj")).ToList();
        var unknown = folders.Where(f => !CoreLayers.ContainsKey(f!)).ToList();
        Assert.True(unknown.Count == 0, $"folders without a layer in this test: {string.Join(", ", unknown)}");

        var backEdges = new List<string>();
        foreach (string folder in folders!)
            foreach (string file in Directory.GetFiles(Path.Combine(core, folder!), "*.cs", SearchOption.AllDirectories))
                foreach (var (line, number) in File.ReadLines(file).Select((l, i) => (l, i + 1)))
                {
                    if (line.TrimStart().StartsWith("//")) continue;
                    foreach (Match m in NamespaceUse().Matches(line))
                    {
                        string used = m.Groups[1].Value;
                        if (used == folder) continue;
                        if (!CoreLayers.TryGetValue(used, out int layer) || layer >= CoreLayers[folder!])
                            backEdges.Add($"{Path.GetRelativePath(Src, file)}:{number} ({folder} uses {used})");
                    }
                }
        Assert.True(backEdges.Count == 0, "back-edges:\n" + string.Join("\n", backEdges));
    }

    [Fact]
    public void Assemblies_ReferenceOnlyTheAssembliesBelowThem()
    {
        foreach (var (assembly, allowed) in AllowedReferences)
        {
            var project = XDocument.Load(Path.Combine(Src, assembly, assembly + ".csproj"));
            var references = project.Descendants("ProjectReference")
                .Select(r => Path.GetFileNameWithoutExtension(r.Attribute("Include")!.Value.Replace('\\', '/'))).ToList();
            Assert.True(references.All(allowed.Contains), $"{assembly} references {string.Join(", ", references)}; allowed: {string.Join(", ", allowed)}");
        }
    }

    [Fact]
    public void CoreLibrary_CarriesNoPlottingDependency()
    {
        var project = XDocument.Load(Path.Combine(Src, "TruthProbe", "TruthProbe.csproj"));
        var packages = project.Descendants("PackageReference").Select(p => p.Attribute("Include")!.Value).ToList();
        Assert.DoesNotContain(packages, p => p.StartsWith("ScottPlot", StringComparison.Ordinal) || p.StartsWith("SkiaSharp", StringComparison.Ordinal));
    }
}
