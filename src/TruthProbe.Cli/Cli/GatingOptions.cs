using System.CommandLine;
using System.Globalization;
using TruthProbe.Common;
using TruthProbe.Gating;
using TruthProbe.Model;

namespace TruthProbe.Cli;

/// <summary>
/// The gating options of every verb that runs a model (issue 6), declared once in <see cref="Group"/>:
/// <c>--scores MAP --mode M --lambda L [--gate-seed S]</c> (gates from a Truth-Score map by
/// <see cref="GateTable"/>'s formulas) or <c>--gates FILE</c> (a table from <c>truthprobe gates</c>), and
/// <c>--site head|o-proj-out</c>. The random mode's seed is <c>--gate-seed</c> in every verb, so that it
/// never clashes with a verb's own <c>--seed</c> (data and sampling).
/// </summary>
public sealed record GatingOptions
{
    public string? ScoresPath { get; init; }
    public GateMode? Mode { get; init; }
    public double? Lambda { get; init; }
    public ulong GateSeed { get; init; }
    public string? GatesPath { get; init; }
    public GateSite Site { get; init; } = GateSite.Head;

    public bool Enabled => ScoresPath != null || GatesPath != null;

    /// <summary>The options themselves; a verb that runs a gated model adds <see cref="Symbols"/>, <c>gates</c> the map-to-table four.</summary>
    public sealed class Group
    {
        public readonly Option<string?> Scores = Opt.Text("--scores", "MAP",
            "Truth-Score map [layers, query heads] (.npy, .csv or a score folder)");
        public readonly Option<string?> Mode = Opt.Text("--mode", "contrast|minmax|plain|raw|random|inverse",
            "how scores become gates (see 'truthprobe gates --help')");
        public readonly Option<double?> Lambda = Opt.Double("--lambda", "L", "amplifying factor (contrast, minmax, plain)");
        public readonly Option<ulong?> GateSeed = Opt.Seed("--gate-seed", "seed of the random mode (default 0; recorded)");
        public readonly Option<string?> Gates = Opt.Text("--gates", "FILE",
            "a gate table .npy [layers, query heads] (e.g. from 'truthprobe gates') instead of --scores");
        public readonly Option<string?> Site = Opt.Text("--site", "head|o-proj-out",
            "where gates act: each head's output, as the paper describes (default), or equal chunks of o_proj's output, as the reference code does");

        public IEnumerable<Symbol> Symbols => [Scores, Mode, Lambda, GateSeed, Gates, Site];

        /// <param name="lambdaFromVerb">the verb supplies lambda itself (a sweep): --lambda is then not required.</param>
        public GatingOptions Read(ParseResult args, string verb, bool lambdaFromVerb = false)
        {
            string? scores = args.GetValue(Scores), gates = args.GetValue(Gates), modeText = args.GetValue(Mode), site = args.GetValue(Site);
            double? lambda = args.GetValue(Lambda);
            ulong? seed = args.GetValue(GateSeed);
            if (scores != null && gates != null)
                throw new UserError($"{verb}: give --scores MAP (with --mode and --lambda) or --gates FILE, not both");
            if (gates != null && (modeText != null || lambda != null || seed != null))
                throw new UserError($"{verb}: --mode, --lambda and --gate-seed turn --scores into gates; a --gates table is used as it is");
            if (scores == null && gates == null && (modeText != null || lambda != null || site != null || seed != null))
                throw new UserError($"{verb}: --mode, --lambda, --gate-seed and --site need --scores MAP or --gates FILE");
            GateMode? mode = modeText == null ? null : GateTable.ParseMode(modeText);
            if (scores != null && mode == null)
                throw new UserError($"{verb}: --scores needs --mode (contrast, minmax, plain, raw, random or inverse)");
            if (mode is { } m && GateTable.UsesLambda(m) && lambda == null && !lambdaFromVerb)
                throw new UserError($"{verb}: --mode {GateTable.ModeName(m)} needs --lambda L (the amplifying factor)");
            return new GatingOptions
            {
                ScoresPath = scores, Mode = mode, Lambda = lambda, GateSeed = seed ?? 0, GatesPath = gates,
                Site = site == null ? GateSite.Head : GateSites.Parse(site),
            };
        }
    }

    /// <summary>
    /// The gate table for a model of [layers, query heads], at <paramref name="lambda"/> when the verb
    /// chooses it (a sweep), else at --lambda. A map of another shape is a user error naming both shapes.
    /// </summary>
    public GateTable Table(int layers, int heads, string model, double? lambda = null)
    {
        if (!Enabled) throw new InvalidOperationException("no gating options were given");
        var table = ScoresPath != null
            ? GateTable.FromScoreFile(ScoresPath, Mode!.Value, lambda ?? Lambda, GateSeed)
            : GateTable.Load(GatesPath!);
        table.EnsureMatches(layers, heads, model);
        return table;
    }

    /// <summary>Interventions that apply the table at --site on every forward call.</summary>
    public Interventions Interventions(ModelConfig config, GateTable table) => new Interventions(config).Gate(table.ToFloats(), Site);

    /// <summary>The gates asked for, as interventions on this model; null when the verb runs it ungated.</summary>
    public (Interventions Interventions, GateTable Table)? For(Transformer model)
    {
        if (!Enabled) return null;
        var table = Table(model.Config.Layers, model.Config.Heads, model.Source);
        return (Interventions(model.Config, table), table);
    }

    /// <summary>Where the gates came from, as strings for outputs and checkpoint metadata.</summary>
    public Dictionary<string, string> Provenance(GateTable table)
    {
        var p = new Dictionary<string, string>(StringComparer.Ordinal) { ["gate_site"] = Site.CliName() };
        if (GatesPath != null)
        {
            p["gates_file"] = Path.GetFullPath(GatesPath);
            p["gates_sha256"] = Hashing.Sha256File(GatesPath);
        }
        if (table.Source != null) p["scores"] = Path.GetFullPath(table.Source);
        if (table.SourceSha256 != null) p["scores_sha256"] = table.SourceSha256;
        if (table.Mode is { } mode) p["mode"] = GateTable.ModeName(mode);
        if (table.Lambda is { } lambda) p["lambda"] = lambda.ToString("R", CultureInfo.InvariantCulture);
        if (table.Seed is { } seed) p["gate_seed"] = seed.ToString(CultureInfo.InvariantCulture);
        return p;
    }
}
