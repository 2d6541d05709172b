using TruthProbe.Common;
using TruthProbe.Evaluation;
using TruthProbe.Imaging;
using TruthProbe.Model;
using TruthProbe.Probing;
using TruthProbe.Vision;

namespace TruthProbe.Cli;

/// <summary>
/// Rows run on a Qwen2.5-VL / Omni model in one <see cref="ImageMode"/>, each rendered by the model's chat template as
/// <c>[user: {image, question}, assistant: answer]</c> without a generation prompt (<see cref="QwenPrompts.Chat"/>); the
/// scored token is the sequence's last, the newline after the answer's <c>&lt;|im_end|&gt;</c>. Images go through the
/// folder's Qwen2VLImageProcessor (or --min-pixels / --max-pixels), so each image has its own token count. The last
/// image encoded is kept, so consecutive rows about one image (RLHF-V's gold and hallucinated answers) encode it once.
/// </summary>
internal sealed class QwenRowPrompts : RowPrompts
{
    /// <summary>The paper's black image: all-zero RGB 336x336 (144 image tokens under the hub's budget), preprocessed like a photo.</summary>
    private const int BlackSize = 336;

    private readonly QwenVLModel _model;
    private readonly ImageRows _rows;
    private readonly QwenImageProcessor? _processor;
    private readonly QwenVLState _state;
    private readonly Dictionary<string, string> _hashes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, QwenImage> _grids = new(StringComparer.Ordinal);
    private string? _encodedKey;
    private QwenImage? _encoded;
    private float[] _features = [];

    public QwenRowPrompts(QwenVLModel model, string? template, ImageRows rows)
    {
        if (template != null)
            throw new UserError($"--template: rows on a Qwen2.5-VL / Omni model go through the model's own chat template ('{Render(model, rows.Mode, "{question}", "{answer}")}'); drop --template") { Field = "template" };
        if (rows.AspectText != null) throw new UserError("--image-aspect is LLaVA's; Qwen models keep the image's aspect (smart_resize)");
        if (rows.Mode == ImageMode.TextOnly && (rows.MinPixels != null || rows.MaxPixels != null))
            throw new UserError("--min-pixels / --max-pixels set the image budget; --image-mode text-only shows no image");
        (_model, _rows) = (model, rows);
        if (rows.Mode != ImageMode.TextOnly) _processor = model.ImageProcessor(rows.MinPixels, rows.MaxPixels);
        _state = model.NewState();
    }

    private static string Render(QwenVLModel model, ImageMode mode, string question, string answer) =>
        QwenPrompts.Chat(model.Config.IsOmni, mode != ImageMode.TextOnly, question, answer);

    public override Transformer Model => _model.Language;
    public override string Template => Render(_model, _rows.Mode, "{question}", "{answer}");

    public override int[] Tokens(ProbingRow row)
    {
        int[] ids = _model.Language.Encode(Render(_model, _rows.Mode, row.Question, row.Answer));
        if (_rows.Mode == ImageMode.TextOnly) return ids;
        try
        {
            return _model.ExpandImageTokens(ids, Grid(row));
        }
        catch (UserError e)
        {
            throw new UserError($"row {row.Index} (line {row.Line}): {e.Message}", e) { Field = "template" };
        }
    }

    public override IEnumerable<KeyValuePair<string, string>> Metadata(IReadOnlyList<ProbingRow> kept)
    {
        yield return new("image_mode", _rows.ModeName);
        yield return new("chat_template", _model.Config.IsOmni ? "qwen2.5-omni" : "qwen2.5-vl");
        if (_rows.Mode == ImageMode.TextOnly) yield break;
        yield return new("min_pixels", _processor!.Config.MinPixels.ToString(System.Globalization.CultureInfo.InvariantCulture));
        yield return new("max_pixels", _processor.Config.MaxPixels.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (_rows.Mode == ImageMode.Black)
        {
            yield return new("image", $"all-zero RGB {BlackSize}x{BlackSize}");
            yield break;
        }
        foreach (var entry in _rows.ImagesUsed(kept, Hash)) yield return entry;
    }

    public override void Run(ProbingRow row, int[] tokens, ActivationCapture capture)
    {
        if (_rows.Mode == ImageMode.TextOnly)
        {
            _model.Forward(_state, tokens, null, capture);
            return;
        }
        string key = _rows.Mode == ImageMode.Black ? "black" : Hash(_rows.Files[row.Index]);
        if (key != _encodedKey)
        {
            _encoded = _processor!.Preprocess(LoadImage(row));
            var features = _model.EncodeImage(_state, _encoded);
            if (_features.Length < features.Length) _features = new float[features.Length];
            features.CopyTo(_features);
            _encodedKey = key;
        }
        _model.ForwardEncoded(_state, tokens, _encoded!, _features, capture);
    }

    public override (int Start, int Length) Evidence(ProbingRow row, int[] tokens)
    {
        if (_rows.Mode == ImageMode.TextOnly)
            throw new UserError("--image-mode text-only shows no image, so there is no image span to measure attention on; use image or black");
        int pad = _model.Config.ImageTokenId;
        return (Array.IndexOf(tokens, pad), tokens.Count(t => t == pad));
    }

    private RgbImage LoadImage(ProbingRow row) => _rows.Mode == ImageMode.Black ? new RgbImage(BlackSize, BlackSize) : ImageFile.Load(_rows.Files[row.Index]);

    /// <summary>The row's image grid (no pixels kept: a run's thousands of images would not fit), decoded once per file.</summary>
    private QwenImage Grid(ProbingRow row)
    {
        string key = _rows.Mode == ImageMode.Black ? "" : _rows.Files[row.Index];
        if (!_grids.TryGetValue(key, out var grid))
        {
            var image = LoadImage(row);
            var (height, width) = _processor!.TargetSize(image.Height, image.Width);
            int patch = _processor.Config.PatchSize;
            _grids[key] = grid = new QwenImage([], 1, height / patch, width / patch, _processor.Config.MergeSize);
        }
        return grid;
    }

    private string Hash(string file)
    {
        if (!_hashes.TryGetValue(file, out var hash)) _hashes[file] = hash = Hashing.Sha256File(file);
        return hash;
    }
}
