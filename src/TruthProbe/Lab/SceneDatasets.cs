using System.Text.Json;
using System.Text.Json.Nodes;
using TruthProbe.Common;
using TruthProbe.Imaging;
using TruthProbe.Numerics;

namespace TruthProbe.Lab;

/// <summary>A POPE-style question about one scene: "Is there a {class} in the image?" with its yes/no label.</summary>
public sealed record ObjectQuestion(int Scene, int Class, bool Present);

/// <summary>A probing episode about one scene: a question with a gold and a hallucinated answer of equal length in words, and how the scene relates to it (its Kind).</summary>
public sealed record SceneEpisode(int Scene, string Kind, string Question, string Gold, string Hallucinated);

/// <summary>
/// The evaluation and probing sets of a set of scenes, built as the real benchmarks are: POPE's three negative
/// settings (random absent classes; the most frequent absent classes; the absent classes that co-occur most with
/// the present ones), captions with their ground-truth objects for a CHAIR-style metric, and probing rows with a
/// gold and a hallucinated answer that differ only in the asked word.
/// </summary>
public sealed class SceneDatasets
{
    public static readonly string[] PopeSettings = ["random", "popular", "adversarial"];
    /// <summary>Questions per scene and setting: present classes (up to this many), and as many absent ones.</summary>
    public const int PositivesPerScene = 3;

    public IReadOnlyList<Scene> Scenes { get; }
    /// <summary>Scenes holding each class.</summary>
    public int[] Frequency { get; }
    /// <summary>Scenes holding both classes.</summary>
    public int[,] CoOccurrence { get; }

    public SceneDatasets(IReadOnlyList<Scene> scenes)
    {
        Scenes = scenes;
        int k = SceneWorld.Classes.Length;
        Frequency = new int[k];
        CoOccurrence = new int[k, k];
        foreach (var s in scenes)
            foreach (var a in s.Objects)
            {
                Frequency[a.Class]++;
                foreach (var b in s.Objects) if (a.Class != b.Class) CoOccurrence[a.Class, b.Class]++;
            }
    }

    public static SceneDatasets Sample(int count, ulong seed)
    {
        var rng = new SeededRandom(seed);
        var scenes = new List<Scene>(count);
        for (int i = 0; i < count; i++) scenes.Add(SceneWorld.Sample(i, ref rng));
        return new SceneDatasets(scenes);
    }

    /// <summary>
    /// One setting's questions, scene by scene, a present class then an absent one in turn. Absent classes are ranked
    /// by the setting (popular: frequency; adversarial: co-occurrence with the scene's classes, then frequency; ties
    /// to the lower class index) or drawn at random from <paramref name="seed"/>.
    /// </summary>
    public List<ObjectQuestion> Pope(string setting, ulong seed)
    {
        var rng = new SeededRandom(seed);
        var questions = new List<ObjectQuestion>();
        foreach (var scene in Scenes)
        {
            var present = scene.Objects.Select(o => o.Class).Take(PositivesPerScene).ToList();
            var absent = Enumerable.Range(0, SceneWorld.Classes.Length).Where(c => !scene.Has(c)).ToList();
            List<int> negatives = setting switch
            {
                "random" => absent.OrderBy(_ => rng.NextUInt64()).ToList(),
                "popular" => absent.OrderByDescending(c => Frequency[c]).ThenBy(c => c).ToList(),
                "adversarial" => absent.OrderByDescending(c => scene.Objects.Sum(o => CoOccurrence[o.Class, c])).ThenByDescending(c => Frequency[c]).ThenBy(c => c).ToList(),
                _ => throw new ArgumentOutOfRangeException(nameof(setting), setting, "random, popular or adversarial"),
            };
            for (int i = 0; i < present.Count; i++)
            {
                questions.Add(new ObjectQuestion(scene.Id, present[i], true));
                questions.Add(new ObjectQuestion(scene.Id, negatives[i], false));
            }
        }
        return questions;
    }

    public static string QuestionText(int cls) => $"Is there a {SceneWorld.Classes[cls]} in the image?";

    /// <summary>
    /// The image probing episodes: POPE-style presence questions balanced per class and answer, so that the answers'
    /// words carry no label (<see cref="SceneProbing.Presence"/>); in the order the demo's one-row cut needs.
    /// </summary>
    public List<SceneEpisode> Episodes(ulong seed) => SceneProbing.Presence(this, seed);

