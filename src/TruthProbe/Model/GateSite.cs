using TruthProbe.Common;

namespace TruthProbe.Model;

/// <summary>Where a per-head gate multiplies (docs/design.md §5).</summary>
public enum GateSite
{
    /// <summary>Scale head h's slice of <c>hook_z</c> (o_proj's input columns h*d_head..): the method as the paper describes it.</summary>
    Head,
    /// <summary>Scale the h-th chunk (d_model / H wide) of o_proj's output, bias included: what the reference code does.</summary>
    OProjOut,
}

/// <summary>The public names of the <see cref="GateSite"/>s, as options and manifests spell them.</summary>
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
