using System.Text.RegularExpressions;

namespace TruthProbe.Probing;

/// <summary>
/// The surface-form control: can the label be read off the answer's wording alone? Features per row:
/// answer length in characters and in words (log(1 + count)), and presence of each of the
/// <see cref="VocabularySize"/> most frequent lower-cased answer words (document frequency over all rows,
/// ties by ordinal order; no labels are used to pick them). Fitted with the exact solver on the same folds
/// as the head probes, so its accuracy is directly comparable to a Truth Score.
/// </summary>
public static partial class SurfaceBaseline
{
    public const int VocabularySize = 256;
    public const string Description = "logistic regression (exact solver) on log(1+characters), log(1+words) and presence of the 256 most frequent lower-cased answer words";

    public static ActivationSet Features(IReadOnlyList<string> answers, byte[] labels)
    {
        int n = answers.Count;
        var words = answers.Select(a => WordRegex().Matches(a.ToLowerInvariant()).Select(m => m.Value).ToArray()).ToArray();
        var vocabulary = words.SelectMany(w => w.Distinct())
            .GroupBy(w => w, StringComparer.Ordinal)
            .OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal)
            .Take(VocabularySize)
            .Select((g, index) => (g.Key, index))
            .ToDictionary(p => p.Key, p => p.index, StringComparer.Ordinal);
        int d = 2 + vocabulary.Count;
        var values = new float[n * d];
        for (int i = 0; i < n; i++)
        {
            var row = values.AsSpan(i * d, d);
            row[0] = (float)Math.Log(1 + answers[i].Length);
            row[1] = (float)Math.Log(1 + words[i].Length);
            foreach (string w in words[i])
                if (vocabulary.TryGetValue(w, out int k)) row[2 + k] = 1;
        }
        return new ActivationSet(n, 1, 1, d, values, labels, Enumerable.Range(0, n).Select(i => (long)i).ToArray());
    }

    [GeneratedRegex(@"[\p{L}\p{N}]+")]
    private static partial Regex WordRegex();
}