    /// <summary>
    /// Writes the scenes and their sets into <paramref name="dir"/>: images/*.png, scenes.jsonl, captions.jsonl,
    /// objects.json (ground truth for CHAIR), pope_{random,popular,adversarial}.jsonl in POPE's question format,
    /// probing.jsonl (rows <c>question_id, image_id, image, question, answer, label</c>) and manifest.json.
    /// </summary>
    public void Write(string dir, int size, ulong seed)
    {
        string images = Path.Combine(dir, "images");
        Directory.CreateDirectory(images);
        foreach (var scene in Scenes)
            AtomicFile.WriteAllBytes(Path.Combine(images, scene.ImageName), PngEncoder.Encode(SceneWorld.Render(scene, size)));

        WriteLines(Path.Combine(dir, "scenes.jsonl"), Scenes.Select(s => new JsonObject
        {
            ["image_id"] = s.Id, ["image"] = s.ImageName, ["theme"] = SceneWorld.ThemeNames[s.Theme],
            ["objects"] = new JsonArray(s.Objects.Select(o => (JsonNode)new JsonObject
            {
                ["class"] = SceneWorld.Classes[o.Class], ["colour"] = SyntheticWorld.Colours[o.Colour], ["row"] = o.Row, ["column"] = o.Column,
            }).ToArray()),
        }));
        WriteLines(Path.Combine(dir, "captions.jsonl"), Scenes.Select(s => new JsonObject { ["image_id"] = s.Id, ["image"] = s.ImageName, ["caption"] = SceneWorld.Caption(s) }));
        AtomicFile.WriteAllText(Path.Combine(dir, "objects.json"), new JsonObject(Scenes.Select(s =>
            KeyValuePair.Create(s.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
                (JsonNode?)new JsonArray(s.Objects.Select(o => (JsonNode)SceneWorld.Classes[o.Class]).ToArray())))).ToJsonString() + "\n");
        for (int i = 0; i < PopeSettings.Length; i++)
        {
            int id = 0;
            WriteLines(Path.Combine(dir, $"pope_{PopeSettings[i]}.jsonl"), Pope(PopeSettings[i], seed + (ulong)i + 1).Select(q => new JsonObject
            {
                ["question_id"] = id++, ["image"] = Scenes[q.Scene].ImageName, ["text"] = QuestionText(q.Class), ["label"] = q.Present ? "yes" : "no",
            }));
        }
        int row = 0;
        WriteLines(Path.Combine(dir, "probing.jsonl"), Episodes(seed + 10).SelectMany(e => new[] { (e.Gold, "gold"), (e.Hallucinated, "hallucinated") }.Select(a => new JsonObject
        {
            ["question_id"] = row++, ["image_id"] = e.Scene, ["image"] = Scenes[e.Scene].ImageName, ["kind"] = e.Kind,
            ["question"] = e.Question, ["answer"] = a.Item1, ["label"] = a.Item2,
        })));
        var manifest = new JsonObject
        {
            ["tool"] = "truthprobe lab scenes",
            ["scenes"] = Scenes.Count, ["size"] = size, ["seed"] = seed,
            ["classes"] = new JsonArray(SceneWorld.Classes.Select(c => (JsonNode)c).ToArray()),
            ["class_frequency"] = new JsonArray(Frequency.Select(f => (JsonNode)f).ToArray()),
            ["themes"] = new JsonObject(SceneWorld.ThemeNames.Select((t, i) => KeyValuePair.Create(t,
                (JsonNode?)new JsonObject { ["weight"] = SceneWorld.ThemeWeights[i], ["classes"] = new JsonArray(SceneWorld.Themes[i].Select(c => (JsonNode)SceneWorld.Classes[c]).ToArray()) }))),
            ["pope"] = "per scene up to 3 present classes, each followed by one absent class: random (seeded), popular (most frequent absent), adversarial (most co-occurring absent)",
            ["probing"] = "per class, every scene holding it and as many without it (alternately adversarial: objects co-occurring most with it; and random): \"Is there a {class} in the image?\" with gold Yes / hallucinated No on the first and gold No / hallucinated Yes on the second, so that one row per episode (gold of even, hallucinated of odd episodes) keeps Yes on both",
            ["provenance"] = Provenance.Of([("scenes", (JsonNode)seed)], []),
        };
        AtomicFile.WriteAllText(Path.Combine(dir, "manifest.json"), manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    private static void WriteLines(string path, IEnumerable<JsonObject> lines) =>
        AtomicFile.WriteAllText(path, string.Concat(lines.Select(l => l.ToJsonString() + "\n")));
}
