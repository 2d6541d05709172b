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

    [Fact]
    public void Args_UnknownOptionAndBadNumber_AreUserErrors()
    {
        var a = Args.Parse("compare", ["x.npy", "--top-k", "abc", "--tpo-k", "3"], []);
        Assert.Contains("must be an integer", Assert.Throws<UserError>(() => a.Int("top-k", 20)).Message);
        Assert.Contains("--tpo-k", Assert.Throws<UserError>(() => a.EnsureAllRead(1)).Message);
    }

    [Fact]
    public void Args_EqualsForm_RepeatedOptions_AndFlags()
    {
        var a = Args.Parse("eval pope", ["--questions=a.json", "--questions", "b.json", "--quiet", "pos"], ["quiet"]);
        Assert.Equal(["a.json", "b.json"], a.GetAll("questions"));
        Assert.True(a.Flag("quiet"));
        Assert.Equal("pos", a.Positional(0, "model"));
        a.EnsureAllRead(1);
    }
}
