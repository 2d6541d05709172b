using System.CommandLine;
using System.Globalization;
using TruthProbe.Lab;

namespace TruthProbe.Cli;

public sealed class LabScenesVerb : IVerb
{
    public string Name => "lab scenes";
    public string Summary => "render the lab's synthetic visual world: scenes as PNG, POPE questions, captions, probing rows";
    public string Details => """
        Scenes of 2-4 objects (the lab world's 16 object classes in its 12 colours, as flat glyphs on a 4 x 4
        grid), drawn by theme so that classes differ in frequency and co-occur. Writes DIR/images/*.png,
        scenes.jsonl, captions.jsonl, objects.json (ground truth per image), pope_random/popular/adversarial.jsonl
        (question_id, image, text, label: POPE's format), probing.jsonl (question_id, image_id, image, question,
        answer, label gold|hallucinated) and manifest.json. The same seed gives the same bytes.
        """;

    private readonly Option<string> _out = Opt.Out("DIR", "folder to write the scenes and sets to");
    private readonly Option<int> _count = Opt.Int("--count", "N", 200, "scenes", min: 1);
    private readonly Option<int> _size = Opt.Int("--size", "PX", 64, "image side in pixels (56-112 is the lab's range)", min: 20);
    private readonly Option<ulong?> _seed = Opt.Seed("--seed", "scenes, random POPE negatives and probing episodes (default 1)");
    public IEnumerable<Symbol> Symbols => [_out, _count, _size, _seed];

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        string dir = args.GetValue(_out)!;
        int count = args.GetValue(_count), size = args.GetValue(_size);
        ulong seed = args.GetValue(_seed) ?? 1;
        var sets = SceneDatasets.Sample(count, seed);
        sets.Write(dir, size, seed);
        string popular = string.Join(", ", Enumerable.Range(0, SceneWorld.Classes.Length).OrderByDescending(c => sets.Frequency[c]).Take(3)
            .Select(c => string.Create(CultureInfo.InvariantCulture, $"{SceneWorld.Classes[c]} {sets.Frequency[c]}")));
        stdout.WriteLine($"wrote {count} scenes ({size}x{size} PNG, seed {seed}) and their POPE, caption and probing sets to {dir}; most frequent: {popular}");
        return 0;
    }
}
