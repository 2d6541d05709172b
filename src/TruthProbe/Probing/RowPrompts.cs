using TruthProbe.Common;
using TruthProbe.Model;

namespace TruthProbe.Probing;

/// <summary>
/// How probing rows become the ids a model runs, and how one row runs: text rows through a decoder
/// (<see cref="TextPrompts"/>), or rows with images through a vision-language model (wired by the caller: the
/// Vision folder sits beside this one). <see cref="ActivationCollector"/> and <see cref="EvidenceAttention"/> read rows
/// only through this.
/// </summary>
public abstract class RowPrompts
{
    /// <summary>The decoder whose hooks are captured (for a LLaVA model, its language model).</summary>
    public abstract Transformer Model { get; }

    /// <summary>The prompt template as the activations' metadata records it.</summary>
    public abstract string Template { get; }

    /// <summary>The ids the decoder sees for the row, image tokens expanded; a bad row is a <see cref="UserError"/> naming it.</summary>
    public abstract int[] Tokens(ProbingRow row);

    /// <summary>
    /// What else the activations' metadata records about how the rows <paramref name="kept"/> were run (part of the
    /// resume fingerprint, so a rerun with other images or another mode starts over).
    /// </summary>
    public virtual IEnumerable<KeyValuePair<string, string>> Metadata(IReadOnlyList<ProbingRow> kept) => [];

    /// <summary>Runs <paramref name="tokens"/> (the row's ids up to the scored one) from position 0 with <paramref name="capture"/>.</summary>
    public abstract void Run(ProbingRow row, int[] tokens, ActivationCapture capture);

    /// <summary>
    /// The positions holding the evidence the answer should rest on (the image, else the context) within the row's
    /// ids <paramref name="tokens"/>; a <see cref="UserError"/> when the row has none.
    /// </summary>
    public abstract (int Start, int Length) Evidence(ProbingRow row, int[] tokens);
}

/// <summary>Text rows: the template rendered and tokenised by the model's tokenizer, run through the decoder.</summary>
public sealed class TextPrompts(Transformer model, PromptTemplate template) : RowPrompts
{
    private RunState? _state;

    public override Transformer Model => model;
    public override string Template => template.Text;

    public override int[] Tokens(ProbingRow row) => model.Encode(template.Render(row));

    public override void Run(ProbingRow row, int[] tokens, ActivationCapture capture)
    {
        _state ??= model.NewState();
        _state.Reset();
        model.Forward(_state, tokens, capture);
    }

    /// <summary>
    /// The context's tokens: those of the text through <c>{context}</c> less those of the text before it, each
    /// tokenised alone (with BOS, without a trailing EOS). Both must be prefixes of the row's ids, which holds
    /// unless the tokenizer merges across the context's edges.
    /// </summary>
    public override (int Start, int Length) Evidence(ProbingRow row, int[] tokens)
    {
        int at = template.Text.IndexOf("{context}", StringComparison.Ordinal);
        if (at < 0 || row.Context.Length == 0)
            throw new UserError($"row {row.Index} (line {row.Line}): no context in the prompt (template '{template.Text}'), so there is no evidence span to measure attention on") { Field = "template" };
        int[] Prefix(string text)
        {
            int[] ids = model.Encode(PromptTemplate.Fill(text, row));
            return ids[..ActivationCollector.ScoredLength(ids, model.EosIds)];
        }
        int[] before = Prefix(template.Text[..at]);
        int[] through = Prefix(template.Text[..(at + "{context}".Length)]);
        if (!tokens.AsSpan().StartsWith(through) || !through.AsSpan().StartsWith(before))
            throw new UserError($"row {row.Index} (line {row.Line}): the tokenizer merges the context with the text around it, so its tokens cannot be located; put a separator (e.g. a newline) on each side of {{context}} in the template") { Field = "template" };
        return (before.Length, through.Length - before.Length);
    }
}
