using TruthProbe.Formats;

namespace TruthProbe.Model;

/// <summary>
/// Seeded random weights for a config, written as a Hugging Face folder in any dtype, streamed row by row
/// (a 0.5B-parameter bf16 model never exists in memory as float32). For tests and benchmarks: shapes,
/// biases and ties exactly as a real checkpoint of that config would have them.
/// </summary>
internal static class RandomModel
{
    public static void WriteHf(string folder, ModelConfig c, ulong seed, WeightDType dtype)
    {
        Directory.CreateDirectory(folder);
        SafetensorsWriter.Write(Path.Combine(folder, HfCheckpoint.SingleFile), DecoderTensors(c, seed, dtype).ToList(),
            new Dictionary<string, string> { ["format"] = "pt", ["seed"] = seed.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        Common.AtomicFile.WriteAllText(Path.Combine(folder, "config.json"), c.ToHfConfigJson());
    }

    /// <summary>
    /// The decoder's tensors, named with <paramref name="prefix"/> (inside a larger checkpoint); the values depend
    /// only on the seed and the plain decoder name, so a prefixed decoder equals the plain one.
    /// </summary>
    public static IEnumerable<SafetensorToWrite> DecoderTensors(ModelConfig c, ulong seed, WeightDType dtype, HfPrefix? prefix = null)
    {
        foreach (var tensor in CheckpointTensor.All(c))
        {
            string name = tensor.Name(TensorNaming.HuggingFace, prefix), key = tensor.Name(TensorNaming.HuggingFace);
            long[] shape = tensor.Shape(c);
            int rows = (int)shape[0];
            if (tensor.IsMatrix)
            {
                int fanIn = (int)shape[1];
                // Uniform(-a, a) with a = sqrt(3 / fan_in) keeps activations near unit variance through the layers.
                yield return Matrix(name, key, [rows, fanIn], tensor.Kind == DecoderTensor.Embedding ? 1f : MathF.Sqrt(3f / fanIn), seed, dtype);
            }
            else if (tensor.IsNorm) yield return Vector(name, key, rows, 1f, 0.2f, seed, dtype);
            else yield return Vector(name, key, rows, 0f, 0.5f, seed, dtype);
        }
    }

    /// <summary>
    /// Uniform(-scale, scale) values of any shape, row by row over the last dimension. Each tensor draws from its
    /// own stream (seed + <paramref name="key"/>), so the values do not depend on tensor order or file name.
    /// </summary>
    public static SafetensorToWrite Matrix(string name, string key, long[] shape, float scale, ulong seed, WeightDType dtype) =>
        new(name, HfCheckpoint.ToTensorDType(dtype), shape, s =>
        {
            var rng = new XorShiftRandom(seed ^ Fnv1a(key));
            int cols = (int)shape[^1];
            long rows = shape.Aggregate(1L, (a, b) => a * b) / cols;
            var row = new float[cols];
            for (long r = 0; r < rows; r++)
            {
                for (int i = 0; i < cols; i++) row[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
                HfCheckpoint.WriteNarrowed(s, row, dtype);
            }
        });

    /// <summary>center + Uniform(-spread, spread) values (norm weights around 1, biases around 0), streamed as <see cref="Matrix"/>.</summary>
    public static SafetensorToWrite Vector(string name, string key, int n, float center, float spread, ulong seed, WeightDType dtype) =>
        new(name, HfCheckpoint.ToTensorDType(dtype), [n], s =>
        {
            var rng = new XorShiftRandom(seed ^ Fnv1a(key));
            var v = new float[n];
            for (int i = 0; i < n; i++) v[i] = center + (float)(rng.NextDouble() * 2 - 1) * spread;
            HfCheckpoint.WriteNarrowed(s, v, dtype);
        });

    private static ulong Fnv1a(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char ch in s) { h ^= ch; h *= 1099511628211UL; }
        return h;
    }
}
