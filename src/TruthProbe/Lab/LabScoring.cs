using System.Text.Json;
using TruthProbe.Common;
using TruthProbe.Lineage;
using TruthProbe.Model;
using TruthProbe.Probing;

namespace TruthProbe.Lab;

/// <summary>
/// Truth Scores of a lab model: each probing row's prompt (DESIGN.md §3 template) through the engine,
/// <c>hook_z</c> of every layer at the last token (the answer's value word; the lab tokenizer adds no
/// EOS), then the probing run (k-fold probes, shuffled-label control, surface baseline, chance test).
/// The lab's word-level tokenizer encodes the text, since the engine's loaders read BPE tokenizers only.
/// </summary>
public static class LabScoring
{
    public sealed record ProbingRow(string Context, string Question, string Answer, bool Gold);

    public static List<ProbingRow> ReadProbing(string path)
    {
        if (!File.Exists(path)) throw new UserError($"{path}: probing set not found (lab pretrain writes probing.jsonl beside the model)");
        var rows = new List<ProbingRow>();
        int line = 0;
        foreach (string text in File.ReadLines(path))
        {
            line++;
            if (text.Length == 0) continue;
            try
            {
                using var doc = JsonDocument.Parse(text);
                var e = doc.RootElement;
                string label = e.GetProperty("label").GetString()!;
                if (label is not ("gold" or "hallucinated"))
                    throw new UserError($"{path}:{line}: label must be 'gold' or 'hallucinated', got '{label}'");
                rows.Add(new ProbingRow(e.GetProperty("context").GetString()!, e.GetProperty("question").GetString()!,
                    e.GetProperty("answer").GetString()!, label == "gold"));
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new UserError($"{path}:{line}: not a probing row with string fields context, question, answer, label ({ex.Message})");
            }
        }
        if (rows.Count == 0) throw new UserError($"{path}: no probing rows");
        return rows;
    }

    /// <summary>hook_z of every layer at the last token of each row: [N, L, H, D] with labels and answers.</summary>
    public static ActivationSet Activations(string modelDir, IReadOnlyList<ProbingRow> rows, string probingPath)
    {
        using var model = WeightDrift.LoadWeights(modelDir);
        var config = model.Config;
        var tokenizer = WordTokenizer.ForWorld();
        var capture = new ActivationCapture(config, ["blocks.*.attn.hook_z"], positions: [-1]);
        var state = model.NewState();
        int perRow = config.Layers * config.Heads * config.HeadDim;
        var values = new float[rows.Count * perRow];
        for (int i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            state.Reset();
            model.Forward(state, tokenizer.Encode(SyntheticWorld.Prompt(r.Context, r.Question, r.Answer)), capture);
            for (int l = 0; l < config.Layers; l++)
                capture[HookNames.Name(HookKind.Z, l)].Data.CopyTo(values.AsSpan(i * perRow + l * config.Heads * config.HeadDim));
        }
        var metadata = new Dictionary<string, string>
        {
            ["format"] = ActivationSet.FormatName,
            ["hook"] = "blocks.*.attn.hook_z",
            ["model"] = Path.GetFullPath(modelDir),
            ["data"] = Path.GetFullPath(probingPath),
            ["data_sha256"] = Hashing.Sha256File(probingPath),
            ["prompt"] = "Context:\\n{context}\\n\\nQuestion: {question}\\nAnswer: {answer}; last token",
        };
        return new ActivationSet(rows.Count, config.Layers, config.Heads, config.HeadDim, values,
            rows.Select(r => (byte)(r.Gold ? 1 : 0)).ToArray(), Enumerable.Range(0, rows.Count).Select(i => (long)i).ToArray(),
            metadata, rows.Select(r => r.Answer).ToArray());
    }

    /// <summary>Scores the model on the probing set and writes the probe outputs (scores.csv, scores.npy, heatmap.png, manifest.json, ...) to <paramref name="outDir"/>.</summary>
    public static ProbeRun Score(string modelDir, string probingPath, string outDir, ProbeOptions options)
    {
        var set = Activations(modelDir, ReadProbing(probingPath), probingPath);
        var run = ProbeRun.Execute(set, options);
        run.Write(outDir, new ProbeInputs(probingPath, null));
        return run;
    }
}
