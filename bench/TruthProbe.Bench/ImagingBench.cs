using System.Diagnostics;
using TruthProbe.Cli;
using TruthProbe.Common;
using TruthProbe.Imaging;

namespace TruthProbe.Bench;

/// <summary>
/// Image loading for the vision tower: decode + CLIP 336 preprocessing (bicubic resize, crop, normalise) per
/// image, over the shared test photos, PNG and JPEG apart. No Pillow on this machine to time against, so the
/// reference is a budget of 10 ms per image: ratio imaging_FORMAT_clip336_vs_10ms = 10 ms / our mean time.
/// </summary>
public sealed class ImagingBench : IBenchmark
{
    public string Name => "imaging";

    public void Run(BenchContext context)
    {
        string? shared = RepoPaths.Shared();
        string folder = shared == null ? "" : Path.Combine(shared, "data", "images");
        if (!Directory.Exists(folder))
        {
            context.Log.WriteLine("imaging: ../shared/data/images not present, skipped");
            return;
        }
        var preprocessor = new ClipPreprocessor(ClipConfig.Clip336);
        var chw = new float[3 * 336 * 336];
        int repeats = context.Quick ? 3 : 10;
        foreach (var (format, pattern) in new[] { ("png", "*.png"), ("jpeg", "*.jpg") })
        {
            var files = Directory.GetFiles(folder, pattern).Order().Select(f => (Name: f, Bytes: File.ReadAllBytes(f))).ToArray();
            RgbImage Decode(byte[] bytes, string name) => format == "png" ? PngDecoder.Decode(bytes, name) : JpegDecoder.Decode(bytes, name);
            double Pass(bool decodeOnly)
            {
                var clock = Stopwatch.StartNew();
                foreach (var (name, bytes) in files)
                {
                    var image = Decode(bytes, name);
                    if (!decodeOnly) preprocessor.Normalize(preprocessor.Geometry(image), chw);
                }
                return clock.Elapsed.TotalSeconds / files.Length;
            }
            Pass(false); // warm-up: JIT
            double best = double.MaxValue, bestDecode = double.MaxValue;
            for (int i = 0; i < repeats; i++)
            {
                best = Math.Min(best, Pass(false));
                bestDecode = Math.Min(bestDecode, Pass(true));
            }
            context.Log.WriteLine($"imaging: {files.Length} {format} files, decode {bestDecode * 1000:0.00} ms, decode + CLIP 336 {best * 1000:0.00} ms per image (best of {repeats})");
            context.Ratio($"imaging_{format}_clip336_vs_10ms", 0.010 / best);
        }
    }
}
