using System.Globalization;
using TruthProbe.Model;

namespace TruthProbe.Tests.Lineage;

/// <summary>Descendants made with the engine's writers: a parent's weights, edited in float32, written as an HF folder.</summary>
internal static class DriftFixtures
{
    /// <summary>
    /// Edits one matrix in place: (name, layer or -1 for embed/lm_head, values [rows * cols] row-major, rows, cols).
    /// Matrix names as in drift.csv: q, k, v, o, gate, up, down, embed, lm_head.
    /// </summary>
    public delegate void Edit(string matrix, int layer, float[] values, int rows, int cols);

    public static string WriteEdited(string parentPath, string folder, Edit edit)
    {
        using var parent = Transformer.Load(parentPath);
        WeightMatrix Apply(WeightMatrix m, string name, int layer)
        {
            float[] v = m.ToSingles();
            edit(name, layer, v, m.Rows, m.Cols);
            return WeightMatrix.FromSingles(v, m.Rows, m.Cols);
        }
        var w = parent.Weights;
        var embed = Apply(w.TokenEmbedding, "embed", -1);
        var edited = w with
        {
            TokenEmbedding = embed,
            Classifier = ReferenceEquals(w.Classifier, w.TokenEmbedding) ? embed : Apply(w.Classifier, "lm_head", -1),
            Layers = w.Layers.Select((L, l) => L with
            {
                Q = Apply(L.Q, "q", l), K = Apply(L.K, "k", l), V = Apply(L.V, "v", l), O = Apply(L.O, "o", l),
                Gate = Apply(L.Gate, "gate", l), Up = Apply(L.Up, "up", l), Down = Apply(L.Down, "down", l),
            }).ToArray(),
        };
        HfCheckpoint.Write(folder, parent.Config, edited, WeightDType.F32);
        return folder;
    }

    /// <summary>Adds noise of <paramref name="relative"/> times each matrix's RMS to every entry (seeded, uniform with unit variance).</summary>
    public static Edit Noise(double relative, ulong seed) => (_, _, v, _, _) =>
    {
        var rng = new XorShiftRandom(seed++);
        double rms = Math.Sqrt(v.Sum(x => (double)x * x) / v.Length);
        for (int i = 0; i < v.Length; i++) v[i] += (float)(relative * rms * Math.Sqrt(3) * (rng.NextDouble() * 2 - 1));
    };

    /// <summary>drift.csv as (layer, head, matrix) -> (rel_frobenius, cosine); empty fields become -1.</summary>
    public static Dictionary<(int Layer, int Head, string Matrix), (double Rel, double Cos)> ReadCsv(string path)
    {
        var lines = File.ReadAllLines(path);
        Assert.Equal("layer,head,matrix,rel_frobenius,cosine", lines[0]);
        static int Index(string s) => s.Length == 0 ? -1 : int.Parse(s, CultureInfo.InvariantCulture);
        static double Num(string s) => double.Parse(s, CultureInfo.InvariantCulture);
        return lines.Skip(1).Select(l => l.Split(',')).ToDictionary(f => (Index(f[0]), Index(f[1]), f[2]), f => (Num(f[3]), Num(f[4])));
    }

    /// <summary>Sum of squares of a block of rows (or of columns) of a row-major matrix, in double: the closed-form reference.</summary>
    public static double SumSq(float[] v, int cols, int rowStart, int rowEnd, int colStart, int colEnd)
    {
        double s = 0;
        for (int r = rowStart; r < rowEnd; r++)
            for (int c = colStart; c < colEnd; c++) s += (double)v[r * cols + c] * v[r * cols + c];
        return s;
    }
}
