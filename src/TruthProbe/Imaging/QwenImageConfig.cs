using System.Text.Json;
using TruthProbe.Common;

namespace TruthProbe.Imaging;

/// <summary>
/// The fields of a Hugging Face <c>preprocessor_config.json</c> that transformers' Qwen2VLImageProcessor uses
/// (Qwen2-VL, Qwen2.5-VL and the Qwen2.5-Omni thinker share it): the pixel budget smart_resize keeps an image in,
/// the patch geometry, and CLIP's rescale and normalisation.
/// </summary>
public sealed record QwenImageConfig
{
    public int MinPixels { get; init; } = 56 * 56;
    /// <summary>The class default (28 x 28 x 1280); the Qwen2.5-VL and Omni hub files raise it to 16384 x 28 x 28.</summary>
    public int MaxPixels { get; init; } = 28 * 28 * 1280;
    public int PatchSize { get; init; } = 14;
    /// <summary>Frames per patch: a still image is repeated this many times.</summary>
    public int TemporalPatchSize { get; init; } = 2;
    /// <summary>Patches per side of a merge group (2: four patches become one LM token).</summary>
    public int MergeSize { get; init; } = 2;
    public ResampleFilter Resample { get; init; } = ResampleFilter.Bicubic;
    public double[] Mean { get; init; } = ClipConfig.ClipMean;
    public double[] Std { get; init; } = ClipConfig.ClipStd;
    public double RescaleFactor { get; init; } = 1 / 255.0;
    public bool DoResize { get; init; } = true;
    public bool DoRescale { get; init; } = true;
    public bool DoNormalize { get; init; } = true;

    /// <summary>The side every resized dimension is a multiple of: patch x merge (28).</summary>
    public int Factor => PatchSize * MergeSize;

    /// <summary>Values of one patch row: channels x frames x patch x patch (1,176).</summary>
    public int PatchValues => 3 * TemporalPatchSize * PatchSize * PatchSize;

    /// <summary>
    /// Reads the file. <c>min_pixels</c>/<c>max_pixels</c> win over <c>size.shortest_edge</c>/<c>size.longest_edge</c>
    /// (which newer files write too, holding the same pixel counts), as transformers' constructor does.
    /// </summary>
    public static QwenImageConfig Read(string path)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new UserError($"{path}: preprocessor config not found; a Qwen2.5-VL or Omni folder holds the Qwen2VLImageProcessor settings of its checkpoint there (copy it from the checkpoint's repository)");
        }
        catch (JsonException e) { throw new UserError($"{path}: not valid JSON ({e.Message})"); }
        using (doc)
        {
            var root = JsonFields.Object(doc.RootElement, path);
            string Where(string field) => $"{path}: field '{field}'";
            if (JsonFields.TryGet(root, "image_processor_type", out var type)
                && JsonFields.String(type, Where("image_processor_type")) is not ("Qwen2VLImageProcessor" or "Qwen2VLImageProcessorFast"))
                throw new UserError($"{Where("image_processor_type")} is '{type.GetString()}'; a Qwen vision model needs Qwen2VLImageProcessor settings");
            var d = new QwenImageConfig();
            int Int(string field, int fallback, JsonElement? parent = null) =>
                JsonFields.TryGet(parent ?? root, field, out var v) ? JsonFields.Int32(v, Where(field), 1) : fallback;
            bool Flag(string field, bool fallback) => JsonFields.TryGet(root, field, out var v) ? JsonFields.Bool(v, Where(field)) : fallback;
            int minPixels = d.MinPixels, maxPixels = d.MaxPixels;
            if (JsonFields.TryGet(root, "size", out var size))
            {
                JsonFields.Object(size, Where("size"));
                minPixels = Int("shortest_edge", minPixels, size);
                maxPixels = Int("longest_edge", maxPixels, size);
            }
            var config = new QwenImageConfig
            {
                MinPixels = Int("min_pixels", minPixels),
                MaxPixels = Int("max_pixels", maxPixels),
                PatchSize = Int("patch_size", d.PatchSize),
                TemporalPatchSize = Int("temporal_patch_size", d.TemporalPatchSize),
                MergeSize = Int("merge_size", d.MergeSize),
                Resample = JsonFields.TryGet(root, "resample", out var r) ? Filter(r, Where("resample")) : d.Resample,
                Mean = Triple(root, "image_mean", d.Mean, Where("image_mean"), positive: false),
                Std = Triple(root, "image_std", d.Std, Where("image_std"), positive: true),
                RescaleFactor = JsonFields.TryGet(root, "rescale_factor", out var f) ? JsonFields.Number(f, Where("rescale_factor")) : d.RescaleFactor,
                DoResize = Flag("do_resize", d.DoResize),
                DoRescale = Flag("do_rescale", d.DoRescale),
                DoNormalize = Flag("do_normalize", d.DoNormalize),
            };
            if (config.MinPixels > config.MaxPixels)
                throw new UserError($"{path}: min_pixels ({config.MinPixels}) is above max_pixels ({config.MaxPixels}); no image size satisfies both");
            return config;
        }
    }

    /// <summary>PIL's resampling codes that <see cref="Imaging.Resample"/> implements: 0 NEAREST, 2 BILINEAR, 3 BICUBIC.</summary>
    private static ResampleFilter Filter(JsonElement v, string where) => JsonFields.Int32(v, where) switch
    {
        0 => ResampleFilter.Nearest,
        2 => ResampleFilter.Bilinear,
        3 => ResampleFilter.Bicubic,
        _ => throw new UserError($"{where} must be a PIL resampling code we implement, 0 (NEAREST), 2 (BILINEAR) or 3 (BICUBIC), got {JsonFields.Echo(v)}"),
    };

    private static double[] Triple(JsonElement root, string field, double[] fallback, string where, bool positive)
    {
        if (!JsonFields.TryGet(root, field, out var v)) return fallback;
        var values = JsonFields.Array(v, where).EnumerateArray().Select(e => JsonFields.Number(e, where)).ToArray();
        if (values.Length != 3 || (positive && values.Any(x => x <= 0)))
            throw new UserError($"{where} must be an array of 3 {(positive ? "positive " : "")}numbers (R, G, B), got {JsonFields.Echo(v)}");
        return values;
    }
}
