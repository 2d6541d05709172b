using TruthProbe.Common;

namespace TruthProbe.Lab;

/// <summary>
/// Image probing episodes in which the answer's words cannot tell gold from hallucinated: only the image can. The
/// episodes come in groups whose rows share the question and answer text and differ in the scene, one scene making the
/// answer true and the other false, ordered so that the demo's one-row-per-episode cut (the gold row of even episodes,
/// the hallucinated row of odd ones) keeps every (question, answer) once as gold and once as hallucinated.
/// </summary>
/// <remarks>
/// The earlier rows asked "What is the red object?" with the most co-occurring absent class always the hallucinated
/// answer: gold and hallucinated answers were drawn from different class distributions, the answers' words alone
/// separated them (surface baseline 1.000) and the map ranked heads by how well they carried the answer word.
/// </remarks>
internal static class SceneProbing
{
    /// <summary>
    /// POPE-style presence episodes, "Is there a {class} in the image?" answered Yes or No, four per group for each
    /// class: a scene with the class (kept: Yes, gold), one without (Yes, hallucinated), one without (No, gold), one with
    /// (No, hallucinated). Every scene holding a class is asked about it (an even number of them per class); the scenes
    /// without it are half POPE's adversarial negatives (the absent scenes whose objects co-occur most with the class)
    /// and half random ones, each kind in both roles, so that the kind of negative does not tell the label either.
    /// </summary>
    public static List<SceneEpisode> Presence(SceneDatasets sets, ulong seed)
    {
        var rng = new SeededRandom(seed);
        var episodes = new List<SceneEpisode>();
        var scenes = sets.Scenes;
        int group = 0;
        for (int c = 0; c < SceneWorld.Classes.Length; c++)
        {
            var present = Shuffled(scenes.Where(s => s.Has(c)).Select(s => s.Id), ref rng);
            int groups = present.Count / 2;
            // Ties in co-occurrence are broken by a seeded key, so that the lower scene ids are not favoured.
            var absent = scenes.Where(s => !s.Has(c)).Select(s => (s.Id, Score: s.Objects.Sum(o => sets.CoOccurrence[o.Class, c]), Key: rng.NextUInt64()))
                .OrderByDescending(a => a.Score).ThenBy(a => a.Key).Select(a => a.Id).ToList();
            var adversarial = absent.Take(groups).ToList();
            var random = Shuffled(absent.Skip(groups), ref rng).Take(groups).ToList();
            if (random.Count < groups) throw new UserError($"class {SceneWorld.Classes[c]} is in {present.Count} of {scenes.Count} scenes: too few scenes lack it for balanced presence rows; sample more scenes") { Field = "scenes" };
            string question = SceneDatasets.QuestionText(c);
            for (int g = 0; g < groups; g++, group++)
            {
                // Counted over all classes, so that each kind of negative ends up in both roles (to within one).
                var (yesWrong, noRight) = group % 2 == 0 ? ((adversarial[g], "adversarial"), (random[g], "random")) : ((random[g], "random"), (adversarial[g], "adversarial"));
                episodes.Add(new SceneEpisode(present[2 * g], "present", question, VlmText.Yes, VlmText.No));
                episodes.Add(new SceneEpisode(yesWrong.Item1, yesWrong.Item2, question, VlmText.No, VlmText.Yes));
                episodes.Add(new SceneEpisode(noRight.Item1, noRight.Item2, question, VlmText.No, VlmText.Yes));
                episodes.Add(new SceneEpisode(present[2 * g + 1], "present", question, VlmText.Yes, VlmText.No));
            }
        }
        return episodes;
    }

    private static List<int> Shuffled(IEnumerable<int> ids, ref SeededRandom rng)
    {
        var list = ids.ToList();
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
        return list;
    }

    /// <summary>
    /// The two open-answer kinds, each mirrored on a second scene with the same question: the colour of a class ("What
    /// colour is the lamp?" "The lamp is red" on a scene with a red lamp; on a scene with a lamp of another colour and
    /// nothing red, "The lamp is red" is the hallucinated answer), and the object of a colour ("What is the red object?"
    /// "It is a lamp"; mirrored on a scene with a red object and no lamp, chosen among those whose objects co-occur most
    /// with lamps, POPE's adversarial negative). Each hallucinated answer names a colour or class absent from its scene.
    /// </summary>
    public static List<SceneEpisode> Mirrored(SceneDatasets sets, ulong seed)
    {
        var rng = new SeededRandom(seed);
        var episodes = new List<SceneEpisode>();
        var used = new HashSet<(int, string)>();
        var scenes = sets.Scenes;
        void AddPair(Scene s, Scene mirror, string kind, string question, string right, string mirrorRight)
        {
            if (used.Contains((s.Id, question)) || used.Contains((mirror.Id, question))) return;
            used.Add((s.Id, question));
            used.Add((mirror.Id, question));
            episodes.Add(new SceneEpisode(s.Id, kind, question, right, mirrorRight));
            episodes.Add(new SceneEpisode(mirror.Id, kind, question, mirrorRight, right));
        }
        foreach (var scene in scenes)
        {
            var o = scene.Objects[rng.NextInt(scene.Objects.Count)];
            string cls = SceneWorld.Classes[o.Class];
            var colourMirrors = scenes.Where(m => m.Objects.Any(x => x.Class == o.Class && x.Colour != o.Colour && scene.Objects.All(y => y.Colour != x.Colour))
                && m.Objects.All(x => x.Colour != o.Colour)).ToList();
            if (colourMirrors.Count > 0)
            {
                var m = colourMirrors[rng.NextInt(colourMirrors.Count)];
                int other = m.Objects.First(x => x.Class == o.Class).Colour;
                AddPair(scene, m, "colour", $"What colour is the {cls}?", $"The {cls} is {SyntheticWorld.Colours[o.Colour]}", $"The {cls} is {SyntheticWorld.Colours[other]}");
            }

            var p = scene.Objects[rng.NextInt(scene.Objects.Count)];
            var objectMirrors = scenes.Where(m => !m.Has(p.Class) && m.Objects.Any(x => x.Colour == p.Colour && !scene.Has(x.Class)))
                .Select(m => (Scene: m, Score: m.Objects.Sum(x => sets.CoOccurrence[x.Class, p.Class]), Key: rng.NextUInt64()))
                .OrderByDescending(m => m.Score).ThenBy(m => m.Key).Select(m => m.Scene).ToList();
            if (objectMirrors.Count > 0)
            {
                var m = objectMirrors[0];
                int other = m.Objects.First(x => x.Colour == p.Colour).Class;
                AddPair(scene, m, "object", $"What is the {SyntheticWorld.Colours[p.Colour]} object?", $"It is a {SceneWorld.Classes[p.Class]}", $"It is a {SceneWorld.Classes[other]}");
            }
        }
        return episodes;
    }
}
