using System.CommandLine;
using TruthProbe.Cli;
using TruthProbe.Common;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Cli;

public class CliMainTests
{
    [Fact]
    public void UnknownVerb_ExitsNonZeroWithHelp()
    {
        var r = CliRunner.Run("frobnicate");
        Assert.Equal(UserError.ExitCode, r.ExitCode);
        Assert.Contains("unknown verb 'frobnicate'", r.Stderr);
    }

    [Theory]
    [InlineData("must be an integer, got 'abc'", "compare", "x.npy", "y.npy", "--top-k", "abc", "--out", "o")]
    [InlineData("unknown option --tpo-k", "compare", "x.npy", "--tpo-k", "3", "y.npy", "--out", "o")]
    [InlineData("Unrecognized command or argument '--stepz'", "lab", "pretrain", "--out", "o", "--stepz", "5")]
    [InlineData("--folds must be at least 2, got 1", "probe", "--activations", "a.npy", "--out", "o", "--folds", "1")]
    [InlineData("--solver must be 'exact' or 'reference', got 'newton'", "probe", "--activations", "a.npy", "--out", "o", "--solver", "newton")]
    [InlineData("'--out' is required", "probing-set")]
    public void UnknownOptionsAndBadValues_AreOneLine_ExitTwo_BeforeAnythingRuns(string expected, params string[] argv)
    {
        var r = CliRunner.Run(argv);
        Assert.Equal(UserError.ExitCode, r.ExitCode);
        Assert.Contains(expected, r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void EqualsForm_ParsesAsTheSpaceForm()
    {
        using var tmp = new TempDir();
        Assert.Equal(0, CliRunner.Run("probing-set", $"--out={tmp.File("a.jsonl")}", "--items=4", "--seed=7").ExitCode);
        Assert.Equal(0, CliRunner.Run("probing-set", "--out", tmp.File("b.jsonl"), "--items", "4", "--seed", "7").ExitCode);
        Assert.Equal(4, File.ReadAllLines(tmp.File("a.jsonl")).Length);
        Assert.Equal(File.ReadAllBytes(tmp.File("a.jsonl")), File.ReadAllBytes(tmp.File("b.jsonl")));
    }

    [Fact]
    public void EveryVerbsHelp_IsGeneratedFromItsDeclarations_AndExitsZero()
    {
        foreach (var verb in Verbs.Create())
        {
            var r = CliRunner.Run([.. verb.Name.Split(' '), "--help"]);
            Assert.True(r.ExitCode == 0, verb.Name + ": " + r.Stderr);
            Assert.Contains($"truthprobe {verb.Name}", r.Stdout);
            Assert.Contains(verb.Summary, r.Stdout);
            foreach (var option in verb.Symbols.OfType<Option>()) Assert.Contains(option.Name, r.Stdout);
        }
        var top = CliRunner.Run("--help");
        Assert.Equal(0, top.ExitCode);
        Assert.All(Verbs.Create(), v => Assert.Contains(v.Name, top.Stdout));
    }

    [Fact]
    public void OptionNames_MeanTheSameInEveryVerb()
    {
        var verbs = Verbs.Create();
        string[] Names(IVerb v) => v.Symbols.OfType<Option>().Select(o => o.Name).ToArray();
        string[] gating = ["--scores", "--mode", "--lambda", "--gate-seed", "--gates", "--site"];
        // The gating group on exactly the verbs that run a gated model; the random gates' seed is --gate-seed everywhere.
        Assert.Equal(["generate", "trace", "eval halueval", "eval chair", "eval pope", "patch"],
            verbs.Where(v => Names(v).Contains("--site")).Select(v => v.Name));
        Assert.All(verbs.Where(v => Names(v).Contains("--site")), v => Assert.Subset(Names(v).ToHashSet(), gating.ToHashSet()));
        Assert.All(verbs.Where(v => Names(v).Contains("--mode")), v => Assert.Contains("--gate-seed", Names(v)));
        // --out is required wherever a verb always writes files, except the two whose default is under out/ (and generate,
        // whose --prompts replies go to standard output without it).
        var outOptional = verbs.Where(v => v.Symbols.OfType<Option>().Any(o => o.Name == "--out" && !o.Required)).Select(v => v.Name);
        Assert.Equal(["generate", "lineage", "gates", "lab curve", "demo"], outOptional);
    }
}
