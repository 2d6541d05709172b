using System.Text;
using System.Text.Json;

namespace TruthProbe.Probing;

/// <summary>
/// A TinyStories-style context-QA probing set, generated deterministically from one template: a story
/// about two children and their balls ("Mia had a red ball. Tom had a blue ball."), a question whose
/// answer is a name ("Who had the red ball?"), and two rows per item: the gold name, and a hallucinated
/// answer where the name is swapped for one the story never mentions. Gold and hallucinated names come
/// from the same pool, so the answer alone carries no label (the surface baseline sits at chance).
/// <para>Why this simplest form: copying names from context is the in-context skill TinyStories models
/// learn first. In our trials (1,000 rows each) swaps that need binding (the other child's name or colour),
/// detail swaps (a colour the story does not mention) and stories mixing several kinds of detail left
/// stories260K and both BabyLlama models at or barely above chance.</para>
/// Prompts stay under ~100 characters, short enough for BabyLlama's 256-character context.
/// </summary>
public static class ContextQaGenerator
{
    private static readonly string[] Names = ["Lily", "Tom", "Ben", "Mia", "Sam", "Anna", "Max", "Sue", "Tim", "Zoe"];
    private static readonly string[] Colours = ["red", "blue", "green", "yellow", "pink", "purple", "orange", "brown"];

    public const int DefaultItems = 500;
    public const int DefaultSeed = 2026;

    /// <summary>The jsonl text: per item a gold row then a hallucinated row, keys context, question, answer, label, item.</summary>
    public static string Generate(int items = DefaultItems, int seed = DefaultSeed)
    {
        var rng = new SeededRandom((ulong)(uint)seed);
        var sb = new StringBuilder();
        for (int item = 0; item < items; item++)
        {
            int a = rng.NextInt(Names.Length), b = Different(ref rng, a, Names.Length);
            int ca = rng.NextInt(Colours.Length), cb = Different(ref rng, ca, Colours.Length);
            bool askFirst = rng.NextInt(2) == 0;
            int absent;
            do absent = rng.NextInt(Names.Length); while (absent == a || absent == b);

            string context = $"{Names[a]} had a {Colours[ca]} ball. {Names[b]} had a {Colours[cb]} ball.";
            string question = $"Who had the {Colours[askFirst ? ca : cb]} ball?";
            Append(sb, context, question, Names[askFirst ? a : b], "gold", item);
            Append(sb, context, question, Names[absent], "hallucinated", item);
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
