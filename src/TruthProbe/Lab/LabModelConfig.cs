using TruthProbe.Common;
using TruthProbe.Model;

namespace TruthProbe.Lab;

/// <summary>The shapes the lab grows: presets of the engine's <see cref="ModelConfig"/>, so a lab checkpoint is read
/// back by the same code as any downloaded Llama.</summary>
public static class LabModelConfig
{
    /// <summary>A Llama-style decoder with the lab's conventions (no biases, RMS eps 1e-5).</summary>
    public static ModelConfig Create(int Vocab, int Dim, int Layers, int Heads, int KvHeads, int HeadDim, int Hidden, int MaxPositions,
        float RopeTheta = 10000f, bool TieEmbeddings = true, int BosId = 1, int EosId = 2)
    {
        var config = new ModelConfig
        {
            Architecture = "llama", Vocab = Vocab, DModel = Dim, Layers = Layers, Heads = Heads, KvHeads = KvHeads, HeadDim = HeadDim,
            Ffn = Hidden, MaxContext = MaxPositions, RopeTheta = RopeTheta, RmsEps = 1e-5f, TiedEmbeddings = TieEmbeddings,
            BosId = BosId, EosIds = [EosId],
        };
        config.Validate("lab model config");
        return config;
    }

    /// <summary>The named sizes of <c>lab pretrain --size</c>. Head size 16: 8 did not learn retrieval (docs/design.md §9).</summary>
    public static ModelConfig ForSize(string size, int vocab, int maxPositions, int bosId, int eosId) => size switch
    {
        "tiny" => Create(vocab, Dim: 64, Layers: 4, Heads: 4, KvHeads: 2, HeadDim: 16, Hidden: 192, maxPositions, BosId: bosId, EosId: eosId),
        "small" => Create(vocab, Dim: 128, Layers: 4, Heads: 8, KvHeads: 4, HeadDim: 16, Hidden: 384, maxPositions, BosId: bosId, EosId: eosId),
        // The demo's: 64 heads for a map with something to measure, at about twice tiny's cost per token
        // because the residual stream stays at 64 (q/o project 64 <-> 8 x 16, as Gemma's do).
        "wide" => Create(vocab, Dim: 64, Layers: 8, Heads: 8, KvHeads: 4, HeadDim: 16, Hidden: 192, maxPositions, BosId: bosId, EosId: eosId),
        _ => throw new UserError($"lab model size must be tiny, small or wide, got '{size}'") { Field = "size" },
    };
}
