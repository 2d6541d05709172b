using System.CommandLine;
using System.Globalization;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Vision;

namespace TruthProbe.Cli;

public sealed class InspectVerb : IVerb
{
    public string Name => "inspect";
    public string Summary => "show a model's architecture, size, dtypes and tokenizer";
    private readonly ModelInput _model = new(gating: false, visionTower: true, runs: false);
    public IEnumerable<Symbol> Symbols => _model.Symbols;

    public int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        using var loaded = _model.Load(args, Name);
        var model = loaded.Model;
        var c = model.Config;
        var inv = CultureInfo.InvariantCulture;
        stdout.WriteLine($"model:        {model.Source}");
        stdout.WriteLine($"format:       {model.Format}");
        stdout.WriteLine($"architecture: {c.Architecture}");
        stdout.WriteLine($"shape:        {c.Layers} layers, d_model {c.DModel}, {c.Heads} heads ({c.KvHeads} kv, d_head {c.HeadDim}), ffn {c.Ffn}, vocab {c.Vocab}, context {c.MaxContext}");
        stdout.WriteLine(string.Create(inv, $"rope:         theta {c.RopeTheta}{(c.RopeLinearFactor != 1 ? $", linear scaling {c.RopeLinearFactor}" : "")}; rms eps {c.RmsEps:g}"));
        stdout.WriteLine($"options:      tied embeddings {YesNo(c.TiedEmbeddings)}, qkv bias {YesNo(c.QkvBias)}, o_proj bias {YesNo(c.OProjBias)}, sliding window {c.SlidingWindow?.ToString(inv) ?? "none"}");
        stdout.WriteLine(string.Create(inv, $"parameters:   {c.ParameterCount():N0}"));
        var dtypes = model.Weights.Matrices().GroupBy(m => m.DType).Select(g => $"{g.Key} ({g.Count()} matrices, {g.Sum(m => m.ByteLength) / 1e6:0.0} MB)");
        stdout.WriteLine($"dtypes:       {string.Join(", ", dtypes)}");
        if (model.Tokenizer is { } t)
        {
            string Special(int? id) => id is int i ? $"{i} '{t.TokenText(i)}'" : "none";
            stdout.WriteLine($"tokenizer:    {t.Kind}, {t.VocabSize} tokens, BOS {Special(t.BosId)}, EOS {Special(t.EosId)}, adds BOS {YesNo(t.AddsBos)}");
        }
        else stdout.WriteLine($"tokenizer:    none (run from token ids; BOS {c.BosId?.ToString(inv) ?? "none"}, EOS {string.Join(",", c.EosIds)})");
        if (loaded.Llava is { } llava) WriteVision(llava, stdout);
        if (loaded.Qwen is { } qwen) WriteQwenVision(qwen, stdout);
        return 0;
    }

    /// <summary>The image path of a LLaVA model: tower, projector, image token and the preprocessing its folder sets.</summary>
    private static void WriteVision(LlavaModel llava, TextWriter stdout)
    {
        var l = llava.Config;
        var v = l.Vision;
        var inv = CultureInfo.InvariantCulture;
        stdout.WriteLine($"vision:       {l.Architecture}, CLIP ViT: {l.VisionLayersRun} of {v.Layers} layers run (features from hidden_states[{l.FeatureLayer}]), hidden {v.Hidden}, {v.Heads} heads, ffn {v.Intermediate}, {v.HiddenAct}, patch {v.PatchSize}, image {v.ImageSize}x{v.ImageSize}; layout {(llava.Layout == LlavaLayout.Hub ? "hub" : "nested")}");
        string bias = l.ProjectorBias ? "with biases" : "no biases";
        stdout.WriteLine($"projector:    linear {v.Hidden} -> {l.Text.DModel}, GELU, linear {l.Text.DModel} -> {l.Text.DModel} ({bias})");
        string token = llava.Language.Tokenizer is { } t && l.ImageTokenId >= 0 && l.ImageTokenId < t.VocabSize ? $" '{t.TokenText(l.ImageTokenId)}'" : "";
        string select = l.Select == FeatureSelect.Default ? "class token dropped" : "class token kept";
        if (llava.IsAnyres) WriteAnyres(llava, token, stdout);
        else stdout.WriteLine($"image token:  {l.ImageTokenId}{token}, {l.ImageTokens} per image ({v.Patches} patches, {select})");
        if (llava.Preprocessor is not { } p)
        {
            stdout.WriteLine($"preprocess:   none ({LlavaModel.PreprocessorFile} missing; --image needs it)");
            return;
        }
        var steps = new List<string>();
        string aspect = llava.DefaultAspect == AspectMode.Crop ? "crop" : "pad";
        steps.Add(llava.IsAnyres ? $"anyres: best pinpoint, resize to fit it, pad black, tiles of {v.ImageSize} after the whole image squashed to {v.ImageSize}; each tile"
            : $"aspect {aspect} by default (--image-aspect pad|crop)");
        if (p.DoResize)
            steps.Add(p.ShortestEdge is int edge ? $"resize shortest edge to {edge} ({p.Resample.ToString().ToLowerInvariant()})"
                : $"resize to {p.ResizeWidth}x{p.ResizeHeight} ({p.Resample.ToString().ToLowerInvariant()})");
        if (p.DoCenterCrop) steps.Add($"centre crop {p.CropWidth}x{p.CropHeight}");
        if (p.DoRescale) steps.Add(string.Create(inv, $"rescale x{p.RescaleFactor:g6}"));
        if (p.DoNormalize) steps.Add($"normalise mean [{Triple(p.Mean)}] std [{Triple(p.Std)}]");
        stdout.WriteLine($"preprocess:   {string.Join(", ", steps)}");
    }

    /// <summary>LLaVA-NeXT: the grid candidates and, as examples, the image tokens of an image of each candidate's own size.</summary>
    private static void WriteAnyres(LlavaModel llava, string token, TextWriter stdout)
    {
        var l = llava.Config;
        int side = l.Vision.PatchesPerSide;
        stdout.WriteLine($"image token:  {l.ImageTokenId}{token}, per image {side * side} for the base tile + the grid's unpadded features + one image_newline per row (depends on the image's size)");
        var examples = l.GridPinpoints.Select(p =>
        {
            var layout = AnyresLayout.For(l, new ImageSize(p.Height, p.Width));
            return $"{p.Width}x{p.Height}: {layout.Tiles} tiles, {layout.ImageTokens} tokens";
        });
        stdout.WriteLine($"anyres grid:  pinpoints (height, width) {string.Join(" ", l.GridPinpoints.Select(p => $"[{p.Height}, {p.Width}]"))}; an image of each size (WxH) {string.Join("; ", examples)}");
    }

    /// <summary>The image path of a Qwen2.5-VL / Omni thinker: encoder, merger, M-RoPE, image tokens and the image budget.</summary>
    private static void WriteQwenVision(QwenVLModel qwen, TextWriter stdout)
    {
        var c = qwen.Config;
        var v = c.Vision;
        stdout.WriteLine($"vision:       {c.Architecture}, ViT: {v.Depth} blocks, hidden {v.Hidden}, {v.Heads} heads, ffn {v.Intermediate} (SwiGLU), patch {v.PatchSize} x {v.TemporalPatchSize} frames, windows {v.WindowSize} px, full attention in blocks [{string.Join(", ", v.FullAttentionBlocks)}]; layout {qwen.Layout.Name}");
        stdout.WriteLine($"merger:       {v.MergeSize}x{v.MergeSize} patches -> linear {v.Hidden * v.MergeUnit} -> {v.Hidden * v.MergeUnit}, GELU, linear -> {v.OutHidden}; M-RoPE sections [{string.Join(", ", c.MropeSection)}]");
        string token = qwen.Language.Tokenizer is { } t && c.ImageTokenId < t.VocabSize ? $" '{t.TokenText(c.ImageTokenId)}'" : "";
        stdout.WriteLine($"image token:  {c.ImageTokenId}{token}, one per {v.MergeUnit} patches (vision start {c.VisionStartTokenId}, end {c.VisionEndTokenId})");
        stdout.WriteLine(qwen.Preprocessor is { } p
            ? string.Create(CultureInfo.InvariantCulture, $"preprocess:   smart_resize to multiples of {p.Factor} within {p.MinPixels}..{p.MaxPixels} pixels ({p.Resample.ToString().ToLowerInvariant()}; --min-pixels/--max-pixels), rescale x{p.RescaleFactor:g6}, normalise mean [{Triple(p.Mean)}] std [{Triple(p.Std)}]")
            : $"preprocess:   none ({QwenVLModel.PreprocessorFile} missing; --image needs it)");
    }

    private static string Triple(double[] x) => string.Join(", ", x.Select(d => d.ToString("0.########", CultureInfo.InvariantCulture)));

    private static string YesNo(bool b) => b ? "yes" : "no";
}
