using System.Globalization;
using System.Text;

namespace TruthProbe.Tokenizers;

/// <summary>
/// Unicode NFC (canonical decomposition, canonical ordering, canonical composition; UAX #15) in managed code.
/// Needed because <c>string.Normalize</c> silently does nothing under InvariantGlobalization, which this project uses,
/// while Qwen2's tokenizer.json normalises to NFC first. Data: <see cref="UnicodeNfcData"/>.
/// </summary>
internal static class Nfc
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7, LCount = 19, VCount = 21, TCount = 28;
    private const int NCount = VCount * TCount, SCount = LCount * NCount;

    private static readonly Lazy<Tables> Data = new(Tables.Parse);

    private sealed class Tables
    {
        public readonly Dictionary<int, int> CombiningClass = [];
        public readonly Dictionary<int, int[]> Decomposition = [];
        public readonly Dictionary<long, int> Composition = [];

        public static Tables Parse()
        {
            var t = new Tables();
            var excluded = new HashSet<int>();
            foreach (string line in UnicodeNfcData.Table.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                string[] f = line.Split(' ');
                int Hex(int i) => int.Parse(f[i], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                switch (f[0])
                {
                    case "c":
                        for (int cp = Hex(1), last = Hex(2), ccc = int.Parse(f[3], CultureInfo.InvariantCulture); cp <= last; cp++) t.CombiningClass[cp] = ccc;
                        break;
                    case "d": t.Decomposition[Hex(1)] = f.Length == 3 ? [Hex(2)] : [Hex(2), Hex(3)]; break;
                    case "x": excluded.Add(Hex(1)); break;
                }
            }
            foreach (var (cp, parts) in t.Decomposition)
                if (parts.Length == 2 && !excluded.Contains(cp)) t.Composition[Key(parts[0], parts[1])] = cp;
            return t;
        }
    }

    private static long Key(int first, int second) => ((long)first << 21) | (uint)second;

    /// <summary>Below U+0300 every character is its own NFC and a starter, so such text needs no work.</summary>
    public static string Normalize(string text)
    {
        int i = 0;
        while (i < text.Length && text[i] < 0x300) i++;
        if (i == text.Length) return text;

        var t = Data.Value;
        var codePoints = new List<int>(text.Length + 8);
        foreach (var rune in text.EnumerateRunes()) Decompose(rune.Value, t, codePoints);
        SortCombiningMarks(codePoints, t);
        Compose(codePoints, t);
        var sb = new StringBuilder(text.Length);
        foreach (int cp in codePoints) sb.Append(char.ConvertFromUtf32(cp));
        return sb.ToString();
    }

    private static int Ccc(int cp, Tables t) => cp < 0x300 ? 0 : t.CombiningClass.GetValueOrDefault(cp);

    private static void Decompose(int cp, Tables t, List<int> output)
    {
        if (cp is >= SBase and < SBase + SCount)
        {
            int s = cp - SBase;
            output.Add(LBase + s / NCount);
            output.Add(VBase + s % NCount / TCount);
            if (s % TCount != 0) output.Add(TBase + s % TCount);
        }
        else if (cp >= 0xC0 && t.Decomposition.TryGetValue(cp, out int[]? parts))
            foreach (int part in parts) Decompose(part, t, output);
        else output.Add(cp);
    }

    /// <summary>Canonical ordering: a stable sort by combining class within each run of non-starters.</summary>
    private static void SortCombiningMarks(List<int> cps, Tables t)
    {
        for (int i = 1; i < cps.Count; i++)
        {
            int ccc = Ccc(cps[i], t);
            if (ccc == 0) continue;
            for (int j = i; j > 0; j--)
            {
                int before = Ccc(cps[j - 1], t);
                if (before <= ccc) break;
                (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]);
            }
        }
    }

    /// <summary>Canonical composition: each character joins the last starter unless a character between them blocks it
    /// (has class 0 or a class not below its own).</summary>
    private static void Compose(List<int> cps, Tables t)
    {
        int starter = -1, lastCcc = -1, n = 0;
        for (int i = 0; i < cps.Count; i++)
        {
            int cp = cps[i], ccc = Ccc(cp, t);
            if (starter >= 0 && (lastCcc == -1 || lastCcc < ccc) && TryCompose(cps[starter], cp, t, out int composite))
            {
                cps[starter] = composite;
                continue;
            }
            if (ccc == 0)
            {
                starter = n;
                lastCcc = -1;
            }
            else lastCcc = ccc;
            cps[n++] = cp;
        }
        cps.RemoveRange(n, cps.Count - n);
    }

    private static bool TryCompose(int first, int second, Tables t, out int composite)
    {
        if (first is >= LBase and < LBase + LCount && second is >= VBase and < VBase + VCount)
        {
            composite = SBase + ((first - LBase) * VCount + (second - VBase)) * TCount;
            return true;
        }
        if (first is >= SBase and < SBase + SCount && (first - SBase) % TCount == 0 && second is > TBase and < TBase + TCount)
        {
            composite = first + (second - TBase);
            return true;
        }
        return t.Composition.TryGetValue(Key(first, second), out composite);
    }
}
