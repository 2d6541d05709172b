namespace TruthProbe.Model;

/// <summary>
/// Continues many prompts, up to <c>batchSize</c> of them decoded together (<see cref="DecodeBatch"/>): each
/// slot of the batch prefills its prompt alone (already a GEMM), then joins the batched decoding steps; a
/// sequence that stops (EOS, MaxNewTokens, end of the context) leaves its slot, and the next prompt takes it.
/// Every sequence gets exactly what <see cref="Generator.Generate"/> gives it alone with the same options
/// (the same logits, bit for bit, hence the same greedy tokens and the same seeded draws).
/// Prompts are taken in the order of their token ids, so prompts that share a prefix (an instruction, a
/// passage asked about twice) come one after the other, and each copies the keys and values of what it shares
/// with the previous one instead of prefilling them (<see cref="PrefixReuse"/>, which keeps the bits).
/// </summary>
public static class BatchGenerator
{
    /// <summary>The batch `generate --prompts` and `eval halueval` use unless told: measured on the 0.5B shape
    /// (docs/performance.md), where prefill is most of an item's work.</summary>
    public const int DefaultBatchSize = 8;

    private sealed class Slot(Transformer model, GenerationOptions options)
    {
        public readonly RunState State = model.NewState();
        public readonly List<int> Generated = [];
        public readonly float[] Weights = options.Temperature == 0 ? [] : new float[model.Config.Vocab];
        public XorShiftRandom Rng = new(options.Seed);
        public int Prompt = -1;
        public int Next;
    }

    /// <summary>
    /// Results in the order of <paramref name="prompts"/>. <paramref name="completed"/> is told (prompt index,
    /// result) as each sequence finishes, in the order they finish. A batch of 1 runs <see cref="Generator.Generate"/>
    /// on each prompt in turn. <paramref name="reusePrefixes"/> false prefills every prompt whole (for measuring).
    /// </summary>
    public static GenerationResult[] Generate(Transformer model, IReadOnlyList<int[]> prompts, GenerationOptions options, int batchSize,
        Action<int, GenerationResult>? completed = null, bool reusePrefixes = true)
    {
        if (batchSize < 1) throw new TruthProbe.Common.UserError($"the batch size must be at least 1, got {batchSize}") { Field = "batch" };
        foreach (var prompt in prompts) Generator.Check(model, prompt, options);
        var results = new GenerationResult[prompts.Count];
        if (batchSize == 1)
        {
            // One at a time is Generator itself, so `--batch 1` is the reference the batched runs are held to.
            var state = model.NewState();
            for (int i = 0; i < prompts.Count; i++) completed?.Invoke(i, results[i] = Generator.Generate(model, prompts[i], options, state));
            return results;
        }
        int width = Math.Min(batchSize, prompts.Count);
        if (width == 0) return results;
        var slots = Enumerable.Range(0, width).Select(_ => new Slot(model, options)).ToArray();
        var batch = new DecodeBatch(model, width);
        var states = new RunState[width];
        var tokens = new int[width];
        var active = new Slot[width];
        var eosIds = model.EosIds;
        int vocab = model.Config.Vocab, nextPrompt = 0;
        // In token order a prompt's longest common prefix with any earlier prompt is the one with its predecessor.
        int[] order = [.. Enumerable.Range(0, prompts.Count)];
        if (reusePrefixes) Array.Sort(order, (a, b) => CompareIds(prompts[a], prompts[b]));
        RunState? previous = null;   // the state that holds the previous prompt's prefill: no later prompt has reset it

        // Takes the token after these logits; false when the sequence is finished (and its result recorded).
        bool Advance(Slot slot, ReadOnlySpan<float> logits)
        {
            int next = Generator.Next(logits, options, slot.Rng, slot.Weights);
            bool eos = options.StopAtEos && eosIds.Contains(next);
            if (!eos) slot.Generated.Add(next);
            if (eos || slot.Generated.Count == options.MaxNewTokens || slot.State.Position == model.Config.MaxContext)
            {
                Finish(slot, eos);
                return false;
            }
            slot.Next = next;
            return true;
        }

        void Finish(Slot slot, bool eos)
        {
            var result = new GenerationResult(prompts[slot.Prompt], slot.Generated.ToArray(), eos, options.Seed, options.Temperature);
            results[slot.Prompt] = result;
            completed?.Invoke(slot.Prompt, result);
            slot.Prompt = -1;
        }

        // Prefills prompts into a free slot until one of them needs decoding (or none is left).
        void Refill(Slot slot)
        {
            while (slot.Prompt < 0 && nextPrompt < prompts.Count)
            {
                var prompt = prompts[order[nextPrompt]];
                int shared = reusePrefixes && nextPrompt > 0 ? PrefixReuse.SharedPositions(model.Config, prompts[order[nextPrompt - 1]], prompt) : 0;
                slot.Prompt = order[nextPrompt++];
                if (shared > 0) PrefixReuse.CopyPrefix(model.Config, previous!, slot.State, shared);
                else slot.State.Reset();
                slot.State.Reserve(prompt.Length + options.MaxNewTokens);
                previous = slot.State;
                slot.Generated.Clear();
                slot.Rng = new XorShiftRandom(options.Seed);
                var logits = model.Forward(slot.State, prompt.AsSpan(shared), interventions: options.Interventions);
                if (options.MaxNewTokens == 0) Finish(slot, eos: false);
                else Advance(slot, logits);
            }
        }

        while (true)
        {
            int n = 0;
            foreach (var slot in slots)
            {
                Refill(slot);
                if (slot.Prompt < 0) continue;
                active[n] = slot;
                states[n] = slot.State;
                tokens[n++] = slot.Next;
            }
            if (n == 0) return results;
            var logits = batch.Step(states.AsSpan(0, n), tokens.AsSpan(0, n), options.Interventions);
            for (int i = 0; i < n; i++) Advance(active[i], logits.Slice(i * vocab, vocab));
        }
    }

    private static int CompareIds(int[] a, int[] b)
    {
        int common = a.AsSpan().CommonPrefixLength(b);
        return common < a.Length && common < b.Length ? a[common].CompareTo(b[common]) : a.Length.CompareTo(b.Length);
    }
}
