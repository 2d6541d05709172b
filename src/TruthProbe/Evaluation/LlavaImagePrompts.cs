using TruthProbe.Common;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Probing;
using TruthProbe.Vision;

namespace TruthProbe.Evaluation;

/// <summary>
/// Probing rows shown to a LLaVA model with an image, as <c>score --images</c> runs them (the demo's descendant too): the
/// template through the model's prompt encoding, the image tokens expanded (LLaVA-NeXT: as many as the image's size
/// gives), each image preprocessed at <paramref name="aspect"/> (null: the model's default; LLaVA-NeXT tiles instead)
/// and encoded once while it stays in the cache. <paramref name="image"/> gives a row's image: a key naming its content
/// and how it is preprocessed, and how to read it. <paramref name="size"/> gives its size where the token count depends
/// on it (LLaVA-NeXT), else null.
/// </summary>
public sealed class LlavaImagePrompts(LlavaModel model, PromptTemplate template, AspectMode? aspect,
    Func<ProbingRow, (string Key, Func<RgbImage> Read)> image, Func<ProbingRow, ImageSize?> size) : RowPrompts
{
    /// <summary>The reference's LLaVA probing prompt (the template <c>score --images</c> uses when none is given).</summary>
    public const string ImageTemplate = "<image>\n{question}\nASSISTANT: {answer}";

    // Made on the first row: a caller that runs some rows otherwise (text-only) never pays for the vision buffers.
    private LlavaState? _state;
    private ImageFeatureCache? _cache;

    /// <summary>Rows whose <see cref="ProbingRow.Image"/> names a file in <paramref name="imagesDir"/>, keyed by its path, at the model's default aspect.</summary>
    public static LlavaImagePrompts FromFolder(LlavaModel model, PromptTemplate template, string imagesDir) => new(model, template, null, row =>
    {
        string file = Path.Combine(imagesDir, row.Image ?? throw new UserError($"row {row.Index} (line {row.Line}) names no image; image probing rows each need one") { Field = "image" });
        return (file, () => ImageFile.Load(file));
    }, _ => null);

    public override Transformer Model => model.Language;
    public override string Template => template.Text;

    public override int[] Tokens(ProbingRow row) => model.ExpandImageTokens(model.EncodePrompt(template.Render(row)), size(row));

    public override void Run(ProbingRow row, int[] tokens, ActivationCapture capture)
    {
        _state ??= model.NewState();
        _cache ??= new ImageFeatureCache(model, _state);
        _state.Text.Reset();
        var (key, read) = image(row);
        var imageSize = size(row);
        var features = _cache.Get(key, () =>
        {
            var prepared = model.PrepareImage(read(), model.IsAnyres ? null : aspect);
            if (imageSize != null && prepared.Size != imageSize) throw new InvalidOperationException($"row {row.Index}: decoded {prepared.Size}, its header gave {imageSize}");
            return prepared;
        });
        model.ForwardEncoded(_state, tokens, features, capture, imageSize: imageSize);
    }

    public override (int Start, int Length) Evidence(ProbingRow row, int[] tokens) =>
        (Array.IndexOf(tokens, model.Config.ImageTokenId), model.ImageTokens(size(row)));
}
