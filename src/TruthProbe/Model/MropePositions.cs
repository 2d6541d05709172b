namespace TruthProbe.Model;

/// <summary>
/// Rotary angles a caller supplies instead of the ordinary position index (<see cref="RunState.Rotary"/>): rows
/// [count, d_head / 2] of cos and sin for the cache positions firstPosition .. firstPosition + count - 1.
/// </summary>
public interface IRotaryPositions
{
    void Fill(int firstPosition, int count, Span<float> cos, Span<float> sin);
}

/// <summary>
/// Qwen2-VL's multimodal RoPE: every position has three ids (temporal, height, width) and rotary frequency i takes
/// the id of the section it falls in (<c>mrope_section</c>, e.g. [16, 24, 24] of 64 frequencies; both halves of a
/// head alike). Past the prompt all three ids are the cache position plus <see cref="RopeDelta"/> (transformers'
/// <c>rope_deltas</c> = max prompt id + 1 - prompt length), as cached decoding continues. Each id's angles come from
/// <see cref="RopeTables"/>, the engine's own tables, so a text-only prompt (three equal rows) rotates bit for bit as
/// plain RoPE.
/// </summary>
public sealed class MropePositions : IRotaryPositions
{
    private readonly ModelConfig _config;
    private readonly int[] _section;
    private readonly int[][] _ids;

    public int PromptLength => _ids[0].Length;
    public int RopeDelta { get; }

    /// <param name="ids">Three rows (temporal, height, width) of one id per prompt position.</param>
    public MropePositions(ModelConfig config, IReadOnlyList<int> section, int[][] ids)
    {
        if (ids.Length != 3 || ids.Any(r => r.Length != ids[0].Length) || ids[0].Length == 0)
            throw new ArgumentException("M-RoPE needs three equally long, non-empty rows of position ids", nameof(ids));
        if (section.Count != 3 || section.Sum() != config.HeadDim / 2)
            throw new ArgumentException($"mrope_section must be three counts adding up to head_dim / 2 = {config.HeadDim / 2}", nameof(section));
        _config = config;
        _section = [.. section];
        _ids = ids;
        RopeDelta = ids.Max(r => r.Max()) + 1 - ids[0].Length;
    }

    /// <summary>The three ids of cache position <paramref name="position"/>.</summary>
    public (int Temporal, int Height, int Width) Ids(int position) => position < PromptLength
        ? (_ids[0][position], _ids[1][position], _ids[2][position])
        : (position + RopeDelta, position + RopeDelta, position + RopeDelta);

    public void Fill(int firstPosition, int count, Span<float> cos, Span<float> sin)
    {
        int half = _config.HeadDim / 2;
        Span<float> rowCos = stackalloc float[half], rowSin = stackalloc float[half];
        for (int t = 0; t < count; t++)
        {
            var (temporal, height, width) = Ids(firstPosition + t);
            int start = 0;
            for (int s = 0; s < 3; s++)
            {
                int id = s == 0 ? temporal : s == 1 ? height : width;
                RopeTables.Fill(id, 1, _config.HeadDim, _config.RopeTheta, _config.RopeLinearFactor, rowCos, rowSin);
                rowCos.Slice(start, _section[s]).CopyTo(cos.Slice(t * half + start, _section[s]));
                rowSin.Slice(start, _section[s]).CopyTo(sin.Slice(t * half + start, _section[s]));
                start += _section[s];
            }
        }
    }
}
