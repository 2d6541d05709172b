using System.Text.Json.Nodes;
using TruthProbe.Lab;
using TruthProbe.Tests.Common;
using TruthProbe.Training;

namespace TruthProbe.Tests.Lab;

/// <summary>The lab verbs end to end on a few steps (the recipe's accuracy is measured by real runs, recorded in lab.json).</summary>
public class LabVerbTests
{
    [Fact]
    public void PretrainThenLoraFinetune_WriteCompleteFoldersWithLineage()
    {
        using var tmp = new TempDir();
        string baseDir = tmp.File("base"), child = tmp.File("child");
        var r = CliRunner.Run("lab", "pretrain", "--out", baseDir, "--steps", "3", "--batch", "8", "--seed", "4");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("held-out reading accuracy", r.Stdout);
        foreach (var f in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "lab.json", "probing.jsonl", "halueval.jsonl" })
            Assert.True(File.Exists(Path.Combine(baseDir, f)), f);
        var meta = JsonNode.Parse(File.ReadAllText(Path.Combine(baseDir, "lab.json")))!;
        Assert.Equal(4, meta["seed"]!.GetValue<int>());
        Assert.Equal(3, meta["steps"]!.GetValue<int>());
        Assert.Equal(new SyntheticWorld(1).Fingerprint(), meta["data_hash"]!.GetValue<string>());
        Assert.Equal(Recipe.CodeVersion, meta["code_recipe_version"]!.GetValue<int>());

        r = CliRunner.Run("lab", "finetune", baseDir, "--recipe", "domain", "--steps", "2", "--batch", "8", "--lora", "2", "--checkpoint-every", "1", "--out", child);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(File.Exists(Path.Combine(child, "step-00001", "model.safetensors")));
        var childMeta = JsonNode.Parse(File.ReadAllText(Path.Combine(child, "lab.json")))!;
        Assert.Equal("domain", childMeta["recipe"]!.GetValue<string>());
        Assert.Equal(2, childMeta["lora_rank"]!.GetValue<int>());
        Assert.Equal("pretrain", childMeta["lineage"]![0]!["recipe"]!.GetValue<string>());
        ProvenanceAssert.In(Path.Combine(baseDir, "lab.json"), [("train", 4), ("world", 1)], []);
        ProvenanceAssert.In(Path.Combine(child, "lab.json"), [("train", 1), ("world", 1)], [("parent_model", Path.Combine(baseDir, "model.safetensors"))]);
        // Merged on save: no adapter tensors, and the attention weights moved while the MLP stayed.
        var (parent, _, _) = LabCheckpoint.Load(baseDir);
        var (descendant, _, _) = LabCheckpoint.Load(child);
        Assert.DoesNotContain(descendant.Parameters.Tensors, t => t.Name.Contains("lora"));
        Assert.NotEqual(parent.Parameters.Value("model.layers.0.self_attn.q_proj.weight").ToArray(), descendant.Parameters.Value("model.layers.0.self_attn.q_proj.weight").ToArray());
        Assert.Equal(parent.Parameters.Value("model.layers.0.mlp.up_proj.weight").ToArray(), descendant.Parameters.Value("model.layers.0.mlp.up_proj.weight").ToArray());
    }

    [Theory]
    [InlineData("lab", "pretrain", "--out", "OUT", "--size", "huge")]
    [InlineData("lab", "pretrain", "--out", "OUT", "--steps", "0")]
    [InlineData("lab", "pretrain", "--out", "OUT", "--stepz", "5")]
    [InlineData("lab", "finetune", "MISSING", "--recipe", "chat", "--steps", "2", "--out", "OUT")]
    [InlineData("lab", "finetune", "MISSING", "--steps", "2", "--out", "OUT")]
    public void BadArguments_FailWithOneLineAndExitCode2(params string[] argv)
    {
        using var tmp = new TempDir();
        var r = CliRunner.Run(argv.Select(a => a == "OUT" ? tmp.File("out") : a == "MISSING" ? tmp.File("missing") : a).ToArray());
        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith("error: ", r.Stderr);
        Assert.False(Directory.Exists(tmp.File("out")), "nothing may be written on bad input");
    }

    [Fact]
    public void Finetune_UnknownRecipe_IsRejectedBeforeTraining()
    {
        using var tmp = new TempDir();
        Assert.Equal(0, CliRunner.Run("lab", "pretrain", "--out", tmp.File("base"), "--steps", "1", "--batch", "4").ExitCode);
        var r = CliRunner.Run("lab", "finetune", tmp.File("base"), "--recipe", "poetry", "--steps", "2", "--out", tmp.File("out"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("chat, counterfactual or domain", r.Stderr);
        Assert.False(Directory.Exists(tmp.File("out")));
    }
}
