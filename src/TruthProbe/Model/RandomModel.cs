using TruthProbe.Formats;

namespace TruthProbe.Model;

/// <summary>
/// Seeded random weights for a config, written as a Hugging Face folder in any dtype, streamed row by row
/// (a 0.5B-parameter bf16 model never exists in memory as float32). For tests and benchmarks: shapes,
/// biases and ties exactly as a real checkpoint of that config would have them.
/// </summary>
public static class RandomModel
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

        // Uniform(-a, a) with a = sqrt(3 / fan_in) keeps activations near unit variance through the layers.
        float Fan(int fanIn) => MathF.Sqrt(3f / fanIn);
        Matrix("model.embed_tokens.weight", c.Vocab, c.DModel, 1f);
        for (int l = 0; l < c.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            Vector(p + "input_layernorm.weight", c.DModel, 1f, 0.2f);
            Matrix(p + "self_attn.q_proj.weight", c.QDim, c.DModel, Fan(c.DModel));
            Matrix(p + "self_attn.k_proj.weight", c.KvDim, c.DModel, Fan(c.DModel));
            Matrix(p + "self_attn.v_proj.weight", c.KvDim, c.DModel, Fan(c.DModel));
            Matrix(p + "self_attn.o_proj.weight", c.DModel, c.QDim, Fan(c.QDim));
            if (c.QkvBias)
            {
                Vector(p + "self_attn.q_proj.bias", c.QDim, 0f, 0.5f);
                Vector(p + "self_attn.k_proj.bias", c.KvDim, 0f, 0.5f);
                Vector(p + "self_attn.v_proj.bias", c.KvDim, 0f, 0.5f);
            }
            if (c.OProjBias) Vector(p + "self_attn.o_proj.bias", c.DModel, 0f, 0.5f);
            Vector(p + "post_attention_layernorm.weight", c.DModel, 1f, 0.2f);
            Matrix(p + "mlp.gate_proj.weight", c.Ffn, c.DModel, Fan(c.DModel));
            Matrix(p + "mlp.up_proj.weight", c.Ffn, c.DModel, Fan(c.DModel));
            Matrix(p + "mlp.down_proj.weight", c.DModel, c.Ffn, Fan(c.Ffn));
        }
        Vector("model.norm.weight", c.DModel, 1f, 0.2f);
        if (!c.TiedEmbeddings) Matrix("lm_head.weight", c.Vocab, c.DModel, Fan(c.DModel));
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
