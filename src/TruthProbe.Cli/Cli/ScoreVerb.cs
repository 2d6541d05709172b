using TruthProbe.Reports;
using TruthProbe.Common;
using TruthProbe.Model;
using TruthProbe.Probing;

namespace TruthProbe.Cli;

/// <summary><c>truthprobe score</c>: run a model over probing rows, keep hook_z at the answer's last token, fit the head probes.</summary>
public sealed class ScoreVerb : IVerb
{
    public string Name => "score";
    public string Summary => "Truth Scores of a model's heads: collect hook_z on probing rows, then probe";
    public IReadOnlyCollection<string> Flags => ["skip-bad", "no-control"];

    public string Usage => """
        usage: truthprobe score <model> --data FILE.jsonl [--samples N] [--template T] [--out DIR] [--skip-bad]
                                [--tokenizer FILE] [--folds 5] [--seed 42] [--group-folds row|item]
                                [--solver exact|reference]
                                [--no-control] [--threads N]

        """ + ModelInput.Usage + """
          --data FILE      jsonl rows {"context", "question", "answer", "label": "gold"|"hallucinated"}, or
                           HaluEval-QA items {"knowledge", "question", "right_answer", "hallucinated_answer"}
                           (each item gives a gold row and a hallucinated row)
          --samples N      keep the first N rows, like the reference's max_samples (an HaluEval item is two
                           rows: the paper's 292 = 146 items)
          --template T     prompt, default 'Context:\n{context}\n\nQuestion: {question}\nAnswer: {answer}'
                           (\n in T is a newline); it must end with {answer}
          --out DIR        results folder (default: score_<model name>)
          --skip-bad       skip malformed lines, unknown labels and rows longer than the model's context,
                           counting them in the manifest, instead of stopping at the first

        The scored token is the prompt's last (a trailing EOS is stepped over); hook_z of every layer at that
        token is stored in DIR/activations.safetensors as rows are collected, so an interrupted run resumes
        where it stopped and a finished one is probed again without running the model. Probing options and
        outputs as in 'truthprobe probe --help' (scores.csv, scores.npy, probe_weights.safetensors,
        heatmap.png, manifest.json), plus the surface baseline on the answers' text.
        """;

    public int Run(Args args)
    {
        string modelPath = args.Positional(0, "<model> (a model folder or file)");
        string dataPath = args.Required("data", "probing rows (jsonl)");
        int? samples = args.Get("samples") != null ? args.Int("samples", 0) : null;
        var template = args.Get("template") is { } t ? PromptTemplate.FromCommandLine(t) : new PromptTemplate(PromptTemplate.Default);
        string outDir = args.Get("out") ?? $"score_{Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(modelPath))}";
        bool skipBad = args.Flag("skip-bad");
        var options = ProbeVerb.ReadOptions(args);
        string? tokenizer = args.Get("tokenizer");
        args.EnsureAllRead(1);

        var data = ProbingData.Load(dataPath, samples, skipBad);
        using var model = Transformer.Load(modelPath, tokenizer);
        if (model.Tokenizer == null)
            throw new UserError($"{modelPath}: no tokenizer found with the model; give one with --tokenizer FILE");
        var collection = ActivationCollector.Collect(model, data, template, samples, skipBad, outDir, Console.Error);
        if (collection.Skipped.Count > 0)
            Console.Out.WriteLine($"skipped {collection.Skipped.Count} bad row(s); first: {collection.Skipped[0].Reason}");

        var run = ProbeRun.Execute(collection.Set, options, options.GroupFolds ? data.ItemIds(collection.Set.RowIds) : null);
        run.TimingsSeconds["collect"] = collection.Seconds;
        run.Write(outDir, new ProbeInputs(collection.Path, null, "truthprobe score"), Plots.Writer);
        Console.Out.WriteLine(collection.Reused
            ? $"reused {collection.Path} ({collection.Set.Rows} rows)"
            : $"collected {collection.RowsRun} row(s) into {collection.Path} in {collection.Seconds:0.0} s");
        ProbeVerb.Report(run, outDir);
        return 0;
    }
}
