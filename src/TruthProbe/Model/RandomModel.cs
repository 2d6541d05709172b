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
        var list = new List<SafetensorToWrite>();
        // Each tensor draws from its own stream (seed + name), so the values do not depend on tensor order.
        void Matrix(string name, int rows, int cols, float scale) => list.Add(new SafetensorToWrite(name, HfCheckpoint.ToTensorDType(dtype), [rows, cols], s =>
        {
            var rng = new XorShiftRandom(seed ^ Fnv1a(name));
            var row = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                for (int i = 0; i < cols; i++) row[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
                HfCheckpoint.WriteNarrowed(s, row, dtype);
            }
        }));
        void Vector(string name, int n, float center, float spread) => list.Add(new SafetensorToWrite(name, HfCheckpoint.ToTensorDType(dtype), [n], s =>
        {
            var rng = new XorShiftRandom(seed ^ Fnv1a(name));
            var v = new float[n];
            for (int i = 0; i < n; i++) v[i] = center + (float)(rng.NextDouble() * 2 - 1) * spread;
            HfCheckpoint.WriteNarrowed(s, v, dtype);
        }));

        foreach (var tensor in CheckpointTensor.All(c))
        {
            string name = tensor.Name(TensorNaming.HuggingFace);
            long[] shape = tensor.Shape(c);
            int rows = (int)shape[0];
            if (tensor.IsMatrix)
            {
                int fanIn = (int)shape[1];
                // Uniform(-a, a) with a = sqrt(3 / fan_in) keeps activations near unit variance through the layers.
                Matrix(name, rows, fanIn, tensor.Kind == DecoderTensor.Embedding ? 1f : MathF.Sqrt(3f / fanIn));
            }
            else if (tensor.IsNorm) Vector(name, rows, 1f, 0.2f);
            else Vector(name, rows, 0f, 0.5f);
        }
        SafetensorsWriter.Write(Path.Combine(folder, HfCheckpoint.SingleFile), list, new Dictionary<string, string> { ["format"] = "pt", ["seed"] = seed.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        Common.AtomicFile.WriteAllText(Path.Combine(folder, "config.json"), c.ToHfConfigJson());
    }

    private static ulong Fnv1a(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char ch in s) { h ^= ch; h *= 1099511628211UL; }
        return h;
    }
}
