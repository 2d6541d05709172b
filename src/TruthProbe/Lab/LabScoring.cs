using TruthProbe.Probing;

namespace TruthProbe.Lab;

/// <summary>
/// Truth Scores of a lab model, exactly as <c>truthprobe score</c> computes them (the probing set through
/// the engine, <c>hook_z</c> of every layer at the answer's last token, then k-fold probes, the
/// shuffled-label control, the surface baseline and the chance test), with the lab's tokenizer attached.
/// </summary>
public static class LabScoring
{
    /// <summary>Writes activations.safetensors and the probe outputs (scores.csv, scores.npy, heatmap.png, manifest.json, ...) to <paramref name="outDir"/>.</summary>
    public static ProbeRun Score(string modelDir, string probingPath, string outDir, ProbeOptions options)
    {
        var data = ProbingData.Load(probingPath, samples: null, skipBad: false);
        using var model = LabModel.Load(modelDir);
        var collection = ActivationCollector.Collect(model, data, new PromptTemplate(PromptTemplate.Default), null, false, outDir, TextWriter.Null);
        var run = ProbeRun.Execute(collection.Set, options);
        run.Write(outDir, new ProbeInputs(collection.Path, null, "truthprobe lab scoring"));
        return run;
    }
}
