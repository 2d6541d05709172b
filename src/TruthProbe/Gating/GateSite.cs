using TruthProbe.Common;
using TruthProbe.Model;

namespace TruthProbe.Gating;

/// <summary>The command-line names of the <see cref="GateSite"/>s.</summary>
public static class GateSites
{
    public static string CliName(this GateSite site) => site == GateSite.Head ? "head" : "o-proj-out";

    public static GateSite Parse(string name) => name switch
    {
        "head" => GateSite.Head,
        "o-proj-out" => GateSite.OProjOut,
        _ => throw new UserError($"gate site must be 'head' or 'o-proj-out', got '{name}'") { Field = "site" },
    };
}
