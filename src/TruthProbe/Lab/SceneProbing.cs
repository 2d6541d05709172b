using TruthProbe.Common;

namespace TruthProbe.Lab;

/// <summary>
/// Image probing episodes in which the answer's words cannot tell gold from hallucinated: only the image can. Episodes
/// come in pairs with the same question on two scenes, one that makes "Yes" true and one that makes it a hallucination,
/// ordered so that the demo's one-row-per-episode cut (the gold row of even episodes, the hallucinated row of odd ones)
/// keeps every (question, answer) text as often gold as hallucinated.
/// </summary>
/// <remarks>
/// The earlier rows ("What colour is the lamp?", "What is the red object?") put the gold colour answers and the
/// hallucinated object answers on opposite sides of that cut, so the answers' words alone gave every label (surface
/// baseline 1.000) and the map ranked heads by how well they carried the answer word (docs/lab.md).
/// </remarks>
internal static class SceneProbing
{
    /// <summary>
    /// POPE-style presence episodes, "Is there a {class} in the image?", in pairs for each class: a scene with the class
    /// (gold Yes, hallucinated No) then a scene without it (gold No, hallucinated Yes), so that the demo's cut keeps "Yes"
    /// on both, true on the first and a hallucinated object on the second. Every scene holding a class is asked about it;
    /// the scenes without it alternate between POPE's adversarial negatives (the absent scenes whose objects co-occur most
    /// with the class) and random ones.
    /// </summary>
    /// <remarks>
    /// Only the affirmative answer is kept because with both kept the label is the XOR of what the image shows and what the
    /// answer says: a head that carries either alone, or both side by side, is at chance under a linear probe, and every
    /// head of three descendants was (docs/lab.md). "Yes" to an absent object is the hallucination POPE counts.
    /// </remarks>
    public static List<SceneEpisode> Presence(SceneDatasets sets, ulong seed)
    {
        var rng = new SeededRandom(seed);
        var episodes = new List<SceneEpisode>();
        var scenes = sets.Scenes;
        int pair = 0;
        for (int c = 0; c < SceneWorld.Classes.Length; c++)
        {
            var present = Shuffled(scenes.Where(s => s.Has(c)).Select(s => s.Id), ref rng);
            // Ties in co-occurrence are broken by a seeded key, so that the lower scene ids are not favoured.
            var absent = scenes.Where(s => !s.Has(c)).Select(s => (s.Id, Score: s.Objects.Sum(o => sets.CoOccurrence[o.Class, c]), Key: rng.NextUInt64()))
                .OrderByDescending(a => a.Score).ThenBy(a => a.Key).Select(a => a.Id).ToList();
            var adversarial = new Queue<int>(absent.Take(Math.Min(present.Count, absent.Count / 2)));
            var random = new Queue<int>(Shuffled(absent.Skip(adversarial.Count), ref rng));
            string question = SceneDatasets.QuestionText(c);
            foreach (int scene in present)
            {
                // Counted over all classes, so that the two kinds of negative are within one of each other.
                var (pool, kind) = (pair % 2 == 0 && adversarial.Count > 0) || random.Count == 0 ? (adversarial, "adversarial") : (random, "random");
                if (pool.Count == 0) break;
                episodes.Add(new SceneEpisode(scene, "present", question, VlmText.Yes, VlmText.No));
                episodes.Add(new SceneEpisode(pool.Dequeue(), kind, question, VlmText.No, VlmText.Yes));
                pair++;
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
}
