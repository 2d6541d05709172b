using TruthProbe.Common;

namespace TruthProbe.Gating;

/// <summary>
/// Where a per-head gate acts (DESIGN.md §5). <see cref="Head"/> scales each head's output (<c>hook_z</c>),
/// the method as the paper describes it; <see cref="OProjOut"/> scales equal chunks of <c>o_proj</c>'s output,
/// as the reference code does (bit-compatible with the published numbers).
/// </summary>
public enum GateSite { Head, OProjOut }

public static class GateSites
{
    public static string CliName(this GateSite site) => site == GateSite.Head ? "head" : "o-proj-out";

    public static GateSite Parse(string name) => name switch
    {
        "head" => GateSite.Head,
        "o-proj-out" => GateSite.OProjOut,
        _ => throw new UserError($"--site must be 'head' or 'o-proj-out', got '{name}'"),
    };
}
