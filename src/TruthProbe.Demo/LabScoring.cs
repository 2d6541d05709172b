using System.Text.Json;
using TruthProbe.Common;
using TruthProbe.Model;
using TruthProbe.Probing;
using TruthProbe.Reports;

using TruthProbe.Lab;

namespace TruthProbe.Demo;

/// <summary>
/// Truth Scores of a lab model, exactly as <c>truthprobe score</c> computes them (the probing set through
/// the engine, <c>hook_z</c> of every layer at the answer's last token, then k-fold probes, the
/// shuffled-label control, the surface baseline and the chance test), with the lab's tokenizer attached.
/// </summary>
public static class LabScoring
{
    /// <summary>
    /// The probing set with one row per episode (rows sharing context and question): the gold row of even
    /// episodes, the hallucinated row of odd ones, lines kept verbatim and in order. Why: with both rows of
    /// an episode in the set, shuffled row folds put one in training and its partner in validation; a head
    /// that encodes the context then predicts the partner's (opposite) label, and cross-validated accuracy
    /// falls below chance (measured on the demo family: mean 0.40 with pairs, 0.64 with one row per episode).
    /// </summary>
    public static void OneRowPerEpisode(string probingPath, string outPath)
    {
        if (!File.Exists(probingPath)) throw new UserError($"{probingPath}: probing set not found (lab pretrain writes probing.jsonl beside the model)");
        var episodes = new List<(string Key, string? Gold, string? Hallucinated)>();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        int lineNumber = 0;
        foreach (string line in File.ReadLines(probingPath))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string key, label;
            try
            {
                using var doc = JsonDocument.Parse(line);
                var e = doc.RootElement;
                // Image rows (lab scenes) have no context: their episode is the image and the question.
                key = (e.TryGetProperty("context", out var context) ? context.GetString() : e.GetProperty("image").GetString()) + "\n" + e.GetProperty("question").GetString();
                label = e.GetProperty("label").GetString() ?? "";
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new UserError($"{probingPath} line {lineNumber}: not a probing row with string fields context (or image), question, answer, label ({ex.Message})");
            }
            if (!index.TryGetValue(key, out int i)) { index[key] = i = episodes.Count; episodes.Add((key, null, null)); }
            episodes[i] = label switch
            {
                "gold" => episodes[i] with { Gold = line },
                "hallucinated" => episodes[i] with { Hallucinated = line },
                _ => throw new UserError($"{probingPath} line {lineNumber}: label must be 'gold' or 'hallucinated', got '{label}'"),
            };
        }
        var kept = episodes.Select((e, i) => i % 2 == 0 ? e.Gold ?? e.Hallucinated : e.Hallucinated ?? e.Gold);
        AtomicFile.WriteAllText(outPath, string.Concat(kept.Select(l => l + "\n")));
    }

    /// <summary>Writes activations.safetensors and the probe outputs (scores.csv, scores.npy, heatmap.png, manifest.json, ...) to <paramref name="outDir"/>.</summary>
    public static ProbeRun Score(string modelDir, string probingPath, string outDir, ProbeOptions options)
    {
        var data = ProbingData.Load(probingPath, samples: null, skipBad: false);
        using var model = Transformer.Load(modelDir);
        var collection = ActivationCollector.Collect(model, data, new PromptTemplate(PromptTemplate.Default), null, false, outDir, TextWriter.Null);
        var run = ProbeRun.Execute(collection.Set, options);
        run.Write(outDir, new ProbeInputs(collection.Path, null, "truthprobe lab scoring"), Plots.Writer);
        return run;
    }
}
