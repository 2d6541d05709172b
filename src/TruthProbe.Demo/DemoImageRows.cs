using TruthProbe.Common;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Probing;
using TruthProbe.Vision;

namespace TruthProbe.Demo;

/// <summary>
/// Image probing rows on a LLaVA model as <c>score --images DIR</c> runs them in its default image mode: the reference's
/// image prompt through the model's tokenizer, image tokens expanded, each row's image preprocessed at the model's
/// default aspect and encoded once while it stays in the cache.
/// </summary>
public sealed class DemoImageRows : RowPrompts
{
    /// <summary>The reference's LLaVA probing prompt (the template <c>score --images</c> uses when none is given).</summary>
    public const string ImageTemplate = "<image>\n{question}\nASSISTANT: {answer}";
    /// <summary>The base's own text task (the reference's context prompt) with the row's scene shown before it.</summary>
    public const string ContextTemplate = "<image>\n" + PromptTemplate.Default;

    private readonly LlavaModel _model;
    private readonly string _images;
    private readonly PromptTemplate _template;
    private readonly LlavaState _state;
    private readonly ImageFeatureCache _cache;

    public DemoImageRows(LlavaModel model, string imagesDir, string template = ImageTemplate)
    {
        (_model, _images, _template) = (model, imagesDir, new PromptTemplate(template));
        _state = model.NewState();
        _cache = new ImageFeatureCache(model, _state);
    }

    public override Transformer Model => _model.Language;
    public override string Template => _template.Text;

    public override int[] Tokens(ProbingRow row) => _model.ExpandImageTokens(_model.Language.Encode(_template.Render(row)));

    public override void Run(ProbingRow row, int[] tokens, ActivationCapture capture)
    {
        _state.Text.Reset();
        string file = Path.Combine(_images, row.Image ?? throw new UserError($"row {row.Index} (line {row.Line}) names no image; the demo's image probing rows each need one") { Field = "image" });
        var features = _cache.Get(file, () => _model.PrepareImage(ImageFile.Load(file)));
        _model.ForwardEncoded(_state, tokens, features, capture);
    }

    public override (int Start, int Length) Evidence(ProbingRow row, int[] tokens) =>
        (Array.IndexOf(tokens, _model.Config.ImageTokenId), _model.Config.ImageTokens);
}
