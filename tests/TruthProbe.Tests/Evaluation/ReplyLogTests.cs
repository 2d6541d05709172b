using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Evaluation;

/// <summary>The resumable reply log: what a crash can leave behind, and what it must refuse.</summary>
public sealed class ReplyLogTests
{
    [Fact]
    public void Reopened_KeepsFinishedLines_DropsTheCutOne_AndAppendsAfterThem()
    {
        using var tmp = new TempDir();
        string path = tmp.File("replies.partial.jsonl");
        using (var log = ReplyLog.Open(path, "fp1"))
        {
            log.Add("vanilla", 1, "Yes");
            log.Add("gated", 1, "No, there is \"none\"\n");
        }
        File.AppendAllText(path, "{\"arm\":\"vanilla\",\"id\":2,\"re");   // killed mid-line
        using (var log = ReplyLog.Open(path, "fp1"))
        {
            Assert.Equal(2, log.Resumed);
            Assert.Equal("No, there is \"none\"\n", log.Replies[("gated", 1)]);
            Assert.False(log.Replies.ContainsKey(("vanilla", 2)));
            log.Add("vanilla", 2, "no");
        }
        Assert.Equal(
            ["{\"fingerprint\":\"fp1\"}", "{\"arm\":\"vanilla\",\"id\":1,\"reply\":\"Yes\"}", "{\"arm\":\"gated\",\"id\":1,\"reply\":\"No, there is \\\"none\\\"\\n\"}",
             "{\"arm\":\"vanilla\",\"id\":2,\"reply\":\"no\"}"],
            File.ReadAllLines(path));
    }

    [Theory]
    [InlineData("{\"fingerprint\":\"other\"}\n", "replies of a run with another model, data or options")]
    [InlineData("{\"fingerprint\":\"fp1\"}\n{\"arm\":\"vanilla\",\"id\":1,\"reply\":\"a\"}\n{\"arm\":\"vanilla\",\"id\":1,\"reply\":\"b\"}\n", ":3: a second vanilla reply for id 1")]
    [InlineData("{\"fingerprint\":\"fp1\"}\nnot json\n{\"arm\":\"vanilla\",\"id\":1,\"reply\":\"a\"}\n", ":2: not a JSON line of a reply log")]
    [InlineData("{\"fingerprint\":\"fp1\"}\n{\"arm\":\"vanilla\",\"reply\":\"a\"}\n", ":2: missing field 'id'")]
    public void DamagedOrForeignLog_IsOneUserError_AndLeftAsItWas(string content, string message)
    {
        using var tmp = new TempDir();
        string path = tmp.File("replies.partial.jsonl");
        File.WriteAllText(path, content);
        var e = Assert.Throws<UserError>(() => ReplyLog.Open(path, "fp1"));
        Assert.Contains(message, e.Message);
        Assert.Equal(content, File.ReadAllText(path));
    }
}
