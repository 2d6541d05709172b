using System.Text.Json;
using System.Text;
using TruthProbe.Common;

namespace TruthProbe.Probing;

/// <summary>
/// A TinyStories-style context-QA probing set, generated deterministically from one template: a story
/// that names its child twice ("Mia had a red ball. Mia liked to play."), a question whose answer is that
/// name ("Who had the red ball?"), and ONE row per story: even stories answer with the gold name, odd ones
/// with a name swapped for one the story never mentions. Gold and swapped names come from the same pool and
/// have the same form, so the answer alone carries no label (the surface baseline sits at chance).
/// <para>Why one row per story: with a gold and a swapped row per story, row-level folds put a row's twin
/// (same story, opposite label, nearly the same activations) into training, which pushes every uninformed
/// probe below 0.5 and hid the signal (2-row stories: means 0.47-0.49, maps at chance). Why the name, said
/// twice, as the last token: copying a repeated name is what these tiny models demonstrably do; swapping a
/// colour or the other child's name (binding) left stories260K at or near chance. Shipped set, scored with
/// <see cref="Template"/> (1,000 rows, seed 42): mean / top head accuracy and heads passing the chance test
/// 0.522 / 0.652 / 8 (stories260K), 0.521 / 0.669 / 10 (BabyLlama-105), 0.526 / 0.675 / 12 (BabyLlama-361);
/// surface baseline 0.45.</para>
/// Prompts stay under ~80 characters, short enough for BabyLlama's 256-token context.
/// </summary>
public static class ContextQaGenerator
{
    private static readonly string[] Names = ["Lily", "Tom", "Ben", "Mia", "Sam", "Anna", "Max", "Sue", "Tim", "Zoe"];
    private static readonly string[] Colours = ["red", "blue", "green", "yellow", "pink", "purple", "orange", "brown"];

    public const int DefaultItems = 1000;
    public const int DefaultSeed = 2026;

    /// <summary>The prompt template the set is scored with: plain story text, as TinyStories models saw in training.</summary>
    public const string Template = "{context} {question} {answer}";

    /// <summary>The jsonl text: one row per story (gold for even items, swapped for odd), keys context, question, answer, label, item.</summary>
    public static string Generate(int items = DefaultItems, int seed = DefaultSeed)
    {
        var rng = new SeededRandom((ulong)(uint)seed);
        var sb = new StringBuilder();
        for (int item = 0; item < items; item++)
        {
            int child = rng.NextInt(Names.Length), absent = Different(ref rng, child, Names.Length);
            string colour = Colours[rng.NextInt(Colours.Length)];
            bool gold = item % 2 == 0;

            string context = $"{Names[child]} had a {colour} ball. {Names[child]} liked to play.";
            string question = $"Who had the {colour} ball?";
            Append(sb, context, question, Names[gold ? child : absent], gold ? "gold" : "hallucinated", item);
        }
        return sb.ToString();
    }

    private static int Different(ref SeededRandom rng, int other, int count) => (other + 1 + rng.NextInt(count - 1)) % count;

    private static readonly JsonSerializerOptions Json = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static void Append(StringBuilder sb, string context, string question, string answer, string label, int item)
    {
        var row = new Dictionary<string, object> { ["context"] = context, ["question"] = question, ["answer"] = answer, ["label"] = label, ["item"] = item };
        sb.Append(JsonSerializer.Serialize(row, Json)).Append('\n');
    }
}
