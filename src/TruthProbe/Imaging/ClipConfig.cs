using System.Text.Json;
using TruthProbe.Common;

namespace TruthProbe.Imaging;

/// <summary>
/// The fields of a Hugging Face <c>preprocessor_config.json</c> that CLIPImageProcessor uses. Size is either a
/// shortest edge (the long side scaled to keep the aspect ratio) or an exact height and width.
/// </summary>
public sealed record ClipConfig(
    int? ShortestEdge, int ResizeHeight, int ResizeWidth, int CropHeight, int CropWidth, ResampleFilter Resample,
    double[] Mean, double[] Std, double RescaleFactor, bool DoResize, bool DoCenterCrop, bool DoRescale, bool DoNormalize)
{
    public static readonly double[] ClipMean = [0.48145466, 0.4578275, 0.40821073];
    public static readonly double[] ClipStd = [0.26862954, 0.26130258, 0.27577711];

    /// <summary>openai/clip-vit-large-patch14-336, the vision tower of LLaVA-1.5 and llava-hf.</summary>
    public static ClipConfig Clip336 { get; } =
        new(336, 0, 0, 336, 336, ResampleFilter.Bicubic, ClipMean, ClipStd, 1 / 255.0, true, true, true, true);

    public static ClipConfig Read(string path)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new UserError($"{path}: preprocessor config not found; pass the model folder's preprocessor_config.json");
        }
        catch (JsonException e)
        {
            throw new UserError($"{path}: not valid JSON ({e.Message})");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new UserError($"{path}: must hold a JSON object, got {root.ValueKind}");
            var reader = new Fields(root, path);
            var d = Clip336;
            int? shortest = d.ShortestEdge;
            int resizeHeight = 0, resizeWidth = 0;
            if (root.TryGetProperty("size", out var size))
            {
                (shortest, resizeHeight, resizeWidth) = size.ValueKind switch
                {
                    // Old configs give one number: CLIP's resize reads it as the shortest edge.
                    JsonValueKind.Number => (reader.Positive(size, "size"), 0, 0),
                    JsonValueKind.Object when size.TryGetProperty("shortest_edge", out var s) => (reader.Positive(s, "size.shortest_edge"), 0, 0),
                    JsonValueKind.Object when size.TryGetProperty("height", out var h) && size.TryGetProperty("width", out var w) =>
                        ((int?)null, reader.Positive(h, "size.height"), reader.Positive(w, "size.width")),
                    _ => throw new UserError($"{path}: field 'size' must be a number, {{\"shortest_edge\": N}} or {{\"height\": H, \"width\": W}}, got {size.GetRawText()}"),
                };
            }
            int cropHeight = d.CropHeight, cropWidth = d.CropWidth;
            if (root.TryGetProperty("crop_size", out var crop))
            {
                (cropHeight, cropWidth) = crop.ValueKind switch
                {
                    JsonValueKind.Number => (reader.Positive(crop, "crop_size"), reader.Positive(crop, "crop_size")),
                    JsonValueKind.Object when crop.TryGetProperty("height", out var h) && crop.TryGetProperty("width", out var w) =>
                        (reader.Positive(h, "crop_size.height"), reader.Positive(w, "crop_size.width")),
                    _ => throw new UserError($"{path}: field 'crop_size' must be a number or {{\"height\": H, \"width\": W}}, got {crop.GetRawText()}"),
                };
            }
            return new ClipConfig(shortest, resizeHeight, resizeWidth, cropHeight, cropWidth, reader.Filter("resample", d.Resample),
                reader.Triple("image_mean", d.Mean), reader.Triple("image_std", d.Std, positive: true),
                reader.Number("rescale_factor", d.RescaleFactor), reader.Flag("do_resize", d.DoResize),
                reader.Flag("do_center_crop", d.DoCenterCrop), reader.Flag("do_rescale", d.DoRescale), reader.Flag("do_normalize", d.DoNormalize));
        }
    }

    private readonly record struct Fields(JsonElement Root, string Path)
    {
        private UserError Wrong(string name, string expected, JsonElement got) =>
            new($"{Path}: field '{name}' must be {expected}, got {got.GetRawText()}");

        public int Positive(JsonElement v, string name) =>
            v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) && n > 0 ? n : throw Wrong(name, "a positive integer", v);

        public double Number(string name, double fallback)
        {
            if (!Root.TryGetProperty(name, out var v)) return fallback;
            return v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw Wrong(name, "a number", v);
        }

        public bool Flag(string name, bool fallback)
        {
            if (!Root.TryGetProperty(name, out var v)) return fallback;
            return v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Wrong(name, "true or false", v),
            };
        }

        public double[] Triple(string name, double[] fallback, bool positive = false)
        {
            if (!Root.TryGetProperty(name, out var v)) return fallback;
            string expected = positive ? "an array of 3 positive numbers (R, G, B)" : "an array of 3 numbers (R, G, B)";
            if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() != 3) throw Wrong(name, expected, v);
            var values = new double[3];
            for (int i = 0; i < 3; i++)
            {
                var e = v[i];
                if (e.ValueKind != JsonValueKind.Number || (positive && e.GetDouble() <= 0)) throw Wrong(name, expected, v);
                values[i] = e.GetDouble();
            }
            return values;
        }

        /// <summary>PIL's resampling codes: 0 NEAREST, 2 BILINEAR, 3 BICUBIC (1 LANCZOS, 4 BOX, 5 HAMMING are not implemented).</summary>
        public ResampleFilter Filter(string name, ResampleFilter fallback)
        {
            if (!Root.TryGetProperty(name, out var v)) return fallback;
            int code = v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) ? n : -1;
            return code switch
            {
                0 => ResampleFilter.Nearest,
                2 => ResampleFilter.Bilinear,
                3 => ResampleFilter.Bicubic,
                _ => throw Wrong(name, "a PIL resampling code we implement: 0 (NEAREST), 2 (BILINEAR) or 3 (BICUBIC)", v),
            };
        }
    }
}
